"""A classifier served as a classifier: /predict answers its classes as the model has them
(strings here), /predict_proba its probabilities; the harness's reference and its checks
compare both with the model's own (datos/reference.py, bench.model.source)."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

from bench.measure.probes import predictions_match
from bench.model.flat_forest import convert
from bench.model.source import ModelArtifact, user_model
from bench.progress import Progress
from tests.test_service import client_for, wait_ready


@pytest.fixture(scope="module")
def classifier_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    y = np.where(X[:, 0] + X[:, 1] > 0, "striker", np.where(X[:, 2] > 0, "midfield", "keeper"))
    path = tmp_path_factory.mktemp("clf") / "clf.joblib"
    joblib.dump(RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y), path)
    return path


def test_the_reference_of_a_classifier_holds_its_classes_and_probabilities(
        classifier_file: Path, tmp_path: Path) -> None:
    artifact = user_model(classifier_file, tmp_path, Progress(quiet=True))
    model = joblib.load(classifier_file)
    rows = np.asarray(artifact.reference_rows)
    assert artifact.reference_predictions == model.predict(rows).tolist()
    assert {"striker", "keeper"} <= set(artifact.reference_predictions)
    assert artifact.reference_probabilities == model.predict_proba(rows).tolist()


def test_a_classifier_service_answers_classes_and_probabilities(
        classifier_file: Path, tmp_path: Path, service_env: None) -> None:
    artifact: ModelArtifact = user_model(classifier_file, tmp_path, Progress(quiet=True))
    client, _ = client_for({"MODEL_PATH": str(classifier_file), "MODEL_LOADING": "eager",
                            "MODEL_CODEC": "none", "MODEL_SHA256": ""})
    with client:
        wait_ready(client)
        answer = client.post("/predict", json={"rows": artifact.reference_rows}).json()
        assert answer["predictions"] == artifact.reference_predictions
        proba = client.post("/predict_proba", json={"rows": artifact.reference_rows}).json()
        assert proba["classes"] == ["keeper", "midfield", "striker"]
        assert predictions_match(proba["probabilities"], artifact.reference_probabilities or [])
        assert not predictions_match(proba["probabilities"][::-1],
                                     artifact.reference_probabilities or [])


def test_a_flat_boosting_classifier_service_answers_its_classes_and_probabilities(
        tmp_path: Path, service_env: None) -> None:
    """A HistGradientBoostingClassifier in the flat format (what mmap serves), through the
    service's own /predict and /predict_proba: the model's classes and probabilities."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 6))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = np.where(np.nan_to_num(X[:, 0]) > 0.3, "striker",
                 np.where(np.nan_to_num(X[:, 1]) > 0, "midfield", "keeper"))
    path = tmp_path / "hgb.joblib"
    joblib.dump(HistGradientBoostingClassifier(max_iter=15, random_state=0).fit(X, y), path)
    artifact = user_model(path, tmp_path, Progress(quiet=True))
    assert artifact.flat_refusal is None
    flat = convert(path, artifact.sha256, tmp_path, "test")
    client, _ = client_for({"MODEL_PATH": str(flat.path), "MODEL_FORMAT": "flat",
                            "MODEL_LOADING": "eager", "MODEL_CODEC": "none",
                            "MODEL_SHA256": ""})
    with client:
        wait_ready(client)
        answer = client.post("/predict", json={"rows": artifact.reference_rows}).json()
        assert answer["predictions"] == artifact.reference_predictions
        assert len(set(answer["predictions"])) >= 2
        proba = client.post("/predict_proba", json={"rows": artifact.reference_rows}).json()
        assert proba["classes"] == ["keeper", "midfield", "striker"]
        assert proba["probabilities"] == artifact.reference_probabilities  # bit for bit


def test_a_regressor_has_no_probabilities(tiny_model: ModelArtifact, service_env: None) -> None:
    client, _ = client_for({"MODEL_PATH": str(tiny_model.path), "MODEL_LOADING": "lazy",
                            "MODEL_CODEC": "none", "MODEL_SHA256": ""})
    with client:
        answer = client.post("/predict_proba", json={"rows": tiny_model.reference_rows[:1]})
    assert answer.status_code == 422 and "not a classifier" in answer.json()["detail"]
    assert tiny_model.reference_probabilities is None


def test_classes_compare_exactly_and_numbers_within_tolerance() -> None:
    assert predictions_match(["a", "b"], ["a", "b"]) and not predictions_match(["a"], ["b"])
    assert predictions_match([1.0 + 1e-12], [1.0]) and not predictions_match([1.1], [1.0])
    assert not predictions_match([1, 2], [1])
