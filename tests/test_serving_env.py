"""The environment a user's model is served in (bench/model/serving_env.py): its pins from the
pickle's record and the user's --requirements, and the usage errors when it cannot be made
(real pip against the package index: no wheel of a version, pins that conflict)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import pytest
from sklearn.preprocessing import FunctionTransformer

from bench import cli
from bench.errors import UsageError
from bench.model.serving_env import (
    WHEEL_OF,
    read_user_requirements,
    runtime_requirements,
    serving_environment,
)


def _record(saved: dict[str, str], distributions: tuple[str, ...] = (
        "joblib", "numpy", "scikit-learn")) -> dict[str, Any]:
    return {"saved_with": saved, "distributions": list(distributions)}


def _pins(lines: tuple[str, ...]) -> dict[str, str]:
    return {line.split("=")[0].split("<")[0]: line for line in lines}


RUNTIME_SKLEARN = _pins(tuple(runtime_requirements()))["scikit-learn"].split("==")[1]


def test_a_model_saved_by_the_runtimes_versions_is_served_by_the_runtime() -> None:
    served = serving_environment(_record({"scikit-learn": RUNTIME_SKLEARN}), {})
    assert not served.own and served.changes == ()
    assert list(served.requirements) == runtime_requirements()


def test_an_older_scikit_learn_is_served_by_itself_with_a_numpy_it_runs_on() -> None:
    served = serving_environment(_record({"scikit-learn": "1.3.2", "numpy": "1.x"}), {})
    pins = _pins(served.requirements)
    assert served.own and pins["scikit-learn"] == "scikit-learn==1.3.2"
    # Built against numpy 1: pip must not choose numpy 2, which its metadata may allow.
    assert pins["numpy"] == "numpy<2"
    # What moves with scikit-learn is left to pip; the service's own pins stay.
    assert pins["scipy"] == "scipy" and pins["joblib"] == "joblib"
    assert pins["fastapi"] == _pins(tuple(runtime_requirements()))["fastapi"]
    newer = _pins(serving_environment(_record({"scikit-learn": "1.5.2"}), {}).requirements)
    assert newer["numpy"] == "numpy"


def test_libraries_the_model_needs_are_added_and_xgboost_without_cuda() -> None:
    served = serving_environment(_record({}, ("lightgbm", "numpy", "xgboost")), {})
    pins = _pins(served.requirements)
    assert pins["lightgbm"] == "lightgbm" and pins["xgboost-cpu"] == WHEEL_OF["xgboost"]
    # A module of the user's own project is no distribution to download from the index.
    mine = serving_environment(_record({}, ("numpy", "my_features")), {})
    assert not mine.own


def test_the_users_pins_win_for_what_serves_the_model_and_the_rest_is_ignored(
        tmp_path: Path) -> None:
    lock = tmp_path / "requirements.txt"
    lock.write_text("# pip-compile output\nlightgbm==4.5.0 \\\n    --hash=sha256:abc \\\n"
                    "    --hash=sha256:def\nxgboost-cpu==2.1.1  # via project\n"
                    "torch==2.5.0\n-r other.txt\n--index-url https://example.org\n\n"
                    "numpy>=1.26,<2\n")
    pins = read_user_requirements(lock)
    assert set(pins) == {"lightgbm", "xgboost-cpu", "torch", "numpy"}
    served = _pins(serving_environment(
        _record({"scikit-learn": "1.3.2"}, ("lightgbm", "numpy", "scikit-learn", "xgboost")),
        pins).requirements)
    assert served["lightgbm"] == "lightgbm==4.5.0"
    assert served["xgboost-cpu"] == "xgboost-cpu==2.1.1"  # pinned by the wheel's name
    assert served["numpy"] in ("numpy<2,>=1.26", "numpy>=1.26,<2")
    assert "torch" not in served
    # A scikit-learn the user pins below 1.4.2 gets a numpy 1 too, as a saved one does.
    older = tmp_path / "older.txt"
    older.write_text("scikit-learn==1.3.2\n")
    assert serving_environment(_record({}), read_user_requirements(older)).requirements == (
        serving_environment(_record({"scikit-learn": "1.3.2"}), {}).requirements)


@pytest.mark.parametrize(("saved", "error"), [
    ({"scikit-learn": "1.3.2, 1.5.0"}, "several scikit-learn versions"),
    ({"scikit-learn": "1.3.2", "numpy": "2.x"}, "pickled by numpy 2 but records scikit-learn "
                                                "1.3.2"),
    ({"scikit-learn": "banana"}, "which is no version"),
])
def test_an_environment_that_cannot_be_is_a_usage_error(saved: dict[str, str],
                                                        error: str) -> None:
    with pytest.raises(UsageError, match=error):
        serving_environment(_record(saved), {})


@pytest.mark.parametrize(("text", "error"), [
    ("scikit-learn==\n", r"line 1: 'scikit-learn==' is not a requirement"),
    ("numpy\nmypkg @ https://example.org/mypkg.whl\n", "line 2: mypkg comes from a URL"),
])
def test_a_requirements_line_that_is_no_pin_is_named(tmp_path: Path, text: str,
                                                    error: str) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text(text)
    with pytest.raises(UsageError, match=error):
        read_user_requirements(path)


@pytest.mark.parametrize(("saved", "pins", "named"), [
    # No wheel of that version for the container's Python (3.11) exists on the index.
    ("0.19.2", "", "no wheel of scikit-learn==0.19.2"),
    # scikit-learn 1.3.2 asks numpy<2 in its metadata.
    ("1.3.2", "numpy==2.1.0\n", "conflicting pins"),
])
def test_an_environment_pip_cannot_install_is_one_line_and_exit_2(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        saved: str, pins: str, named: str) -> None:
    """Real pip against the package index, as the run does before it builds anything."""
    import sklearn.base

    monkeypatch.setattr(sklearn.base, "__version__", saved)  # what the pickle records
    model = tmp_path / "old.joblib"
    # No array in its state: a pickle of numpy 2 arrays could not be of scikit-learn 1.3.
    joblib.dump(FunctionTransformer(), model)
    monkeypatch.undo()
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(pins)
    monkeypatch.setenv("MLBENCH_CACHE", str(tmp_path / "cache"))
    assert cli.main(["model", "--model", str(model), "--requirements", str(requirements),
                     "--inspect"]) == 2
    # Progress lines, then the one line that names the problem and the fix.
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("error: ") and named in error and "--requirements FILE" in error
    # Nothing pip fetched before it failed is kept as an environment.
    assert not any((tmp_path / "cache" / "wheels").glob("*/*.whl"))


def test_requirements_without_a_model_of_the_users_is_a_usage_error(tmp_path: Path) -> None:
    from bench.run.config import RunConfig

    path = tmp_path / "requirements.txt"
    path.write_text("numpy\n")
    with pytest.raises(UsageError, match="--requirements pins the environment of your own "
                                         "--model"):
        RunConfig(requirements=path)
