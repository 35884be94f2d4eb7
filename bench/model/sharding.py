"""Repack a fitted tree ensemble into a shell plus K shards of trees (the `sharded`
strategies): RandomForest and ExtraTrees (their `estimators_` list), GradientBoosting (its
`estimators_` array, one row per stage) and HistGradientBoosting (its `_predictors`, one list
per iteration), or a Pipeline ending in one.

The service's loader (docker/service/sharded.py) rebuilds the estimator shard by shard, so the
load's peak memory stays near the model's size at rest instead of about twice it. Cached per
(model sha256, shard count, codec), like compressed models.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.host.fsutil import write_atomic

# The service's sharded.FORMAT; /2 names the attribute that holds the trees and whether it is
# a list or an array (format /1 was forests only: estimators_, a list).
FORMAT = "mlbench-sharded-forest/2"
# The automatic shard count aims at shards of about this size: measured on a 254 MB forest,
# 16 MB shards peaked at 1.2x the memory at rest, 4 MB shards at 1.03x, at the same load time.
TARGET_SHARD_BYTES = 4_000_000
CODECS = {"zstd3": ("zstd", 3), "none": ("none", 0)}


@dataclass(frozen=True)
class ShardedModel:
    folder: Path
    manifest_sha256: str
    shards: int
    codec: str
    total_bytes: int  # every file, manifest included
    repack_s: float
    cached: bool  # True: repack_s was measured by an earlier run (measured_in), not this one
    measured_in: str

    @property
    def manifest(self) -> Path:
        return self.folder / "manifest.json"


def auto_shards(model_bytes: int) -> int:
    return max(4, math.ceil(model_bytes / TARGET_SHARD_BYTES))


@dataclass(frozen=True)
class Ensemble:
    """Where a fitted ensemble keeps its trees, in their order."""

    estimator: Any
    pipeline_step: int | None  # the ensemble's index in a Pipeline, None for a bare model
    attribute: str  # estimators_ or _predictors
    container: str  # "list" or "array" (GradientBoosting: an object array, a row per stage)


# The ensembles whose trees can be taken apart and put back, by class name of their base.
ENSEMBLE_BASES = ("BaseForest", "BaseGradientBoosting", "BaseHistGradientBoosting")
_ATTRIBUTES = {"BaseForest": ("estimators_", "list"),
               "BaseGradientBoosting": ("estimators_", "array"),
               "BaseHistGradientBoosting": ("_predictors", "list")}


def tree_attribute(estimator: Any) -> tuple[str, str] | None:
    """(attribute, container) of a shardable ensemble, None for anything else."""
    from sklearn.ensemble import _forest, _gb
    from sklearn.ensemble._hist_gradient_boosting import gradient_boosting

    bases = {"BaseForest": _forest.BaseForest, "BaseGradientBoosting": _gb.BaseGradientBoosting,
             "BaseHistGradientBoosting": gradient_boosting.BaseHistGradientBoosting}
    for name, base in bases.items():
        if isinstance(estimator, base):
            return _ATTRIBUTES[name]
    return None


def ensemble_of(model: Any) -> Ensemble:
    """The tree ensemble inside a model: the model itself, or the last step of a Pipeline."""
    steps = getattr(model, "steps", None)
    candidates = [(model, None)] + ([(steps[-1][1], len(steps) - 1)] if steps else [])
    for estimator, step in candidates:
        found = tree_attribute(estimator)
        if found is not None:
            return Ensemble(estimator, step, *found)
    raise UsageError(f"the sharded strategies need a tree ensemble (RandomForest, ExtraTrees, "
                     f"GradientBoosting, HistGradientBoosting, or a Pipeline ending in one), "
                     f"not {type(model).__name__}: leave `sharded` out of --strategies")


def _dump(obj: Any) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(obj, buffer)
    return buffer.getvalue()


def _encode(data: bytes, codec: str) -> bytes:
    family, level = CODECS[codec]
    if family == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=level).compress(data)  # records the content size
    return data


def repack(model_path: Path, sha256: str, shards: int, codec: str, cache: Path,
           run_id: str) -> ShardedModel:
    """Write (or find cached) the shell, the shards and the manifest; trees keep their order."""
    import joblib

    if codec not in CODECS:
        raise UsageError(f"unknown shard codec {codec!r}: use {' or '.join(CODECS)}")
    folder = cache / "sharded" / f"{sha256[:16]}-k{shards}-{codec}"
    record = folder / "repack.json"
    if record.exists() and (folder / "manifest.json").exists():
        stored = json.loads(record.read_text())
        return ShardedModel(folder, stored["manifest_sha256"], stored["shards"], codec,
                            stored["total_bytes"], stored["repack_s"], True,
                            stored.get("run_id", "unknown"))
    started = time.perf_counter()
    model = joblib.load(model_path)
    ensemble = ensemble_of(model)
    trees = list(getattr(ensemble.estimator, ensemble.attribute))  # rows of an array
    if shards < 1:
        raise UsageError(f"--shards must be at least 1, not {shards}")
    shards = min(shards, len(trees))
    setattr(ensemble.estimator, ensemble.attribute, [])
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".joblib.zst" if CODECS[codec][0] == "zstd" else ".joblib"
    family = CODECS[codec][0]

    def write(name: str, data: bytes) -> dict[str, Any]:
        (folder / name).write_bytes(data)
        return {"file": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}

    manifest: dict[str, Any] = {"format": FORMAT, "codec": family,
                                "pipeline_step": ensemble.pipeline_step,
                                "attribute": ensemble.attribute,
                                "container": ensemble.container, "n_estimators": len(trees),
                                "shell": write("shell.joblib", _dump(model)), "shards": []}
    bounds = [round(i * len(trees) / shards) for i in range(shards + 1)]
    for index in range(shards):
        chunk = trees[bounds[index]:bounds[index + 1]]
        entry = write(f"shard-{index:04d}{suffix}", _encode(_dump(chunk), codec))
        entry["trees"] = len(chunk)
        manifest["shards"].append(entry)
    text = json.dumps(manifest, indent=1)
    write_atomic(folder / "manifest.json", text)
    manifest_sha = hashlib.sha256(text.encode()).hexdigest()
    total = sum(p.stat().st_size for p in folder.iterdir() if p.name != "repack.json")
    seconds = time.perf_counter() - started
    write_atomic(record, json.dumps({"manifest_sha256": manifest_sha, "shards": shards,
                                     "total_bytes": total, "repack_s": seconds,
                                     "run_id": run_id}))
    return ShardedModel(folder, manifest_sha, shards, codec, total, seconds, False, run_id)
