"""What a model file needs, read without running it (bench/model/pickle_needs.py): the
modules, the libraries, the versions it was saved with against those the service serves."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline

from bench import cli
from bench.errors import UsageError
from bench.host.paths import REQUIREMENTS_FILE
from bench.model.pickle_needs import environment, read_needs, served_versions
from bench.model.source import ModelArtifact, user_model
from bench.progress import Progress


class RunsCode:
    """Unpickling it would run a shell command: reading its needs must not."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


class WritesWithNumpy:
    """numpy is partly real while a pickle is read (its arrays): not numpy.save."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, object]]:
        return (np.save, (str(self.marker), np.zeros(1)))


def test_reading_a_pickle_runs_none_of_its_code(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.joblib"
    joblib.dump({"model": RunsCode(marker), "other": WritesWithNumpy(tmp_path / "saved")},
                path)
    needs = read_needs(path)
    assert not marker.exists() and not (tmp_path / "saved.npy").exists()
    assert "posix" in needs.modules or "os" in needs.modules


def test_the_seed_forest_needs_what_the_service_serves(tiny_model: ModelArtifact) -> None:
    env = environment(read_needs(tiny_model.path), served_versions(REQUIREMENTS_FILE))
    assert env["distributions"] == ["joblib", "numpy", "scikit-learn"]
    assert env["saved_with"]["scikit-learn"] == env["served"]["scikit-learn"]
    assert env["differs"] == [] and env["missing"] == []
    assert "sklearn.tree._tree.Tree" in env["classes"]


@pytest.mark.parametrize("compress", [0, 3, ("lz4", 1)])
def test_an_older_scikit_learn_is_named_through_joblib_compression(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compress: object) -> None:
    """Found: a model saved by scikit-learn 1.3.2 ran with 1.9.1 and only the log's raw
    InconsistentVersionWarning said so. (The version is what scikit-learn writes into every
    estimator's state at dump time.)"""
    import sklearn.base

    monkeypatch.setattr(sklearn.base, "__version__", "1.3.2")
    path = tmp_path / "old.joblib"
    joblib.dump(make_pipeline(LinearRegression()).fit([[0.0], [1.0]], [0.0, 1.0]), path,
                compress=compress)
    env = environment(read_needs(path), served_versions(REQUIREMENTS_FILE))
    assert env["saved_with"]["scikit-learn"] == "1.3.2"
    assert env["differs"] == ["scikit-learn"]


def test_a_model_of_a_module_the_service_lacks_is_refused_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> None:
    """A Pipeline with the user's own transformer: the service cannot import their module,
    so the run stops before anything is built, naming it (not a host ModuleNotFoundError)."""
    module = tmp_path / "code" / "mylib.py"
    module.parent.mkdir()
    module.write_text(textwrap.dedent("""
        from sklearn.base import BaseEstimator, TransformerMixin
        class Double(BaseEstimator, TransformerMixin):
            def fit(self, X, y=None):
                return self
            def transform(self, X):
                import numpy
                return numpy.asarray(X) * 2
    """))
    monkeypatch.syspath_prepend(str(module.parent))
    import mylib

    path = tmp_path / "custom.joblib"
    joblib.dump(make_pipeline(mylib.Double(), LinearRegression()).fit([[0.0], [1.0]],
                                                                     [0.0, 1.0]), path)
    monkeypatch.delitem(sys.modules, "mylib")
    assert read_needs(path).distributions == ("joblib", "mylib", "numpy", "scikit-learn")
    with pytest.raises(UsageError, match=r"custom\.joblib needs mylib, which the service"):
        user_model(path, tmp_path / "cache", Progress(quiet=True))
    assert cli.main(["model", "--model", str(path), "--inspect"]) == 0
    out = capsys.readouterr().out
    assert "missing:     mylib" in out and "needs:       joblib, mylib, numpy" in out


def test_a_file_that_is_not_a_pickle_is_one_line(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.joblib"
    path.write_bytes(b"\x80\x04garbage")
    assert cli.main(["model", "--model", str(path), "--inspect"]) == 2
    error = capsys.readouterr().err
    assert "cannot be read as a joblib pickle" in error and error.count("\n") == 1
