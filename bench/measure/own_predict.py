"""A model's own predictions (and, with --timed, its predict timed), in whatever Python runs
this file: the host's, or the model's own environment in a container of its runtime image
(bench.measure.own_environment), where nothing of this project is installed. Hence this file
imports only the standard library, numpy and joblib.

    python own_predict.py MODEL ROWS_JSON OUT_JSON [--timed]
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

ONE_ROW_REPEATS = 50
HUNDRED_ROW_REPEATS = 10
BATCH_ROWS = 100


def batch_of(rows: list[list[float]], size: int = BATCH_ROWS) -> list[list[float]]:
    """`size` rows made of the reference rows, repeated."""
    return [rows[i % len(rows)] for i in range(size)]


def _time(predict: Any, rows: Any, repeats: int) -> list[float]:
    predict(rows)  # warm-up: first-touch pages, lazy imports
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict(rows)
        out.append((time.perf_counter() - started) * 1000)
    return out


def report(model: Any, rows: list[list[float]], timed: bool) -> dict[str, Any]:
    """The predictions of `rows` (floats, or a classifier's classes as their own type), the
    probabilities where the model has them, and with `timed` one row and 100 rows timed."""
    import numpy as np

    matrix = np.asarray(rows, dtype=np.float64)
    found: dict[str, Any] = {"predictions": np.ravel(model.predict(matrix)).tolist()}
    found["probabilities"] = (np.asarray(model.predict_proba(matrix), dtype=np.float64).tolist()
                              if hasattr(model, "predict_proba") else None)
    if timed:
        found["one_row_ms"] = _time(model.predict, matrix[:1], ONE_ROW_REPEATS)
        found["hundred_rows_ms"] = _time(model.predict, np.asarray(batch_of(rows)),
                                         HUNDRED_ROW_REPEATS)
    return found


def main(argv: list[str]) -> None:
    import joblib

    model_file, rows_file, out_file = argv[:3]
    with open(rows_file) as handle:
        rows = json.load(handle)
    found = report(joblib.load(model_file), rows, timed="--timed" in argv[3:])
    with open(out_file, "w") as handle:
        json.dump(found, handle)


if __name__ == "__main__":
    main(sys.argv[1:])
