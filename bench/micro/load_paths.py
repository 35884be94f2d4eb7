"""Every way of loading the model from a file, for the in-process micro-benchmarks (issue 5).

Each path names the file it reads (made once and cached) and the function that loads it. The
decompression and the sharded loader are the service's own code (docker/service/codecs_io.py
and sharded.py, imported by file path), so the numbers are about what the containers run.

``python -m bench.micro.load_paths PATH FILE`` loads FILE one way in this fresh process and prints
JSON with the seconds and the process's memory before, at the peak and after: peak RSS is a
per-process high-water mark, so every path needs its own process.
"""

from __future__ import annotations

import gc
import importlib.util
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.host.fsutil import partial_path
from bench.host.paths import service_module

READ_CHUNK = 8 * 1024 * 1024


def read_bytes(path: Path) -> int:
    """The physical limit: the file's bytes, nothing unpickled."""
    total = 0
    with path.open("rb", buffering=0) as handle:
        while chunk := handle.read(READ_CHUNK):
            total += len(chunk)
    return total


def decompress_only(codec: str) -> Callable[[Path], int]:
    def run(path: Path) -> int:
        total = 0
        with service_module("codecs_io").open_model_stream(str(path), codec) as stream:
            while chunk := stream.read(READ_CHUNK):
                total += len(chunk)
        return total
    return run


def joblib_load(path: Path, **kwargs: Any) -> Any:
    import joblib

    return joblib.load(path, **kwargs)


def stream_load(codec: str) -> Callable[[Path], Any]:
    def run(path: Path) -> Any:
        import joblib

        with service_module("codecs_io").open_model_stream(str(path), codec) as stream:
            return joblib.load(stream)
    return run


def sharded_load(path: Path) -> Any:
    sharded = service_module("sharded")
    return sharded.load_sharded(sharded.local_reader(str(path)), "")


def flat_load(path: Path) -> Any:
    """Map the flat forest (no unpickling): the mmap strategies' "load"."""
    return service_module("flat_forest").open_model(str(path), verify=False, prefetch=False)


def skops_load(path: Path) -> Any:
    import skops.io

    return skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))


@dataclass(frozen=True)
class LoadPath:
    name: str
    kind: str  # "limit" (bytes only), "decompress" (bytes out of a codec), "load" (a model)
    file: str  # which file it reads: a key of make_files()
    run: Callable[[Path], Any]
    note: str = ""


PATHS: tuple[LoadPath, ...] = (
    LoadPath("read-warm", "limit", "raw", read_bytes, "file bytes, page cache warm"),
    LoadPath("read-cold", "limit", "raw", read_bytes, "file bytes after dropping the page cache"),
    LoadPath("joblib", "load", "raw", joblib_load, "joblib.load, uncompressed"),
    LoadPath("joblib-mmap", "load", "raw", lambda p: joblib_load(p, mmap_mode="r"),
             "joblib.load(mmap_mode='r')"),
    LoadPath("gzip9-seed", "load", "gzip9", stream_load("gzip"),
             "the seed's way: gzip.open + joblib.load"),
    LoadPath("joblib-zlib3", "load", "joblib-zlib3", joblib_load, "joblib.dump(compress=3)"),
    LoadPath("joblib-lz4", "load", "joblib-lz4", joblib_load, "joblib.dump(compress='lz4')"),
    LoadPath("zstd3", "load", "zstd3", stream_load("zstd"), "zstd level 3, streamed"),
    LoadPath("zstd9", "load", "zstd9", stream_load("zstd"), "zstd level 9, streamed"),
    LoadPath("lz4", "load", "lz4", stream_load("lz4"), "lz4 frame, streamed"),
    LoadPath("sharded", "load", "sharded", sharded_load, "shell + shards, shard by shard"),
    LoadPath("skops", "load", "skops", skops_load, "skops secure format"),
    LoadPath("flat", "load", "flat", flat_load, "flat forest, memory-mapped (mmap strategies)"),
    LoadPath("gzip9-decompress", "decompress", "gzip9", decompress_only("gzip")),
    LoadPath("zstd3-decompress", "decompress", "zstd3", decompress_only("zstd")),
    LoadPath("zstd9-decompress", "decompress", "zstd9", decompress_only("zstd")),
    LoadPath("lz4-decompress", "decompress", "lz4", decompress_only("lz4")),
)
BY_NAME = {path.name: path for path in PATHS}


def _dump_joblib(compress: int | str) -> Callable[[Any, Path], Any]:
    def dump(model: Any, path: Path) -> Any:
        import joblib

        return joblib.dump(model, path, compress=compress)
    return dump


def _dump_skops(model: Any, path: Path) -> None:
    import skops.io

    skops.io.dump(model, path)


def make_files(model_path: Path, sha256: str, cache: Path) -> dict[str, tuple[Path, float]]:
    """Every file a path reads -> (file, seconds it took to make it); cached by model hash."""
    from bench.model.compression import compress_model, parse_codec
    from bench.model.flat_forest import convert
    from bench.model.sharding import auto_shards, repack

    files: dict[str, tuple[Path, float]] = {"raw": (model_path, 0.0)}
    for label in ("gzip9", "zstd3", "zstd9", "lz4"):
        packed = compress_model(model_path, sha256, parse_codec(label), cache, "micro")
        files[label] = (packed.path, packed.compress_s)
    sharded = repack(model_path, sha256, auto_shards(model_path.stat().st_size), "none", cache,
                     "micro")
    files["sharded"] = (sharded.folder, sharded.repack_s)
    flat = convert(model_path, sha256, cache, "micro")
    files["flat"] = (flat.path, flat.convert_s)
    folder = cache / "micro"
    folder.mkdir(parents=True, exist_ok=True)
    model: Any = None
    writers: tuple[tuple[str, str, Callable[[Any, Path], Any]], ...] = (
        ("joblib-zlib3", ".joblib.z", _dump_joblib(3)),
        ("joblib-lz4", ".joblib.lz4", _dump_joblib("lz4")),
        ("skops", ".skops", _dump_skops),
    )
    for label, suffix, writer in writers:
        target = folder / f"{sha256[:16]}{suffix}"
        timing = target.with_name(target.name + ".s")
        if not (target.exists() and timing.exists()):
            if label == "skops" and importlib.util.find_spec("skops") is None:
                continue
            if model is None:
                model = joblib_load(model_path)
            started = time.perf_counter()
            partial = partial_path(target)
            writer(model, partial)
            partial.replace(target)
            timing.write_text(str(time.perf_counter() - started))
        files[label] = (target, float(timing.read_text()))
    return files


def file_bytes(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.iterdir() if p.name != "repack.json")
    return path.stat().st_size


def _memory() -> dict[str, int]:
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values


def reset_peak() -> bool:
    """Reset the process's high-water mark (VmHWM) to its current RSS (Linux clear_refs "5"):
    without it the peak after a load may be the imports' peak, and a peak "above the RSS
    before" holds whatever the load did."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        return False
    return True


def memmap_of(array: Any) -> Any:
    """The np.memmap an array is a view of (walking its bases), or None."""
    import numpy as np

    while array is not None:
        if isinstance(array, np.memmap):
            return array
        array = getattr(array, "base", None)
    return None


def mapped_arrays(model: Any) -> bool:
    """Whether any tree's node arrays are still backed by the mapped file (memmap)."""
    flat = getattr(model, "forest", None)  # the flat forest's arrays are the mapped file
    if flat is not None:
        return memmap_of(flat.nodes) is not None
    forest = model.steps[-1][1] if hasattr(model, "steps") else model
    return any(memmap_of(array) is not None
               for tree in getattr(forest, "estimators_", [])[:3]
               for array in (tree.tree_.value, tree.tree_.threshold))


def measure_in_this_process(name: str, file: Path) -> dict[str, Any]:
    import joblib  # noqa: F401  (imports are not the load's cost)
    import sklearn.ensemble  # noqa: F401

    path = BY_NAME[name]
    gc.collect()
    peak_reset = reset_peak()
    before = _memory()
    started = time.perf_counter()
    result = path.run(file)
    seconds = time.perf_counter() - started
    gc.collect()
    after = _memory()
    out: dict[str, Any] = {"path": name, "seconds": seconds, "rss_before": before["VmRSS"],
                           "rss_peak": after["VmHWM"], "rss_after": after["VmRSS"],
                           "hwm_before": before["VmHWM"], "peak_reset": peak_reset}
    if path.kind == "load":
        out["mapped"] = mapped_arrays(result)
    return out


if __name__ == "__main__":
    print(json.dumps(measure_in_this_process(sys.argv[1], Path(sys.argv[2]))))
