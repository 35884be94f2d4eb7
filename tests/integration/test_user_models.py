"""Any user model runs clean: strategies that cannot take it are skipped with the reason (or,
named explicitly, refused before anything is built), and the others serve its own
predictions."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.ensemble import (
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.engine import Engine
from bench.errors import UsageError
from bench.progress import Progress
from bench.results.store import load_run
from bench.run.config import RunConfig, builders_of
from bench.run.runner import BenchmarkRun
from tests.integration.test_end_to_end import assert_nothing_labelled, short_settle

pytestmark = [pytest.mark.engine, pytest.mark.beside]


KINDS = ("hgb", "pipeline", "classifier", "lightgbm", "xgboost")
LIGHTGBM_PINNED, PINNED_SKLEARN = "4.5.0", "1.5.2"  # a project's lock of 2024


def _models(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6))
    y = x @ rng.normal(size=6) + rng.normal(size=300)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    paths = {kind: folder / f"{kind}.joblib" for kind in KINDS}
    joblib.dump(HistGradientBoostingRegressor(max_iter=20).fit(x, y), paths["hgb"])
    import lightgbm  # the test extra installs it; the service's image does not

    joblib.dump(lightgbm.LGBMRegressor(n_estimators=15, num_leaves=8, verbose=-1).fit(x, y),
                paths["lightgbm"])
    import xgboost

    joblib.dump(xgboost.XGBRegressor(n_estimators=15, max_depth=4, n_jobs=1).fit(x, y),
                paths["xgboost"])
    joblib.dump(make_pipeline(StandardScaler(), Ridge()).fit(frame, y), paths["pipeline"])
    positions = np.where(y > 0.5, "striker", np.where(y < -0.5, "keeper", "midfield"))
    joblib.dump(RandomForestClassifier(n_estimators=4, random_state=0).fit(x, positions),
                paths["classifier"])
    return paths


def _run(engine: Engine, model: Path, results: Path, named: bool,
         model_code: Path | None = None, requirements: Path | None = None) -> BenchmarkRun:
    config = RunConfig(strategies=("volume", "sharded", "mmap"), model_path=model,
                       model_code=model_code, requirements=requirements,
                       model_size_bytes=0, trials=1, builders=builders_of("auto")[:1],
                       latency_requests=3, start_timeout_s=120, results_root=results,
                       strategies_named=named, warmup=False)  # CI time: one start less each
    run = BenchmarkRun(config, engine, Progress(quiet=True))
    short_settle(run)
    run.execute()
    return run


@pytest.mark.parametrize("kind", KINDS)
def test_a_user_model_runs_what_applies_and_skips_the_rest(
        engine: Engine, tmp_path: Path, kind: str) -> None:
    model = _models(tmp_path)[kind]
    # LightGBM's version as the user's project pins it, older than the newest (which this
    # host trained with), with the scikit-learn of their lock (LightGBM 4.5 passes
    # check_array an argument scikit-learn 1.8 removed): the image installs those.
    pinned = LIGHTGBM_PINNED if kind == "lightgbm" else None
    requirements = tmp_path / "requirements.txt"
    if pinned:
        assert importlib.metadata.version("lightgbm") != pinned
        requirements.write_text(f"lightgbm=={pinned}\nscikit-learn=={PINNED_SKLEARN}\n"
                                "torch==2.5.0\n")
    run = _run(engine, model, tmp_path / "results", named=False,
               requirements=requirements if pinned else None)
    assert not run.failed
    stored = load_run(tmp_path / "results" / run.run_id)
    outcomes = stored.document["strategies"]
    # A HistGradientBoosting and a forest classifier are tree ensembles: sharded takes them
    # apart, and mmap's flat format holds them (forests and boosting, regressors and
    # classifiers); a linear Pipeline is neither. A LightGBM or XGBoost model is served in
    # its own environment, the runtime with the library added (bench.model.serving_env):
    # volume unpickles it there; it is no scikit-learn ensemble for sharded to take apart.
    expected = {"hgb": ("ok", "ok", "ok"), "pipeline": ("ok", "skipped", "skipped"),
                "classifier": ("ok", "ok", "ok"),
                "lightgbm": ("ok", "skipped", "ok"),
                "xgboost": ("ok", "skipped", "ok")}[kind]
    assert {name: o["status"] for name, o in outcomes.items()} == dict(
        zip(("volume", "sharded", "mmap"), expected, strict=True))
    if kind == "pipeline":
        assert "Ridge is not a RandomForest" in outcomes["mmap"]["notes"]["skipped"]
    if kind in ("pipeline", "lightgbm", "xgboost"):
        assert "tree ensemble" in outcomes["sharded"]["notes"]["skipped"]
    # Every strategy that ran served the model's own predictions (the trial checks every
    # first prediction against the host's; a classifier's classes, strings here, and its
    # probabilities too): each measured a first correct prediction.
    ran = {name for name, o in outcomes.items() if o["status"] == "ok"}
    assert {s.strategy for s in stored.samples if s.metric == "model_ready_s"} == ran
    environment = stored.document["metadata"]["model"]["details"]["environment"]
    # scikit-learn records its version in each estimator it pickles; LightGBM's do not.
    assert environment["saved_with"].get("scikit-learn") == (
        None if kind in ("lightgbm", "xgboost") else sklearn.__version__)
    assert environment["differs"] == [] and environment["missing"] == []
    own = kind in ("lightgbm", "xgboost")
    assert environment["serving"]["changes"][:1] == ([f"{kind}, which the model needs"] if own
                                                     else [])
    if pinned:  # the user's pins, and nothing of what else their file names
        assert sorted(environment["serving"]["changes"][1:]) == [
            f"lightgbm=={pinned}, as pinned", f"scikit-learn=={PINNED_SKLEARN}, as pinned"]
        assert environment["served"]["lightgbm"] == pinned
        assert not any("torch" in line for line in environment["serving"]["requirements"])
    elif own:  # the version pip chose for the image, read from its wheel
        assert environment["served"][kind].count(".") >= 1
    assert_nothing_labelled(engine)


def test_naming_a_strategy_that_cannot_take_the_model_is_a_usage_error(
        engine: Engine, tmp_path: Path) -> None:
    model = _models(tmp_path)["pipeline"]
    with pytest.raises(UsageError, match="sharded does not apply"):
        _run(engine, model, tmp_path / "results", named=True)
    assert_nothing_labelled(engine)


def test_a_model_no_strategy_can_take_is_a_usage_error_before_any_build(
        engine: Engine, tmp_path: Path) -> None:
    """A linear Pipeline with only the strategies that take trees apart: nothing would run,
    so the run stops before building anything and names each reason once."""
    config = RunConfig(strategies=("sharded", "mmap"), model_path=_models(tmp_path)["pipeline"],
                       model_size_bytes=0, trials=1, builders=builders_of("auto")[:1],
                       results_root=tmp_path / "results", strategies_named=False)
    run = BenchmarkRun(config, engine, Progress(quiet=True))
    with pytest.raises(UsageError, match=r"no strategy can take this model \(sharded: .*tree "
                                         r"ensemble.*; mmap: the flat format cannot hold"):
        run.execute()
    assert_nothing_labelled(engine)


USER_MODULE = "mlbench_user_features"  # a module of "the user's project", made by the test


def _model_of_user_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A Pipeline whose first step is a class of the user's own module (in tmp_path/code),
    saved with joblib; the module is then gone from this process, as on a new machine."""
    import importlib
    import sys

    code = tmp_path / "code"
    code.mkdir()
    (code / f"{USER_MODULE}.py").write_text(
        "from sklearn.base import BaseEstimator, TransformerMixin\n\n\n"
        "class Squared(BaseEstimator, TransformerMixin):\n"
        "    def fit(self, x, y=None):\n        self.n_features_in_ = x.shape[1]\n"
        "        return self\n\n"
        "    def transform(self, x):\n        return x * x\n")
    monkeypatch.setattr(sys, "path", [str(code), *sys.path])
    monkeypatch.setenv("PYTHONPATH", "")  # put back after the test (the run prepends to it)
    module = importlib.import_module(USER_MODULE)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 6))
    y = (x * x) @ rng.normal(size=6)
    path = tmp_path / "user-code.joblib"
    joblib.dump(make_pipeline(module.Squared(),
                              RandomForestRegressor(n_estimators=4, random_state=0)).fit(x, y),
                path)
    sys.path.remove(str(code))
    del sys.modules[USER_MODULE]
    importlib.invalidate_caches()
    return path, code


def test_a_model_of_the_users_own_module_is_refused_without_its_code_and_served_with_it(
        engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, code = _model_of_user_code(tmp_path, monkeypatch)
    with pytest.raises(UsageError, match=rf"needs {USER_MODULE}, .*pass --model-code DIR"):
        _run(engine, model, tmp_path / "refused", named=False)
    run = _run(engine, model, tmp_path / "results", named=False, model_code=code)
    stored = load_run(tmp_path / "results" / run.run_id)
    outcomes = stored.document["strategies"]
    # Every strategy loads the user's class in its image (the runtime with the code), and
    # every first prediction equals the host's (which imported it from the folder).
    assert {name: o["status"] for name, o in outcomes.items()} == dict.fromkeys(
        ("volume", "sharded", "mmap"), "ok"), outcomes
    assert {s.strategy for s in stored.samples if s.metric == "model_ready_s"} == {
        "volume", "sharded", "mmap"}
    environment = stored.document["metadata"]["model"]["details"]["environment"]
    assert environment["model_code"] == [USER_MODULE] and environment["missing"] == []
    assert "-code" in stored.document["metadata"]["runtime_image"]["ref"]
    assert_nothing_labelled(engine)
