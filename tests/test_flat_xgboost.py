"""XGBoost models in the flat format: margins bit for bit with XGBoost's (float32 sums);
outputs through an exp within 1 ulp of float32, probabilities within 2 (an exp one ulp off
moves them through the sum and the division; see bench/model/flat_xgboost.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.flat_cases import assert_refused, serve_flat, training_data, unseen_rows

xgboost = pytest.importorskip("xgboost")  # the test extra installs it; CI fails a skip
PARAMS = {"n_estimators": 40, "max_depth": 5, "n_jobs": 1, "random_state": 0}


def _ulps(expected: np.ndarray, actual: np.ndarray) -> int:
    """The largest distance in float32 steps between two float32 arrays."""
    a = expected.astype(np.float32).view(np.int32).astype(np.int64)
    b = actual.astype(np.float32).view(np.int32).astype(np.int64)
    return int(np.max(np.abs(a - b)))


def test_a_regressor_predicts_bit_for_bit(tmp_path: Path) -> None:
    x, y = training_data(True)
    model = xgboost.XGBRegressor(**PARAMS).fit(x, y)
    served = serve_flat(model, tmp_path)
    rows = unseen_rows(True)
    expected, actual = model.predict(rows), served.predict(rows)
    assert expected.dtype == actual.dtype == np.float32
    assert np.array_equal(expected, actual)
    assert np.unique(actual).size > 100


@pytest.mark.parametrize("case", ["poisson", "binary", "multiclass"])
def test_transformed_outputs_are_within_an_ulp_or_two_of_float32(case: str, tmp_path: Path
                                                                 ) -> None:
    classes = {"poisson": 0, "binary": 2, "multiclass": 4}[case]
    bound = 1 if case == "poisson" else 2  # exp alone; 1 / (1 + exp) or a softmax
    x, y = training_data(True, classes)
    if case == "poisson":
        model = xgboost.XGBRegressor(objective="count:poisson", **PARAMS).fit(x, np.exp(y / 3))
    else:
        model = xgboost.XGBClassifier(**PARAMS).fit(x, y)
    served = serve_flat(model, tmp_path)
    rows = unseen_rows(True)
    # The margins, before the exp, are XGBoost's bit for bit.
    margin = model.get_booster().inplace_predict(rows, predict_type="margin")
    raw = served.forest._combined(rows, None)
    assert np.array_equal(np.asarray(margin, np.float32).reshape(raw.shape), raw)
    if not classes:
        assert _ulps(model.predict(rows), served.predict(rows)) <= bound
        return
    expected, proba = model.predict_proba(rows), served.predict_proba(rows)
    assert proba.dtype == np.float32
    if classes == 2:
        # The positive class's probability within the bound; the other is 1 - p on both
        # sides, so its error is the same amount (many of its own ulps where p is near 1).
        assert _ulps(expected[:, 1], proba[:, 1]) <= bound
        assert np.array_equal(proba[:, 0], np.float32(1) - proba[:, 1])
        assert np.array_equal(expected[:, 0], np.float32(1) - expected[:, 1])
    else:
        assert _ulps(expected, proba) <= bound
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
    x, y = training_data(True)
    model = xgboost.XGBRegressor(n_estimators=3, n_jobs=1, **params).fit(x, y)
    assert_refused(model, reason, tmp_path)
