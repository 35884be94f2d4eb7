"""Convert a fitted forest (RandomForest/ExtraTrees regressor, or a Pipeline ending in one)
into the service's flat, memory-mapped format (docker/service/flat_forest.py defines it)."""

from __future__ import annotations

import hashlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import UsageError
from bench.fsutil import write_atomic
from bench.model.sharding import ensemble_of
from bench.paths import service_module


@dataclass(frozen=True)
class FlatModel:
    path: Path
    bytes: int
    nodes: int
    convert_s: float
    cached: bool  # True: convert_s was measured by an earlier run (measured_in)
    measured_in: str
    preprocessing: Path | None  # the pinned pickle of a Pipeline's steps before the forest


def flat_arrays(forest: Any) -> dict[str, np.ndarray]:
    """The forest's trees as one set of node arrays with global indices."""
    if getattr(forest, "n_outputs_", 1) != 1:
        raise UsageError("the flat forest holds single-output regressors; this forest has "
                         f"{forest.n_outputs_} outputs: leave mmap out of --strategies")
    trees = [estimator.tree_ for estimator in forest.estimators_]
    sizes = np.array([tree.node_count for tree in trees], dtype=np.int64)
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    total = int(sizes.sum())
    if total >= 2**31:
        raise UsageError(f"a forest of {total} nodes does not fit int32 node indices")
    n_features = int(forest.n_features_in_)
    feature_dtype = np.int16 if n_features < 2**15 else np.int32
    left = np.empty(total, np.int32)
    right = np.empty(total, np.int32)
    feature = np.empty(total, feature_dtype)
    value = np.empty(total, np.float64)
    missing_left = np.zeros(total, np.uint8)
    for tree, start, size in zip(trees, roots, sizes, strict=True):
        end = start + size
        children_left = tree.children_left
        is_leaf = children_left == -1
        left[start:end] = np.where(is_leaf, -1, children_left + start)
        right[start:end] = np.where(is_leaf, -1, tree.children_right + start)
        feature[start:end] = np.where(is_leaf, 0, tree.feature)
        value[start:end] = np.where(is_leaf, tree.value[:, 0, 0], tree.threshold)
        missing = getattr(tree, "missing_go_to_left", None)  # scikit-learn >= 1.3
        if missing is not None:
            missing_left[start:end] = missing
    return {"left": left, "right": right, "feature": feature, "value": value,
            "missing_left": missing_left, "roots": roots}


def convert(model_path: Path, sha256: str, cache: Path, run_id: str) -> FlatModel:
    """Write (or find cached, by the model's hash) the flat file of a joblib model."""
    import joblib
    import sklearn

    folder = cache / "flat" / sha256[:16]
    target, record = folder / "model.flat", folder / "convert.json"
    if target.exists() and record.exists():
        stored = json.loads(record.read_text())
        pre = folder / "preprocessing.joblib"
        return FlatModel(target, target.stat().st_size, stored["nodes"], stored["convert_s"],
                         True, stored.get("run_id", "unknown"), pre if pre.exists() else None)
    started = time.perf_counter()
    model = joblib.load(model_path)
    ensemble = ensemble_of(model)
    if ensemble.attribute != "estimators_" or ensemble.container != "list":
        raise UsageError(f"the flat format takes a RandomForest or ExtraTrees regressor (or a "
                         f"Pipeline ending in one), not {type(ensemble.estimator).__name__}")
    forest, step = ensemble.estimator, ensemble.pipeline_step
    arrays = flat_arrays(forest)
    names = getattr(model, "feature_names_in_", None)
    header: dict[str, Any] = {
        "sklearn_version": sklearn.__version__, "estimator": type(forest).__name__,
        "n_features": int(forest.n_features_in_),  # what the node arrays index
        "input_n_features": int(getattr(model, "n_features_in_", forest.n_features_in_)),
        "feature_names": None if names is None else [str(n) for n in names],
        "n_outputs": 1, "n_estimators": len(forest.estimators_),
        "source_sha256": sha256, "preprocessing": None}
    folder.mkdir(parents=True, exist_ok=True)
    pre_path = None
    if step:  # the Pipeline's steps before the forest: a small pickle, pinned by its hash
        buffer = io.BytesIO()
        joblib.dump(model[:step], buffer)
        pre_path = folder / "preprocessing.joblib"
        pre_path.write_bytes(buffer.getvalue())
        header["preprocessing"] = {"file": pre_path.name,
                                   "sha256": hashlib.sha256(buffer.getvalue()).hexdigest()}
    service_module("flat_forest").write_flat(str(target), arrays, header)
    seconds = time.perf_counter() - started
    nodes = int(arrays["left"].size)
    write_atomic(record, json.dumps({"nodes": nodes, "convert_s": seconds, "run_id": run_id}))
    return FlatModel(target, target.stat().st_size, nodes, seconds, False, run_id, pre_path)
