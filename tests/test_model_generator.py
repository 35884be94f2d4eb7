from pathlib import Path

import joblib
import numpy as np
import pytest
import threadpoolctl

from datos import boosting_models
from datos.model_generator import VALUE_BANDS, generate_model
from datos.synthetic_fifa import N_FEATURES, generate


def test_model_reaches_the_requested_size_and_is_deterministic(tmp_path: Path) -> None:
    first = generate_model(3_000_000, 7, tmp_path / "a")
    second = generate_model(3_000_000, 7, tmp_path / "b")
    assert abs(first.bytes - 3_000_000) <= 0.10 * 3_000_000
    assert Path(first.path).read_bytes() == Path(second.path).read_bytes()
    model = joblib.load(first.path)
    assert model.n_features_in_ == N_FEATURES
    assert model.max_depth == 30 and model.max_features == "sqrt"
    assert np.allclose(model.predict(np.asarray(first.reference_rows)),
                       first.reference_predictions)


def test_cached_model_is_reused(tmp_path: Path) -> None:
    first = generate_model(1_000_000, 0, tmp_path)
    mtime = Path(first.path).stat().st_mtime_ns
    again = generate_model(1_000_000, 0, tmp_path)
    assert again == first and Path(first.path).stat().st_mtime_ns == mtime


def test_synthetic_data_has_the_fifa_shape() -> None:
    data = generate(n_players=5000, seed=1)
    assert data.features.shape == (5000, 110)
    one_hot = data.features[:, 48:]
    assert set(np.unique(one_hot)) <= {0.0, 1.0}
    assert np.all(one_hot.sum(axis=1) == 5)  # one value per categorical column
    assert data.market_value_eur.min() >= 0 and data.market_value_eur.max() <= 123_000_000


def test_a_classifier_of_value_bands_reaches_its_size_and_serves_its_bands(
        tmp_path: Path) -> None:
    """--model-kind forest-classifier: the same forest shape, predicting the market-value
    quartile; the reference holds the bands and the probabilities."""
    made = generate_model(2_000_000, 3, tmp_path, kind="forest-classifier")
    assert Path(made.path).name == "fifa_rfc_2000000B_seed3.joblib"
    assert abs(made.bytes - 2_000_000) <= 0.10 * 2_000_000
    model = joblib.load(made.path)
    rows = np.asarray(made.reference_rows)
    assert list(model.classes_) == sorted(VALUE_BANDS)
    assert made.reference_predictions == model.predict(rows).tolist()
    assert made.reference_probabilities == model.predict_proba(rows).tolist()
    assert len(set(made.reference_predictions)) > 1
    # The regressor of the same size and seed is another file.
    assert generate_model(2_000_000, 3, tmp_path).path != made.path


@pytest.mark.parametrize("kind", list(boosting_models.KINDS))
def test_a_boosting_model_reaches_its_size_and_predicts_its_reference(
        tmp_path: Path, kind: str) -> None:
    """--model-kind hgb|lightgbm|xgboost: a regressor of the market value, trained by its
    library to the size asked, its reference what the saved file predicts."""
    # One thread: HistGradientBoosting trains on every core by default, and its OpenMP
    # threads spin while they wait, beside two engine lanes (52 s in a suite, 7 s alone).
    with threadpoolctl.threadpool_limits(1):
        made = generate_model(300_000, 1, tmp_path, kind=kind)
    assert abs(made.bytes - 300_000) <= 0.10 * 300_000, made
    model = joblib.load(made.path)
    library = boosting_models.KINDS[kind].library
    assert type(model).__module__.split(".")[0] == {"scikit-learn": "sklearn"}.get(library,
                                                                                  library)
    assert made.reference_predictions == model.predict(np.asarray(made.reference_rows)).tolist()
    assert len(set(made.reference_predictions)) > 1
    assert made.n_estimators > 2 * boosting_models.PROBE_ITERATIONS  # grown past the probes


def test_a_lightgbm_model_is_the_same_file_when_trained_again(tmp_path: Path) -> None:
    """LightGBM's determinism is a setting (deterministic=True, one thread); scikit-learn's
    and XGBoost's follow from the seed. (Each training costs CI 5-20 s, most of it fixed:
    binning 122,501 rows of 110 features, so one kind is trained twice, not three.)"""
    made = generate_model(300_000, 1, tmp_path, kind="lightgbm")
    again = generate_model(300_000, 1, tmp_path / "again", kind="lightgbm")
    assert Path(again.path).read_bytes() == Path(made.path).read_bytes()


def test_a_boosting_kind_whose_library_is_missing_is_a_usage_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.errors import UsageError
    from bench.run.config import RunConfig

    monkeypatch.setattr(boosting_models.importlib.util, "find_spec", lambda _name: None)
    with pytest.raises(UsageError, match=r"--model-kind lightgbm trains with lightgbm, which "
                                         r"this host cannot import: pip install lightgbm$"):
        RunConfig(strategies=("mmap",), model_path=None, model_size_bytes=1_000_000,
                  model_kind="lightgbm")
