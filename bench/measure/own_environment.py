"""The model's own predictions and predict timing in its own environment: a container of the
runtime image built for it (bench.model.serving_env), with the model, the rows and
own_predict.py mounted read-only and nothing else; no network.

Where the model is served with the host's own versions, the host computes these (datos.reference,
bench.measure.inprocess); where it is not, the host's scikit-learn would load another
version's pickle (InconsistentVersionWarning) and "correct" would compare the host's
arithmetic with itself. The reference predictions are cached by the model and the
environment.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.engine import Engine
from bench.engine.types import BindMount, ContainerSpec, Labels
from bench.errors import StepFailed, UsageError
from bench.host.fsutil import write_atomic
from bench.measure import own_predict
from bench.measure.inprocess import InProcessLatency
from bench.measure.probes import percentile, predictions_match
from bench.model.source import ModelArtifact

IN_CONTAINER = Path("/reference")
POLL_S = 0.2


def _run(engine: Engine, image: str, model: Path, rows: list[list[float]], labels: Labels,
         timed: bool, timeout_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mlbench-own-env-") as scratch:
        folder = Path(scratch)
        (folder / "rows.json").write_text(json.dumps(rows))
        folder.chmod(0o777)  # the runtime's user (uid 10001) writes the answer here
        spec = ContainerSpec(
            image=image, name=f"mlbench-own-env-{folder.name.rsplit('-', 1)[-1]}",
            labels=labels, container_port=None, network="none",
            binds=(BindMount(str(model), str(IN_CONTAINER / "model.joblib")),
                   BindMount(own_predict.__file__, str(IN_CONTAINER / "own_predict.py")),
                   BindMount(str(folder), str(IN_CONTAINER / "io"), read_only=False)),
            command=["python", str(IN_CONTAINER / "own_predict.py"),
                     str(IN_CONTAINER / "model.joblib"), str(IN_CONTAINER / "io/rows.json"),
                     str(IN_CONTAINER / "io/out.json"), *(["--timed"] if timed else [])])
        container = engine.create_container(spec)
        try:
            engine.start_container(container)
            deadline = time.monotonic() + timeout_s
            state = engine.container_state(container)
            while state.exit_code is None and time.monotonic() < deadline:
                time.sleep(POLL_S)
                state = engine.container_state(container)
            if state.exit_code != 0:
                logs = engine.logs_tail(container)
                why = ("did not finish in time" if state.exit_code is None
                       else f"exited with code {state.exit_code}")
                if "libgomp.so.1" in logs:  # LightGBM's wheel links the system's OpenMP
                    why += (": the base image lacks libgomp.so.1 (Debian's libgomp1); "
                            "`docker rmi python:3.11-slim` makes the harness build its own "
                            "base, which has it")
                raise StepFailed(f"the model's predict in its own environment ({image}) {why}",
                                 logs)
            found: dict[str, Any] = json.loads((folder / "out.json").read_text())
            return found
        finally:
            engine.remove_container(container)


def with_own_references(engine: Engine, image: str, model: ModelArtifact, cache: Path,
                        labels: Labels, timeout_s: float = 1800) -> ModelArtifact:
    """The model with the reference predictions (and probabilities) its own environment
    gives; details.environment.host_predicts_alike says whether the host's agreed."""
    environment = model.details["environment"]
    record = cache / "reference" / f"{model.sha256}-env{environment['serving']['key']}.json"
    if not record.exists():
        try:
            found = _run(engine, image, model.path, model.reference_rows, labels, timed=False,
                         timeout_s=timeout_s)
        except StepFailed as failure:
            # It installs and does not predict (LightGBM 4.5 calls a check_array argument
            # scikit-learn 1.8 removed): versions that do not work together, the user's to pin.
            last = failure.log_tail.strip().splitlines()[-1:] or [str(failure)]
            raise UsageError(f"{model.path.name} does not predict in its own environment "
                             f"({'; '.join(environment['serving']['changes'])}): {last[0]}; "
                             "pin versions that work together with --requirements FILE"
                             ) from None
        write_atomic(record, json.dumps(found))
    own = json.loads(record.read_text())
    alike = (predictions_match(model.reference_predictions, own["predictions"])
             and predictions_match(model.reference_probabilities or [],
                                   own["probabilities"] or []))
    details = {**model.details, "environment": {**environment, "host_predicts_alike": alike}}
    return dataclasses.replace(model, reference_predictions=own["predictions"],
                               reference_probabilities=own["probabilities"], details=details)


def measure(engine: Engine, image: str, model: ModelArtifact, labels: Labels,
            timeout_s: float = 1800) -> InProcessLatency:
    """The in-process reference (bench.measure.inprocess) in the model's own environment."""
    timings = _run(engine, image, model.path, model.reference_rows, labels, timed=True,
                   timeout_s=timeout_s)
    if not predictions_match(timings["predictions"], model.reference_predictions):
        raise StepFailed(f"in-process predict of {model.path.name} in its own environment did "
                         "not give the model's predictions")
    return InProcessLatency(percentile(timings["one_row_ms"], 0.5),
                            percentile(timings["hundred_rows_ms"], 0.5))
