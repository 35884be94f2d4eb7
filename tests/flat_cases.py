"""What the flat-format tests of every model family share: training data, unseen rows, the
model converted and served as the service serves it, and a refusal checked end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from bench.errors import UsageError
from bench.host.paths import service_module
from bench.model.flat_forest import convert, flat_refusal

flat = service_module("flat_forest")
ROWS = 2000
FEATURES = 8


def training_data(nan: bool, classes: int = 0, rows: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Features of very different scales, a smooth target (or its quantile classes), and a
    tenth of the values NaN when the model is to learn where NaN goes."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(rows, FEATURES)) * rng.uniform(0.1, 500, size=FEATURES)
    y = x[:, 0] / 100 + np.sin(x[:, 1]) + rng.normal(size=rows)
    if classes:
        y = np.digitize(y, np.quantile(y, np.linspace(0, 1, classes + 1)[1:-1]))
    if nan:
        x[rng.random(x.shape) < 0.1] = np.nan
    return x, y


def unseen_rows(nan: bool, zeros: bool = False) -> np.ndarray:
    """2,000 rows the model never saw: NaN in a tenth of the values where the model takes NaN,
    and some exact zeros (where LightGBM reads NaN as 0.0)."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(ROWS, FEATURES)) * rng.uniform(0.1, 500, size=FEATURES)
    if nan:
        x[rng.random(x.shape) < 0.1] = np.nan
    if zeros:
        x[rng.random(x.shape) < 0.02] = 0.0
    return x


def serve_flat(model: Any, tmp_path: Path) -> Any:
    """The model through the harness's conversion, opened as the service opens it."""
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    converted = convert(path, "f" * 64, tmp_path / "cache", "test-run")
    return flat.FlatModel(flat.FlatForest.open(str(converted.path), verify=True))


def assert_refused(model: Any, reason: str, tmp_path: Path) -> None:
    """The refusal names the reason, and converting the saved model is a usage error."""
    assert reason in (flat_refusal(model) or "")
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    with pytest.raises(UsageError, match=reason):
        convert(path, "0" * 64, tmp_path / "cache", "test-run")
