"""The prediction service in-process (FastAPI TestClient) with a real tiny model file."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bench.measure.probes import predictions_match
from bench.model.flat_forest import convert
from bench.model.source import ModelArtifact
from tests.conftest import load_service, project_path


def client_for(env: dict[str, str]) -> tuple[TestClient, Any]:
    app_module = load_service(env)
    return TestClient(app_module.app), app_module


def wait_ready(client: TestClient) -> None:
    for _ in range(600):
        if client.get("/ready").status_code == 200:
            return
        threading.Event().wait(0.05)
    raise AssertionError(client.get("/ready").json())


def test_eager_service_predicts_what_the_model_predicts(
        tiny_model: ModelArtifact, service_env: None) -> None:
    client, _ = client_for({"MODEL_PATH": str(tiny_model.path), "MODEL_LOADING": "eager",
                            "MODEL_CODEC": "none", "MODEL_SHA256": ""})
    with client:
        assert client.get("/health").json() == {"status": "up"}
        wait_ready(client)
        response = client.post("/predict", json={"rows": tiny_model.reference_rows})
        assert response.status_code == 200
        assert predictions_match(response.json()["predictions"], tiny_model.reference_predictions)
        meta = client.get("/metadata").json()
        assert meta["n_features"] == tiny_model.n_features
        assert meta["story"]["load_count"] == 1


@pytest.mark.parametrize(("body", "fragment"), [
    ({"rows": []}, "at least 1"),
    ({"rows": [[1.0, 2.0]]}, "features"),
    ({"rows": [["a"] * 110]}, "float"),
    ({"rows": [[True] * 110]}, "float"),
    ({"rows": "nope"}, "list"),
    ({}, "rows"),
])
def test_bad_input_is_a_clear_422_never_a_500(
        tiny_model: ModelArtifact, service_env: None, body: dict[str, Any], fragment: str) -> None:
    client, _ = client_for({"MODEL_PATH": str(tiny_model.path), "MODEL_LOADING": "lazy",
                            "MODEL_CODEC": "none", "MODEL_SHA256": ""})
    with client:
        response = client.post("/predict", json=body)
    assert response.status_code == 422
    assert fragment in response.text


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_values_are_refused(
        tiny_model: ModelArtifact, service_env: None, literal: str) -> None:
    client, _ = client_for({"MODEL_PATH": str(tiny_model.path), "MODEL_LOADING": "lazy",
                            "MODEL_CODEC": "none", "MODEL_SHA256": ""})
    row = ", ".join(["1.0"] * 109 + [literal])
    with client:
        response = client.post("/predict", content=f'{{"rows": [[{row}]]}}',
                               headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_concurrent_first_requests_load_the_lazy_model_once(
        tiny_model: ModelArtifact, service_env: None, tmp_path: Path) -> None:
    compressed = tmp_path / "model.joblib.gz"
    with tiny_model.path.open("rb") as source, gzip.open(compressed, "wb", 1) as target:
        shutil.copyfileobj(source, target)
    client, app_module = client_for({"MODEL_PATH": str(compressed), "MODEL_LOADING": "lazy",
                                     "MODEL_CODEC": "gzip", "MODEL_SHA256": ""})
    results: list[int] = []
    with client:
        assert client.get("/ready").json()["model_loaded"] is False  # start-up did not load
        barrier = threading.Barrier(16)

        def first_request() -> None:
            barrier.wait()
            results.append(client.post("/predict", json={"rows": tiny_model.reference_rows})
                           .status_code)

        threads = [threading.Thread(target=first_request) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [200] * 16
        assert app_module.holder.story.load_count == 1


def wait_for_load_error(client: TestClient) -> Any:
    """/ready once the model load has failed (or after 10 s): the response to assert on."""
    for _ in range(200):
        ready = client.get("/ready")
        if ready.json().get("error"):
            break
        threading.Event().wait(0.05)
    return ready


class _WritesMarker:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def test_a_model_that_does_not_match_its_pin_is_never_unpickled(
        service_env: None, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    tampered = tmp_path / "model.joblib"
    tampered.write_bytes(pickle.dumps(_WritesMarker(marker)))
    pinned = hashlib.sha256(b"the model we meant to ship").hexdigest()
    client, _ = client_for({"MODEL_PATH": str(tampered), "MODEL_LOADING": "eager",
                            "MODEL_CODEC": "none", "MODEL_SHA256": pinned})
    with client:
        ready = wait_for_load_error(client)
        assert ready.status_code == 503
        assert "does not match pinned" in ready.json()["error"]
        assert client.post("/predict", json={"rows": [[1.0] * 110]}).status_code == 503
    assert not marker.exists()


def _named_models(folder: Path) -> dict[str, tuple[Path, Any]]:
    """A linear Pipeline and a forest, both fitted on a DataFrame (so with feature names)."""
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(200, 4)), columns=["age", "pace", "shot", "pass"])
    y = frame.to_numpy() @ np.array([1.0, -2.0, 0.5, 3.0])
    models = {"linear": make_pipeline(StandardScaler(), Ridge()).fit(frame, y),
              "forest": RandomForestRegressor(n_estimators=3, random_state=0).fit(frame, y)}
    paths = {}
    for name, model in models.items():
        joblib.dump(model, folder / f"{name}.joblib")
        paths[name] = (folder / f"{name}.joblib", model)
    return paths


def test_a_linear_model_takes_any_finite_float64_and_a_tree_refuses_beyond_float32(
        tmp_path: Path, service_env: None) -> None:
    import numpy as np

    row = [1e39, 0.5, -1e300, 2.0]  # finite in float64, beyond float32's range
    for name, (path, model) in _named_models(tmp_path).items():
        client, _ = client_for({"MODEL_PATH": str(path), "MODEL_LOADING": "lazy",
                                "MODEL_CODEC": "none", "MODEL_SHA256": ""})
        with client:
            response = client.post("/predict", json={"rows": [row]})
        if name == "linear":
            assert response.status_code == 200, response.text
            expected = model.predict(np.asarray([row]))  # as an array, like the service
            assert predictions_match(response.json()["predictions"], list(expected))
        else:
            assert response.status_code == 422 and "float32" in response.text


def test_named_records_predict_like_rows_and_name_what_is_missing_or_unknown(
        tmp_path: Path, service_env: None) -> None:
    path, model = _named_models(tmp_path)["linear"]
    client, _ = client_for({"MODEL_PATH": str(path), "MODEL_LOADING": "lazy",
                            "MODEL_CODEC": "none", "MODEL_SHA256": ""})
    record = {"pace": 0.1, "age": 1.5, "pass": -0.3, "shot": 2.0}  # any order
    with client:
        by_rows = client.post("/predict", json={"rows": [[1.5, 0.1, 2.0, -0.3]]})
        by_records = client.post("/predict", json={"records": [record]})
        missing = client.post("/predict", json={"records": [
            record, {k: v for k, v in record.items() if k != "shot"}]})
        unknown = client.post("/predict", json={"records": [{**record, "height": 1.8}]})
        both = client.post("/predict", json={"rows": [[1, 2, 3, 4]], "records": [record]})
        names = client.get("/metadata").json()["feature_names"]
    assert by_records.status_code == 200 and by_rows.status_code == 200
    assert by_records.json()["predictions"] == by_rows.json()["predictions"]
    assert missing.status_code == 422 and missing.json()["detail"] == "records[1]: missing shot"
    assert unknown.status_code == 422 and unknown.json()["detail"] == "records[0]: unknown height"
    assert both.status_code == 422
    assert names == ["age", "pace", "shot", "pass"] == list(model.feature_names_in_)


def test_records_for_a_model_without_feature_names_are_refused_with_the_fix(
        tiny_model: ModelArtifact, service_env: None) -> None:
    client, _ = client_for({"MODEL_PATH": str(tiny_model.path), "MODEL_LOADING": "lazy",
                            "MODEL_CODEC": "none", "MODEL_SHA256": ""})
    with client:
        response = client.post("/predict", json={"records": [{"a": 1.0}]})
        described = client.get("/metadata").json()
    assert described["feature_names"] is None  # the synthetic forest is fitted on an array
    assert response.status_code == 422 and "send rows" in response.json()["detail"]


# The service imported as the tests import it (as in the image, package `backend`), in a
# fresh interpreter, which then prints the heavy libraries it holds.
IMPORT_SERVICE = """
import json
import sys
from fastapi.testclient import TestClient
from tests.conftest import load_service, project_path
client = TestClient(load_service({}).app)
answer = client.post("/predict", json={"rows": json.loads(sys.argv[1])})
assert answer.status_code == 200, answer.text
print(json.dumps(answer.json()["predictions"]))
print(",".join(sorted({name.split(".")[0] for name in sys.modules} & {"sklearn", "scipy"})))
"""


def test_a_flat_service_holds_neither_scikit_learn_nor_scipy(
        tiny_model: ModelArtifact, tmp_path: Path) -> None:
    """Each worker and replica holds its imports privately (the model itself is shared page
    cache): the flat forest's service imports numpy only, a joblib service scikit-learn."""
    flat = convert(tiny_model.path, tiny_model.sha256, tmp_path, "test")
    held = {}
    for model_format, path in (("flat", flat.path), ("joblib", tiny_model.path)):
        env = {**os.environ, "MODEL_FORMAT": model_format, "MODEL_PATH": str(path),
               "MODEL_LOADING": "lazy", "MODEL_CODEC": "none", "MODEL_SHA256": ""}
        rows = json.dumps(tiny_model.reference_rows[:2])
        predictions, modules = subprocess.run(
            [sys.executable, "-c", IMPORT_SERVICE, rows], cwd=project_path(), env=env,
            capture_output=True, text=True, check=True).stdout.split("\n")[:2]
        # Loaded and predicting (lazy: the first /predict loads), the model's own answers.
        assert json.loads(predictions) == list(tiny_model.reference_predictions[:2])
        held[model_format] = modules
    assert held == {"flat": "", "joblib": "scipy,sklearn"}
