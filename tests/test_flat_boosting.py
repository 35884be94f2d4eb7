"""Boosting models in the flat format predict what scikit-learn predicts, bit for bit."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from scipy.special import expit
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.model.flat_forest import convert
from tests.flat_cases import assert_refused, flat, serve_flat, training_data, unseen_rows

HIST_NAN = True  # HistGradientBoosting learns where NaN goes; GradientBoosting refuses NaN
CASES = {
    "gb-regressor": (GradientBoostingRegressor(n_estimators=40, max_depth=4, learning_rate=0.3,
                                               random_state=0), 0, False),
    "gb-regressor-huber": (GradientBoostingRegressor(loss="huber", n_estimators=20,
                                                     random_state=1), 0, False),
    "gb-binary": (GradientBoostingClassifier(n_estimators=30, random_state=2), 2, False),
    "gb-multiclass": (GradientBoostingClassifier(n_estimators=15, random_state=3), 4, False),
    "hgb-regressor": (HistGradientBoostingRegressor(max_iter=60, random_state=4), 0, HIST_NAN),
    "hgb-poisson": (HistGradientBoostingRegressor(loss="poisson", max_iter=30,
                                                  random_state=5), 0, HIST_NAN),
    "hgb-binary": (HistGradientBoostingClassifier(max_iter=40, random_state=6), 2, HIST_NAN),
    "hgb-multiclass": (HistGradientBoostingClassifier(max_iter=20, random_state=7), 3,
                       HIST_NAN),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_boosting_predictions_equal_scikit_learns_bit_for_bit(case: str, tmp_path: Path
                                                              ) -> None:
    model, classes, nan = CASES[case]
    x, y = training_data(nan, classes)
    if case == "hgb-poisson":
        y = np.exp(y / 4)
    model.fit(x, y)
    served = serve_flat(model, tmp_path)
    rows = unseen_rows(nan)
    expected, actual = model.predict(rows), served.predict(rows)
    assert expected.dtype == actual.dtype and np.array_equal(expected, actual)
    if classes:
        assert list(served.classes_) == list(model.classes_)
        proba_expected, proba = model.predict_proba(rows), served.predict_proba(rows)
        assert proba.dtype == np.float64 and np.array_equal(proba_expected, proba)
        # Several classes predicted: the decision rule was exercised, not one class.
        assert np.unique(actual).size >= 2
    else:
        assert np.unique(actual).size > 10  # the trees' values, not a constant baseline
        assert not hasattr(served, "predict_proba")


def test_a_pipeline_ending_in_boosting_keeps_its_preprocessing(tmp_path: Path) -> None:
    x, y = training_data(False)
    pipeline = make_pipeline(StandardScaler(), GradientBoostingRegressor(random_state=0))
    pipeline.fit(x, y)
    path = tmp_path / "model.joblib"
    joblib.dump(pipeline, path)
    converted = convert(path, "pipe" * 16, tmp_path / "cache", "test-run")
    served = flat.open_model(str(converted.path), verify=True, prefetch=False)
    rows = unseen_rows(False)
    assert np.array_equal(pipeline.predict(rows), served.predict(rows))


def test_gradient_boosting_refuses_nan_as_scikit_learn_does(tmp_path: Path) -> None:
    x, y = training_data(False)
    model = GradientBoostingRegressor(n_estimators=5).fit(x, y)
    served = serve_flat(model, tmp_path)
    rows = unseen_rows(True)
    with pytest.raises(ValueError, match="NaN"):
        model.predict(rows)
    with pytest.raises(ValueError, match="NaN"):
        served.predict(rows)


def test_the_service_computes_expit_as_scipy_does() -> None:
    """The binary classifiers' probabilities depend on it: the service's 1 / (1 + exp(-x))
    and scipy's expit, over the range where expit is neither 0 nor 1 and beyond. Found on an
    AVX-512 host: numpy's vectorised exp differed from scipy's in 3,758 of these values."""
    raw = np.random.default_rng(0).normal(0, 40, 200_000)
    raw[:3] = (-800.0, 800.0, 0.0)
    assert np.array_equal(flat._inverse_link("logit", raw, "libm"), expit(raw))


def test_the_services_exps_are_the_c_librarys_and_numpys() -> None:
    """"libm" is the C library's exp value by value (LightGBM's std::exp), overflow to inf
    included, and "numpy" is numpy's ufunc (scikit-learn's exp link and softmax), whatever
    loop this CPU dispatches to."""
    raw = np.random.default_rng(1).normal(0, 300, 50_000)
    raw[:3] = (1000.0, -1000.0, np.nan)
    libm = flat._exp(raw, "libm")
    assert [math.exp(v) if v < 709 else math.inf for v in raw[:2]] == list(libm[:2])
    assert np.isnan(libm[2])
    finite = raw[3:][raw[3:] < 709]
    assert np.array_equal(libm[3:][raw[3:] < 709], [math.exp(v) for v in finite])
    with np.errstate(over="ignore"):
        assert np.array_equal(flat._exp(raw, "numpy"), np.exp(raw), equal_nan=True)


@pytest.mark.parametrize("model, reason", [
    (HistGradientBoostingRegressor(categorical_features=[0], max_iter=5), "categorical"),
    (GradientBoostingClassifier(loss="exponential", n_estimators=5), "HalfLogitLink"),
    (GradientBoostingRegressor(init=LinearRegression(), n_estimators=5), "own baseline"),
], ids=["categorical", "exponential-loss", "row-dependent-init"])
def test_what_the_flat_format_cannot_hold_is_refused_with_the_reason(
        model: Any, reason: str, tmp_path: Path) -> None:
    x, y = training_data(False, classes=2 if isinstance(model, GradientBoostingClassifier) else 0)
    if reason == "categorical":
        x[:, 0] = np.abs(x[:, 0]).astype(int) % 5
    model.fit(x, y)
    assert_refused(model, reason, tmp_path)
