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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import StepFailed
from bench.measure import own_predict
from bench.measure.probes import percentile, predictions_match


@dataclass(frozen=True)
class InProcessLatency:
    one_row_p50_ms: float
    hundred_rows_p50_ms: float

    def metrics(self) -> dict[str, float]:
        return {"inproc_predict_p50_ms": self.one_row_p50_ms,
                "inproc_predict_100_p50_ms": self.hundred_rows_p50_ms}


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


def _main(kind: str, model_file: str) -> None:
    if kind == "flat":
        from bench.host.paths import service_module

        model = service_module("flat_forest").open_model(model_file, verify=False,
                                                         prefetch=False)
    else:
        import joblib

        model = joblib.load(model_file)
    print(json.dumps(own_predict.report(model, json.loads(sys.stdin.read()), timed=True)))


if __name__ == "__main__":
    _main(*sys.argv[1:3])
