from pathlib import Path

import joblib
import numpy as np

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
