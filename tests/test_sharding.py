"""Repacking a forest into shards and the service's shard-by-shard loader (in-process)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.errors import UsageError
from bench.measure.probes import predictions_match
from bench.model.hashing import sha256_file
from bench.model.sharding import repack
from bench.model.source import ModelArtifact
from tests.conftest import load_service
from tests.test_service import _WritesMarker, client_for, wait_for_load_error, wait_ready


def sharded_module() -> Any:
    load_service({})
    import backend.sharded

    return backend.sharded


def _save(model: Any, path: Path) -> tuple[Path, str]:
    joblib.dump(model, path)
    return path, sha256_file(path)


@pytest.mark.parametrize("codec", ["none", "zstd3"])
@pytest.mark.parametrize("shards", [1, 3, 50])
def test_rebuilt_forest_predicts_exactly_like_the_original(
        tmp_path: Path, service_env: None, codec: str, shards: int) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 6)), rng.normal(size=300)
    model = RandomForestRegressor(n_estimators=7, max_depth=6, random_state=0).fit(x, y)
    path, sha = _save(model, tmp_path / "m.joblib")
    packed = repack(path, sha, shards, codec, tmp_path / "cache", "test")
    assert packed.shards == min(shards, 7)
    sharded = sharded_module()
    rebuilt = sharded.load_sharded(sharded.local_reader(str(packed.folder)),
                                   packed.manifest_sha256)
    assert np.array_equal(rebuilt.predict(x), model.predict(x))
    originals = [t.tree_.threshold for t in model.estimators_]
    assert all(np.array_equal(a, t.tree_.threshold)  # order preserved, tree by tree
               for a, t in zip(originals, rebuilt.estimators_, strict=True))


def test_a_pipeline_ending_in_a_forest_is_sharded_and_others_are_refused(
        tmp_path: Path, service_env: None) -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(200, 4)), rng.integers(0, 3, size=200)
    pipeline = make_pipeline(StandardScaler(),
                             ExtraTreesClassifier(n_estimators=5, random_state=0)).fit(x, y)
    path, sha = _save(pipeline, tmp_path / "p.joblib")
    packed = repack(path, sha, 2, "zstd3", tmp_path / "cache", "test")
    sharded = sharded_module()
    rebuilt = sharded.load_sharded(sharded.local_reader(str(packed.folder)), "")
    assert np.array_equal(rebuilt.predict_proba(x), pipeline.predict_proba(x))
    linear, sha = _save(LinearRegression().fit(x, y), tmp_path / "l.joblib")
    with pytest.raises(UsageError, match="need a tree ensemble"):
        repack(linear, sha, 2, "none", tmp_path / "cache", "test")


@pytest.mark.parametrize("kind", ["gradient-boosting", "hist-gradient-boosting",
                                  "pipeline-hist-gradient-boosting"])
def test_boosting_ensembles_are_sharded_and_predict_exactly_like_the_original(
        tmp_path: Path, service_env: None, kind: str) -> None:
    """Beyond forests: a boosting model keeps its trees in another attribute and shape
    (GradientBoosting: an object array, a row per stage; HistGradientBoosting: a list of
    lists of TreePredictors); the shards carry them in order and the loader puts them back."""
    from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(300, 5)), rng.normal(size=300)
    model: Any = {
        "gradient-boosting": GradientBoostingRegressor(n_estimators=13, random_state=0),
        "hist-gradient-boosting": HistGradientBoostingRegressor(max_iter=11),
        "pipeline-hist-gradient-boosting": make_pipeline(
            StandardScaler(), HistGradientBoostingRegressor(max_iter=9)),
    }[kind].fit(x, y)
    path, sha = _save(model, tmp_path / "b.joblib")
    packed = repack(path, sha, 4, "zstd3", tmp_path / "cache", "test")
    assert packed.shards == 4
    sharded = sharded_module()
    rebuilt = sharded.load_sharded(sharded.local_reader(str(packed.folder)),
                                   packed.manifest_sha256)
    assert np.array_equal(rebuilt.predict(x), model.predict(x))
    assert type(rebuilt) is type(model)


def test_a_tampered_shard_is_never_unpickled(tmp_path: Path, service_env: None,
                                             tiny_model: ModelArtifact) -> None:
    packed = repack(tiny_model.path, tiny_model.sha256, 2, "none", tmp_path / "cache", "test")
    manifest = json.loads(packed.manifest.read_text())
    marker = tmp_path / "pwned"
    (packed.folder / manifest["shards"][-1]["file"]).write_bytes(
        pickle.dumps([_WritesMarker(marker)]))
    client, _ = client_for({"MODEL_PATH": str(packed.manifest), "MODEL_FORMAT": "sharded",
                            "MODEL_LOADING": "eager", "MODEL_SHA256": packed.manifest_sha256})
    with client:
        ready = wait_for_load_error(client)
        assert ready.status_code == 503 and "does not match" in ready.json()["error"]
    assert not marker.exists()


def test_a_manifest_that_does_not_match_its_pin_is_refused(
        tmp_path: Path, service_env: None, tiny_model: ModelArtifact) -> None:
    packed = repack(tiny_model.path, tiny_model.sha256, 2, "none", tmp_path / "cache", "test")
    sharded = sharded_module()
    with pytest.raises(sharded.IntegrityError, match=r"manifest\.json"):
        sharded.load_sharded(sharded.local_reader(str(packed.folder)), "0" * 64)


def test_service_serves_a_sharded_model(tmp_path: Path, service_env: None,
                                        tiny_model: ModelArtifact) -> None:
    packed = repack(tiny_model.path, tiny_model.sha256, 3, "zstd3", tmp_path / "cache", "test")
    client, app_module = client_for({"MODEL_PATH": str(packed.manifest),
                                     "MODEL_FORMAT": "sharded", "MODEL_LOADING": "eager",
                                     "MODEL_SHA256": packed.manifest_sha256})
    with client:
        wait_ready(client)
        response = client.post("/predict", json={"rows": tiny_model.reference_rows})
        assert predictions_match(response.json()["predictions"], tiny_model.reference_predictions)
        assert app_module.holder.story.verify_s > 0


def test_a_cached_preparation_says_which_run_measured_it(
        tiny_model: ModelArtifact, tmp_path: Path) -> None:
    """Found: compress_s and repack_s were copied from an earlier run's cache with no mark."""
    from bench.model.compression import compress_model, parse_codec

    codec = parse_codec("lz4")
    first = compress_model(tiny_model.path, tiny_model.sha256, codec, tmp_path, "run-1")
    again = compress_model(tiny_model.path, tiny_model.sha256, codec, tmp_path, "run-2")
    assert (first.cached, first.measured_in) == (False, "run-1")
    assert (again.cached, again.measured_in, again.compress_s) == (True, "run-1",
                                                                   first.compress_s)
    packed = repack(tiny_model.path, tiny_model.sha256, 2, "none", tmp_path, "run-1")
    repacked = repack(tiny_model.path, tiny_model.sha256, 2, "none", tmp_path, "run-2")
    assert not packed.cached and (repacked.cached, repacked.measured_in) == (True, "run-1")
