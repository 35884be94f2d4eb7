"""Load a forest repacked as a shell plus shards of trees, one shard at a time.

Why: joblib.load of a whole forest holds the file's arrays and scikit-learn's copies of every
tree's node arrays at once (about 2x the model at the peak). Loading shard by shard keeps at
most a couple of shards' temporaries alive, and a reader thread fetches, verifies and
decompresses shard i+1 (I/O, hashing and zstd release the GIL) while this thread unpickles
shard i. With a pinned MODEL_SHA256 the manifest is checked against it and every file against
the manifest before it is unpickled, so nothing unverified is ever executed; without a pin
(a trusted read-only mount, like the `volume` strategy's file) nothing is hashed.

Layout (written by the harness's `bench repack`):
  manifest.json  {"format", "codec", "pipeline_step", "attribute", "container",
                  "n_estimators", "shell": {...}, "shards": [{"file", "sha256", "bytes",
                  "trees"}, ...]}
  shell.joblib   the estimator with its trees attribute emptied
  shard-NNNN.joblib[.zst]   a list of fitted trees (or of a boosting model's stages), in
                 the original order
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import joblib

FORMAT = "mlbench-sharded-forest/2"
FORMATS = ("mlbench-sharded-forest/1", FORMAT)  # /1: forests only (estimators_, a list)
QUEUE_DEPTH = 1  # decoded shards waiting for the unpickler: bounds memory at a few shards
FETCH_WINDOW = 2  # shard reads in flight (two GETs keep a network link busy)


class IntegrityError(RuntimeError):
    """A file's bytes do not match the SHA-256 it is pinned to."""


@dataclass
class ShardedLoadReport:
    read_start: float = 0.0
    read_end: float = 0.0  # the reader fetched its last shard
    bytes_read: int = 0
    verify_s: float = 0.0  # hashing, summed over files (overlapped with unpickling)
    shards: int = 0
    verify: bool = True  # set from the pin: no pin, no hashing
    # Seconds during which at least one read was in flight: the transfer's own time, without
    # the pauses in which the reader waited for the unpickler (the same definition as the
    # registry's download_s, so the two rates compare like with like).
    read_active_s: float = 0.0


class _ActiveClock:
    """Wraps a reader and sums the time with at least one read in flight."""

    def __init__(self, read: Callable[[str], bytes], report: ShardedLoadReport) -> None:
        self._read, self._report = read, report
        self._lock = threading.Lock()
        self._in_flight = 0
        self._since = 0.0

    def __call__(self, name: str) -> bytes:
        with self._lock:
            if self._in_flight == 0:
                self._since = time.perf_counter()
            self._in_flight += 1
        try:
            return self._read(name)
        finally:
            with self._lock:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._report.read_active_s += time.perf_counter() - self._since


def local_reader(directory: str) -> Callable[[str], bytes]:
    def read(name: str) -> bytes:
        with open(os.path.join(directory, name), "rb") as handle:
            return handle.read()
    return read


def _verified(data: bytes, sha256: str, name: str, report: ShardedLoadReport) -> bytes:
    if not report.verify:
        return data
    started = time.perf_counter()
    actual = hashlib.sha256(data).hexdigest()
    report.verify_s += time.perf_counter() - started
    if actual != sha256:
        raise IntegrityError(f"{name}: sha256 {actual} does not match {sha256}; not loaded")
    return data


def _decode(data: bytes, codec: str) -> bytes:
    if codec == "none":
        return data
    if codec == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompress(data)
    raise ValueError(f"unknown shard codec {codec!r}")


def load_sharded(read: Callable[[str], bytes], pinned_manifest_sha256: str,
                 report: ShardedLoadReport | None = None) -> Any:
    report = report or ShardedLoadReport()
    report.verify = bool(pinned_manifest_sha256)
    read = _ActiveClock(read, report)
    report.read_start = time.time()
    manifest_bytes = read("manifest.json")
    _verified(manifest_bytes, pinned_manifest_sha256, "manifest.json", report)
    manifest = json.loads(manifest_bytes)
    if manifest.get("format") not in FORMATS:
        raise ValueError(f"not a sharded model (format {manifest.get('format')!r}, "
                         f"expected {FORMAT})")
    codec = manifest["codec"]
    shell_entry = manifest["shell"]
    shell = joblib.load(io.BytesIO(_verified(read(shell_entry["file"]), shell_entry["sha256"],
                                             shell_entry["file"], report)))
    step = manifest.get("pipeline_step")
    forest = shell if step is None else shell.steps[step][1]

    shards: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=QUEUE_DEPTH)

    def reader() -> None:
        try:
            with ThreadPoolExecutor(max_workers=FETCH_WINDOW) as pool:
                window: deque[tuple[dict[str, Any], Future[bytes]]] = deque()
                entries = iter(manifest["shards"])
                for entry in entries:  # keep FETCH_WINDOW reads in flight, in order
                    window.append((entry, pool.submit(read, entry["file"])))
                    if len(window) == FETCH_WINDOW:
                        break
                while window:
                    entry, future = window.popleft()
                    following = next(entries, None)
                    if following is not None:
                        window.append((following, pool.submit(read, following["file"])))
                    data = _verified(future.result(), entry["sha256"], entry["file"], report)
                    report.bytes_read += len(data)
                    shards.put(_decode(data, codec))
            report.read_end = time.time()
            shards.put(None)
        except BaseException as error:  # handed to the unpickling thread, which raises it
            shards.put(error)

    thread = threading.Thread(target=reader, name="shard-reader", daemon=True)
    thread.start()
    trees: list[Any] = []
    while True:
        item = shards.get()
        if item is None:
            break
        if isinstance(item, BaseException):
            raise item
        trees.extend(joblib.load(io.BytesIO(item)))
        report.shards += 1
        del item  # drop this shard's bytes before waiting for the next one
    thread.join()
    if len(trees) != manifest["n_estimators"]:
        raise IntegrityError(f"rebuilt {len(trees)} trees, the manifest says "
                             f"{manifest['n_estimators']}")
    attribute = manifest.get("attribute", "estimators_")
    if manifest.get("container") == "array":  # GradientBoosting: an object array, a row a stage
        import numpy as np

        setattr(forest, attribute, np.asarray(trees, dtype=object))
    else:
        setattr(forest, attribute, trees)
    return shell
