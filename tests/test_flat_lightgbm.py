"""LightGBM models in the flat format predict what LightGBM predicts, bit for bit, and the
service serves them with numpy alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from bench.model.flat_forest import convert, flat_refusal
from tests.flat_cases import assert_refused, flat, serve_flat, training_data, unseen_rows

lightgbm = pytest.importorskip("lightgbm")  # the test extra installs it; CI fails a skip


PARAMS = {"n_estimators": 40, "num_leaves": 15, "verbose": -1, "random_state": 0}
CASES = {
    # Trained with NaN: its splits send NaN to their default side.
    "regressor-nan": (lambda: lightgbm.LGBMRegressor(**PARAMS), 0, True),
    # Trained without: its splits read NaN as 0.0 (missing_type None).
    "regressor-no-nan": (lambda: lightgbm.LGBMRegressor(**PARAMS), 0, False),
    "poisson": (lambda: lightgbm.LGBMRegressor(objective="poisson", **PARAMS), 0, True),
    "binary": (lambda: lightgbm.LGBMClassifier(**PARAMS), 2, True),
    "multiclass": (lambda: lightgbm.LGBMClassifier(**PARAMS), 4, True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_lightgbm_predictions_equal_lightgbms_bit_for_bit(case: str, tmp_path: Path) -> None:
    make, classes, nan = CASES[case]
    x, y = training_data(nan, classes)
    if case == "poisson":
        y = np.exp(y / 3)
    model = make().fit(x, y)
    served = serve_flat(model, tmp_path)
    rows = unseen_rows(True, zeros=True)
    expected, actual = model.predict(rows), served.predict(rows)
    assert expected.dtype == actual.dtype and np.array_equal(expected, actual)
    if classes:
        assert np.unique(actual).size >= 2
        proba_expected, proba = model.predict_proba(rows), served.predict_proba(rows)
        assert np.array_equal(proba_expected, proba)
    else:
        assert np.unique(actual).size > 10


def test_a_lightgbm_service_needs_no_lightgbm(tmp_path: Path) -> None:
    """The flat file alone: the service's reader imports numpy, never LightGBM."""
    import subprocess
    import sys

    x, y = training_data(True)
    model = lightgbm.LGBMRegressor(**PARAMS).fit(x, y)
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    converted = convert(path, "lgbm" * 16, tmp_path / "cache", "test-run")
    np.save(tmp_path / "rows.npy", unseen_rows(True, zeros=True))
    code = (
        "import sys, numpy as np; sys.modules['lightgbm'] = None; sys.modules['sklearn'] = None\n"
        f"sys.path.insert(0, {str(flat.__file__.rsplit('/', 1)[0])!r})\n"
        "import flat_forest\n"
        f"m = flat_forest.FlatForest.open({str(converted.path)!r}, verify=True)\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, m.predict(np.load({str(tmp_path / 'rows.npy')!r})))\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert np.array_equal(np.load(tmp_path / "out.npy"), model.predict(unseen_rows(True, zeros=True)))


@pytest.mark.parametrize("params, reason", [
    ({"zero_as_missing": True}, "zero_as_missing"),
    ({"objective": "multiclassova", "num_class": 3}, "multiclassova"),
], ids=["zero-as-missing", "multiclassova"])
def test_what_the_flat_format_cannot_hold_is_refused_with_the_reason(
        params: dict[str, Any], reason: str, tmp_path: Path) -> None:
    classes = 3 if "num_class" in params else 0
    x, y = training_data(True, classes)
    cls = lightgbm.LGBMClassifier if classes else lightgbm.LGBMRegressor
    model = cls(n_estimators=5, verbose=-1, **params).fit(x, y)
    assert_refused(model, reason, tmp_path)


def test_a_categorical_split_is_refused(tmp_path: Path) -> None:
    x, y = training_data(False)
    x[:, 0] = np.abs(x[:, 0]).astype(int) % 6
    model = lightgbm.LGBMRegressor(n_estimators=10, verbose=-1).fit(
        x, y, categorical_feature=[0])
    assert "categorical" in (flat_refusal(model) or "")
