"""The in-process reference: the model's own predict, timed in a fresh process, and checked
to predict what the model predicts."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.errors import StepFailed
from bench.measure import inprocess, own_predict
from bench.model.flat_forest import convert
from bench.model.source import ModelArtifact


def test_joblib_and_flat_predict_are_timed_on_the_models_own_predictions(
        tiny_model: ModelArtifact, tmp_path: Path) -> None:
    flat = convert(tiny_model.path, tiny_model.sha256, tmp_path, "test")
    for kind, path in (("joblib", tiny_model.path), ("flat", flat.path)):
        latency = inprocess.measure(kind, path, tiny_model.reference_rows,
                                    tiny_model.reference_predictions)
        for value in latency.metrics().values():
            assert math.isfinite(value) and value > 0


def test_a_reference_that_predicts_otherwise_is_refused(tiny_model: ModelArtifact) -> None:
    wrong = [value + 1.0 for value in tiny_model.reference_predictions]
    with pytest.raises(StepFailed, match="did not give the model's predictions"):
        inprocess.measure("joblib", tiny_model.path, tiny_model.reference_rows, wrong)


def test_a_batch_is_the_reference_rows_repeated_to_100() -> None:
    rows = [[1.0], [2.0], [3.0]]
    batch = own_predict.batch_of(rows)
    assert len(batch) == 100 and batch[:4] == [[1.0], [2.0], [3.0], [1.0]]
