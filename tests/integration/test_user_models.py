"""Any user model runs clean: strategies that cannot take it are skipped with the reason (or,
named explicitly, refused before anything is built), and the others serve its own
predictions."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.engine import Engine
from bench.errors import UsageError
from bench.progress import Progress
from bench.results.store import load_run
from bench.run.config import RunConfig, builders_of
from bench.run.runner import BenchmarkRun
from tests.integration.test_end_to_end import assert_nothing_labelled

pytestmark = pytest.mark.engine


def _models(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6))
    y = x @ rng.normal(size=6) + rng.normal(size=300)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    paths = {"hgb": folder / "hgb.joblib", "pipeline": folder / "pipeline.joblib"}
    joblib.dump(HistGradientBoostingRegressor(max_iter=20).fit(x, y), paths["hgb"])
    joblib.dump(make_pipeline(StandardScaler(), Ridge()).fit(frame, y), paths["pipeline"])
    return paths


def _run(engine: Engine, model: Path, results: Path, named: bool) -> BenchmarkRun:
    config = RunConfig(strategies=("volume", "sharded", "mmap"), model_path=model,
                       model_size_bytes=0, trials=1, builders=builders_of("auto")[:1],
                       latency_requests=3, start_timeout_s=120, results_root=results,
                       strategies_named=named)
    run = BenchmarkRun(config, engine, Progress(quiet=True))
    run.execute()
    return run


@pytest.mark.parametrize("kind", ["hgb", "pipeline"])
def test_a_model_that_is_not_a_forest_skips_what_needs_one(
        engine: Engine, tmp_path: Path, kind: str) -> None:
    model = _models(tmp_path)[kind]
    run = _run(engine, model, tmp_path / "results", named=False)
    assert not run.failed
    stored = load_run(tmp_path / "results" / run.run_id)
    outcomes = stored.document["strategies"]
    # A HistGradientBoosting is a tree ensemble: sharded takes it apart (mmap needs a
    # forest); a linear Pipeline is neither.
    expected_sharded = "ok" if kind == "hgb" else "skipped"
    assert {name: o["status"] for name, o in outcomes.items()} == {
        "volume": "ok", "sharded": expected_sharded, "mmap": "skipped"}
    assert "RandomForest" in outcomes["mmap"]["notes"]["skipped"]
    if kind == "pipeline":
        assert "tree ensemble" in outcomes["sharded"]["notes"]["skipped"]
    # volume served the model's own predictions (the trial checks every first prediction
    # against the host's): it measured a first correct prediction.
    assert any(s.metric == "model_ready_s" for s in stored.samples)
    assert_nothing_labelled(engine)


def test_naming_a_strategy_that_cannot_take_the_model_is_a_usage_error(
        engine: Engine, tmp_path: Path) -> None:
    model = _models(tmp_path)["pipeline"]
    with pytest.raises(UsageError, match="sharded does not apply"):
        _run(engine, model, tmp_path / "results", named=True)
    assert_nothing_labelled(engine)
