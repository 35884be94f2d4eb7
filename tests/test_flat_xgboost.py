"""XGBoost models in the flat format: margins bit for bit with XGBoost's (float32 sums);
outputs through an exp within 1 ulp of float32, a softmax's within 2 (an exp one ulp off
moves every class's share; see bench/model/flat_xgboost.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from bench.errors import UsageError
from bench.host.paths import service_module
from bench.model.flat_forest import convert, flat_refusal

xgboost = pytest.importorskip("xgboost")  # the test extra installs it; CI fails a skip
flat = service_module("flat_forest")
ROWS = 2000
PARAMS = {"n_estimators": 40, "max_depth": 5, "n_jobs": 1, "random_state": 0}


def _data(classes: int = 0, rows: int = 800) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(rows, 6)) * rng.uniform(0.1, 300, size=6)
    y = x[:, 0] / 50 + np.sin(x[:, 1] / 30) + rng.normal(size=rows)
    if classes:
        y = np.digitize(y, np.quantile(y, np.linspace(0, 1, classes + 1)[1:-1]))
    x[rng.random(x.shape) < 0.1] = np.nan
    return x, y


def _rows() -> np.ndarray:
    rng = np.random.default_rng(9)
    x = rng.normal(size=(ROWS, 6)) * rng.uniform(0.1, 300, size=6)
    x[rng.random(x.shape) < 0.1] = np.nan
    return x


def _open(model: Any, tmp_path: Path) -> Any:
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    converted = convert(path, "xgb" * 21 + "x", tmp_path / "cache", "test-run")
    return flat.FlatModel(flat.FlatForest.open(str(converted.path), verify=True))


def _ulps(expected: np.ndarray, actual: np.ndarray) -> int:
    """The largest distance in float32 steps between two float32 arrays."""
    a = expected.astype(np.float32).view(np.int32).astype(np.int64)
    b = actual.astype(np.float32).view(np.int32).astype(np.int64)
    return int(np.max(np.abs(a - b)))


def test_a_regressor_predicts_bit_for_bit(tmp_path: Path) -> None:
    x, y = _data()
    model = xgboost.XGBRegressor(**PARAMS).fit(x, y)
    served = _open(model, tmp_path)
    rows = _rows()
    expected, actual = model.predict(rows), served.predict(rows)
    assert expected.dtype == actual.dtype == np.float32
    assert np.array_equal(expected, actual)
    assert np.unique(actual).size > 100


@pytest.mark.parametrize("case", ["poisson", "binary", "multiclass"])
def test_transformed_outputs_are_within_an_ulp_or_two_of_float32(case: str, tmp_path: Path
                                                                 ) -> None:
    classes = {"poisson": 0, "binary": 2, "multiclass": 4}[case]
    bound = 2 if case == "multiclass" else 1
    x, y = _data(classes)
    if case == "poisson":
        model = xgboost.XGBRegressor(objective="count:poisson", **PARAMS).fit(x, np.exp(y / 3))
    else:
        model = xgboost.XGBClassifier(**PARAMS).fit(x, y)
    served = _open(model, tmp_path)
    rows = _rows()
    # The margins, before the exp, are XGBoost's bit for bit.
    margin = model.get_booster().inplace_predict(rows, predict_type="margin")
    raw = served.forest._combined(rows, None)
    assert np.array_equal(np.asarray(margin, np.float32).reshape(raw.shape), raw)
    if not classes:
        assert _ulps(model.predict(rows), served.predict(rows)) <= bound
        return
    expected, proba = model.predict_proba(rows), served.predict_proba(rows)
    assert proba.dtype == np.float32 and _ulps(expected, proba) <= bound
    same = model.predict(rows) == served.predict(rows)
    # A class can differ only where two probabilities are within that ulp of each other.
    top2 = np.sort(expected, axis=1)[:, -2:]
    assert np.all(same | (np.abs(top2[:, 1] - top2[:, 0]) <= 2 * np.spacing(np.float32(1))))
    assert np.unique(served.predict(rows)).size >= 2


@pytest.mark.parametrize("params, reason", [
    ({"booster": "dart"}, "dart"),
    ({"missing": 0.0}, "missing value"),
], ids=["dart", "missing-zero"])
def test_what_the_flat_format_cannot_hold_is_refused_with_the_reason(
        params: dict[str, Any], reason: str, tmp_path: Path) -> None:
    x, y = _data()
    model = xgboost.XGBRegressor(n_estimators=3, n_jobs=1, **params).fit(x, y)
    assert reason in (flat_refusal(model) or "")
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    with pytest.raises(UsageError, match=reason):
        convert(path, "no" * 32, tmp_path / "cache", "test-run")
