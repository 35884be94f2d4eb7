"""Where the flat forest's predict spends its time, measured (issue 14's missed targets).

``python -m bench.micro.flat_profile --model-size 5.45GB`` maps the cached flat file of the
synthetic model (converting it first if needed) and, for 1 row and for 100 rows of the
model's reference rows, measures in this process:

- passes (tree levels walked), node visits (one per walker and level) and the median time of
  a warm predict, hence nanoseconds per node visit: flat across row counts when the walk is
  bound by random reads of the mapped arrays, not by numpy's per-pass overhead;
- the distinct 4 KiB pages the predict touches in the file (one 16-byte record per node),
  against the same walk in the first format's layout of one array per field (a visit read
  `left`, and at a split `feature`, `value` and `right`, each in its own page): after
  `--drop-caches` each page is a read from disk, so pages, not bytes, set the cold first
  prediction.

With ``--cold`` (root: it drops the page cache), it also times the first one-row prediction
of a freshly mapped file after dropping the page cache, three times each with the kernel's
default readahead and with ``MADV_RANDOM`` (fault in only the touched pages), the page faults
this process took from disk (major faults: each one a read) and how many bytes the machine's
page cache grew by meanwhile (anything else running moves that one): what a cold first
prediction reads and what it costs. A file another process maps keeps its pages through the
drop: profile a file nothing else has open.
"""

from __future__ import annotations

import gc
import json
import mmap
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import UsageError
from bench.host import page_cache
from bench.host.paths import cache_dir, service_module
from bench.measure.own_predict import batch_of
from bench.micro import command
from bench.micro.load_paths import memmap_of
from bench.model.flat_forest import convert
from bench.progress import Progress

PAGE = 4096
# The first format's arrays, one per field, in the order they were stored (bytes a node):
# left and right int32, feature int16, value float64.
ONE_ARRAY_PER_FIELD = {"left": 4, "right": 4, "feature": 2, "value": 8}
REPEATS = 7
COLD_REPEATS = 3


def _pages_one_array_per_field(every: np.ndarray, inner: np.ndarray, nodes: int) -> int:
    """Pages the same walk touches with one page-aligned array per field."""
    touched, offset = 0, 0
    for name, itemsize in ONE_ARRAY_PER_FIELD.items():
        read = every if name in ("left", "value") else inner  # a leaf reads left and value
        touched += len(set(((offset + read * itemsize) // PAGE).tolist()))
        offset += -(-nodes * itemsize // PAGE) * PAGE
    return touched


def profile(flat_path: Path, rows: list[list[float]]) -> dict[str, Any]:
    module = service_module("flat_forest")
    forest = module.FlatForest.open(str(flat_path))
    spec = forest.header["arrays"]["nodes"]
    visited: list[np.ndarray] = []
    forest.predict(rows, on_pass=visited.append)  # the traced walk
    every = np.concatenate(visited)
    inner = every[np.asarray(forest.nodes["right"])[every] != module.LEAF]
    itemsize = forest.nodes.dtype.itemsize
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        forest.predict(rows)
        times.append(time.perf_counter() - started)
    seconds = statistics.median(times)
    return {
        "rows": len(rows), "trees": forest.n_estimators, "passes": len(visited),
        "node_visits": int(every.size), "predict_ms": seconds * 1000,
        "ns_per_node_visit": seconds / every.size * 1e9,
        "pages_touched": len(set(((spec["offset"] + every * itemsize) // PAGE).tolist())),
        "pages_touched_one_array_per_field": _pages_one_array_per_field(
            every, inner, forest.nodes.shape[0]),
    }


def _cold_first_prediction(flat_path: Path, row: list[list[float]], advice: int | None
                           ) -> dict[str, float]:
    page_cache.drop()  # nothing of the file may stay mapped here, or its pages stay cached
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
    before, started = page_cache.cached_bytes(), time.perf_counter()
    forest = service_module("flat_forest").FlatForest.open(str(flat_path))
    if advice is not None:  # numpy keeps the mmap object in _mmap, and nowhere public
        memmap_of(forest.nodes)._mmap.madvise(advice)
    forest.predict(row)
    seconds = time.perf_counter() - started
    grown = page_cache.cached_bytes() - before
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_majflt - faults
    del forest
    gc.collect()  # unmapped before the next drop
    return {"seconds": seconds, "major_faults": faults, "page_cache_grown_bytes": grown}


def cold(flat_path: Path, row: list[list[float]]) -> dict[str, list[dict[str, float]]]:
    """Readahead and MADV_RANDOM alternate, so a drift of the disk hits both alike."""
    if not page_cache.can_drop():
        raise UsageError("--cold drops the page cache: run as root")
    found: dict[str, list[dict[str, float]]] = {"readahead": [], "madv_random": []}
    for _ in range(COLD_REPEATS):
        found["readahead"].append(_cold_first_prediction(flat_path, row, None))
        found["madv_random"].append(_cold_first_prediction(flat_path, row, mmap.MADV_RANDOM))
    return found


def main() -> None:
    parser = command.parser("bench.micro.flat_profile", __doc__)
    parser.add_argument("--cold", action="store_true",
                        help="also the cold first prediction, readahead against MADV_RANDOM "
                             "(root: drops the page cache)")
    args = parser.parse_args()
    progress = Progress()
    model = command.model_of(args, progress)
    flat = convert(model.path, model.sha256, cache_dir(), "flat-profile")
    rows = model.reference_rows
    report = {"model_bytes": model.bytes, "flat_bytes": flat.bytes, "nodes": flat.nodes,
              "one_row": profile(flat.path, rows[:1]),
              "hundred_rows": profile(flat.path, batch_of(rows))}
    if args.cold:
        report["cold_one_row"] = cold(flat.path, rows[:1])
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    command.run(main)
