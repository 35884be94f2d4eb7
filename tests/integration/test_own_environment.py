"""A model saved by another scikit-learn is served in its own environment: a forest made by
scikit-learn 1.3.2 with numpy 1.26 (in a venv the test makes and caches, nothing committed)
runs through the default strategies with those versions in its image, checked against what
that environment predicts, and no InconsistentVersionWarning anywhere."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.engine import Engine
from bench.host.paths import cache_dir
from bench.prepare.base_image import ensure_base_image
from bench.prepare.runtime_image import runtime_tag
from bench.progress import Progress
from bench.results.store import load_run
from tests.integration.test_end_to_end import assert_nothing_labelled
from tests.integration.test_user_models import _run

pytestmark = [pytest.mark.engine, pytest.mark.beside]

OLD = {"scikit-learn": "1.3.2", "numpy": "1.26.4"}

# Run by the old venv's Python: trains and saves the forest, and prints its predictions of
# the rows the harness makes its reference of (datos.reference: rng 0, normal, n rows).
TRAIN = """
import json, sys
import joblib, numpy as np
from sklearn.ensemble import RandomForestRegressor
path, n_rows = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(3)
x = rng.normal(size=(400, 5))
y = x @ rng.normal(size=5) + rng.normal(size=400)
model = RandomForestRegressor(n_estimators=6, max_depth=6, random_state=0).fit(x, y)
joblib.dump(model, path)
rows = np.random.default_rng(0).normal(0.0, 1.0, (n_rows, 5))
print(json.dumps(model.predict(rows).tolist()))
"""


@pytest.fixture(scope="module")
def old_python() -> Path:
    """A venv of scikit-learn 1.3.2 and numpy 1.26, made once and kept in the cache."""
    venv = cache_dir() / "test-venvs" / "-".join(f"{k}-{v}" for k, v in OLD.items())
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet",
                        "--disable-pip-version-check", "--only-binary=:all:",
                        *(f"{k}=={v}" for k, v in OLD.items())], check=True)
        (venv / ".complete").write_text("ok\n")
    return python


def test_a_model_of_an_older_scikit_learn_is_served_by_its_own_versions(
        engine: Engine, tmp_path: Path, old_python: Path,
        capfd: pytest.CaptureFixture[str]) -> None:
    from datos.model_generator import REFERENCE_ROWS

    model = tmp_path / "old-forest.joblib"
    trained = subprocess.run([str(old_python), "-c", TRAIN, str(model), str(REFERENCE_ROWS)],
                             capture_output=True, text=True, check=True)
    own_predictions = json.loads(trained.stdout)
    run = _run(engine, model, tmp_path / "results", named=False)
    assert not run.failed
    stored = load_run(tmp_path / "results" / run.run_id)
    outcomes = stored.document["strategies"]
    # The sharded strategy pickles the trees again with the host's scikit-learn: skipped,
    # saying why; the others serve the model's own file with its own versions.
    assert {name: o["status"] for name, o in outcomes.items()} == {
        "volume": "ok", "sharded": "skipped", "mmap": "ok"}, outcomes
    assert "served with scikit-learn 1.3.2" in outcomes["sharded"]["notes"]["skipped"]
    assert {s.strategy for s in stored.samples if s.metric == "model_ready_s"} == {
        "volume", "mmap"}
    environment = stored.document["metadata"]["model"]["details"]["environment"]
    assert environment["saved_with"]["scikit-learn"] == OLD["scikit-learn"]
    assert environment["served"]["scikit-learn"] == OLD["scikit-learn"]
    assert environment["served"]["numpy"].startswith("1.")
    assert environment["differs"] == []
    assert environment["serving"]["changes"] == ["scikit-learn 1.3.2, as saved"]
    assert isinstance(environment["host_predicts_alike"], bool)
    # Every first prediction was checked against these: what the old venv itself predicts.
    assert run.model.reference_predictions == own_predictions
    # Its own runtime image, not the runtime of the service's pins.
    default = runtime_tag(ensure_base_image(engine, Progress(quiet=True)))
    assert stored.document["metadata"]["runtime_image"]["ref"] != default
    # The in-process reference ran in that image too.
    assert any(s.metric == "inproc_predict_p50_ms" for s in stored.samples)
    captured = capfd.readouterr()
    assert "InconsistentVersionWarning" not in captured.out + captured.err
    assert_nothing_labelled(engine)


def test_an_environment_the_model_does_not_predict_in_is_a_usage_error(
        engine: Engine, tmp_path: Path) -> None:
    """A model of a class newer than the scikit-learn its user pins (FixedThresholdClassifier,
    scikit-learn 1.5) served with 1.3.2, the same environment as the test above (one image):
    it installs, and the pickle does not load there. One line naming the library's own error
    and the option, before any strategy is built. (numpy 1.26 loads numpy 2's pickles, and
    scikit-learn 1.3.2 loads a forest of 1.9.1 with a warning: those would run.)"""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import FixedThresholdClassifier

    from bench.errors import UsageError

    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 5))
    model = tmp_path / "new-classifier.joblib"
    joblib.dump(FixedThresholdClassifier(LogisticRegression(), threshold=0.3).fit(
        x, x.sum(axis=1) > 0), model)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"scikit-learn=={OLD['scikit-learn']}\n")
    with pytest.raises(UsageError, match=r"new-classifier\.joblib does not predict in its "
                                         r"own environment .*_classification_threshold.*"
                                         r"--requirements FILE"):
        _run(engine, model, tmp_path / "results", named=False, requirements=requirements)
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())
    assert_nothing_labelled(engine)
