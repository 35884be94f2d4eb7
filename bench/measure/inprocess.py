"""The model's own predict, in a fresh process on the host: the reference that says what
serving adds (HTTP, JSON, the server) to the served latency. One row and 100 rows, timed
after a warm-up; a fresh process so a multi-GB model does not stay in the harness's memory.

    python -m bench.measure.inprocess joblib|flat MODEL_FILE < ROWS_JSON
prints {"predictions": [...], "one_row_ms": [...], "hundred_rows_ms": [...]}.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import StepFailed
from bench.measure.probes import percentile, predictions_match

ONE_ROW_REPEATS = 50
HUNDRED_ROW_REPEATS = 10
BATCH_ROWS = 100


@dataclass(frozen=True)
class InProcessLatency:
    one_row_p50_ms: float
    hundred_rows_p50_ms: float

    def metrics(self) -> dict[str, float]:
        return {"inproc_predict_p50_ms": self.one_row_p50_ms,
                "inproc_predict_100_p50_ms": self.hundred_rows_p50_ms}


def batch_of(rows: list[list[float]], size: int = BATCH_ROWS) -> list[list[float]]:
    """`size` rows made of the reference rows, repeated."""
    return [rows[i % len(rows)] for i in range(size)]


def measure(kind: str, model_file: Path, rows: list[list[float]], expected: list[float],
            timeout_s: float = 1800) -> InProcessLatency:
    """Time the model's predict in a fresh Python process (kind "joblib" or "flat"); its
    predictions of `rows` must be `expected` (what is timed is the model that serves)."""
    timings = _in_fresh_process(kind, model_file, rows, timeout_s)
    if not predictions_match(timings["predictions"], expected):
        raise StepFailed(f"in-process predict of {model_file.name} did not give the model's "
                         "predictions")
    return InProcessLatency(percentile(timings["one_row_ms"], 0.5),
                            percentile(timings["hundred_rows_ms"], 0.5))


def predictions(kind: str, model_file: Path, rows: list[list[float]],
                timeout_s: float = 1800) -> list[float]:
    """The model's own predictions of `rows`, in a fresh Python process."""
    return list(_in_fresh_process(kind, model_file, rows, timeout_s)["predictions"])


def _in_fresh_process(kind: str, model_file: Path, rows: list[list[float]],
                      timeout_s: float) -> dict[str, Any]:
    # The rows on stdin: 2,000 rows of 110 features are over the limit of an argument list.
    done = subprocess.run([sys.executable, "-m", "bench.measure.inprocess", kind,
                           str(model_file)], input=json.dumps(rows),
                          capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise StepFailed(f"in-process predict of {model_file.name} failed",
                         done.stderr[-2000:])
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def _time(predict: Any, rows: Any, repeats: int) -> list[float]:
    predict(rows)  # warm-up: first-touch pages, lazy imports
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict(rows)
        out.append((time.perf_counter() - started) * 1000)
    return out


def _main(kind: str, model_file: str) -> None:
    import numpy as np

    if kind == "flat":
        from bench.host.paths import service_module

        model = service_module("flat_forest").open_model(model_file, verify=False,
                                                         prefetch=False)
    else:
        import joblib

        model = joblib.load(model_file)
    rows = json.loads(sys.stdin.read())
    one = np.asarray(rows[:1], dtype=np.float64)
    hundred = np.asarray(batch_of(rows), dtype=np.float64)
    predictions = np.ravel(model.predict(np.asarray(rows, dtype=np.float64))).tolist()
    print(json.dumps({"predictions": predictions,
                      "one_row_ms": _time(model.predict, one, ONE_ROW_REPEATS),
                      "hundred_rows_ms": _time(model.predict, hundred, HUNDRED_ROW_REPEATS)}))


if __name__ == "__main__":
    _main(*sys.argv[1:3])
