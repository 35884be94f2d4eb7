"""The flat forest predicts exactly what scikit-learn predicts, bit for bit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.errors import UsageError
from bench.host.paths import service_module
from bench.model.flat_forest import _preorder, convert, flat_arrays

flat = service_module("flat_forest")


def _data(rows: int = 400, features: int = 12, nan: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(rows, features)) * rng.uniform(0.1, 1000, size=features)
    y = x[:, 0] * 3 + np.sin(x[:, 1]) * 100 + rng.normal(size=rows)
    if nan:
        x[rng.random(x.shape) < 0.1] = np.nan
    return x, y


def _open(model: Any, tmp_path: Path) -> Any:
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    converted = convert(path, "test" * 16, tmp_path / "cache", "test-run")
    return flat.FlatForest.open(str(converted.path), verify=True), converted


def _exact(expected: np.ndarray, actual: np.ndarray) -> None:
    assert expected.dtype == actual.dtype == np.float64
    assert np.array_equal(expected, actual), np.max(np.abs(expected - actual))


@pytest.mark.parametrize("forest", [
    RandomForestRegressor(n_estimators=25, random_state=0),  # max_depth=None: deep trees
    RandomForestRegressor(n_estimators=25, max_depth=6, min_samples_leaf=3, random_state=1),
    ExtraTreesRegressor(n_estimators=25, random_state=2),
    # Best-first trees: scikit-learn does not number them in preorder; the converter must.
    RandomForestRegressor(n_estimators=25, max_leaf_nodes=40, random_state=3),
], ids=["deep", "shallow", "extra-trees", "best-first"])
def test_predictions_equal_scikit_learns_bit_for_bit(forest: Any, tmp_path: Path) -> None:
    x, y = _data()
    forest.fit(x, y)
    renumbered = [_preorder(tree.tree_.children_left, tree.tree_.children_right) is not None
                  for tree in forest.estimators_]
    assert all(renumbered) if forest.max_leaf_nodes else not any(renumbered)
    mapped, _ = _open(forest, tmp_path)
    _exact(forest.predict(x), mapped.predict(x))
    rng = np.random.default_rng(11)
    random_rows = rng.normal(size=(10_000, x.shape[1])) * 1000
    _exact(forest.predict(random_rows), mapped.predict(random_rows))
    # Rows whose values equal split thresholds exactly (as float32 sees them): the `<=` side.
    nodes = flat_arrays(forest)["nodes"]
    splits = np.flatnonzero(nodes["right"] != flat.LEAF)[:500]
    on_threshold = np.repeat(x[:1], splits.size, axis=0)
    on_threshold[np.arange(splits.size), nodes["feature"][splits]] = nodes["value"][splits]
    _exact(forest.predict(on_threshold), mapped.predict(on_threshold))


def test_nan_rows_go_where_the_fitted_forest_sends_them(tmp_path: Path) -> None:
    x, y = _data(nan=True)
    forest = RandomForestRegressor(n_estimators=20, random_state=3).fit(x, y)
    mapped, _ = _open(forest, tmp_path)
    _exact(forest.predict(x), mapped.predict(x))


def test_a_pipeline_keeps_its_preprocessing_as_a_pinned_pickle(tmp_path: Path) -> None:
    x, y = _data()
    pipeline = make_pipeline(StandardScaler(), RandomForestRegressor(n_estimators=10,
                                                                     random_state=4)).fit(x, y)
    mapped, converted = _open(pipeline, tmp_path)
    assert converted.preprocessing is not None
    assert mapped.header["preprocessing"]["file"] == converted.preprocessing.name
    steps = joblib.load(converted.preprocessing)
    _exact(pipeline.predict(x), mapped.predict(steps.transform(x)))


def test_a_tree_of_a_single_leaf(tmp_path: Path) -> None:
    x = np.zeros((20, 3))
    forest = RandomForestRegressor(n_estimators=3, random_state=0).fit(x, np.full(20, 7.5))
    mapped, _ = _open(forest, tmp_path)
    assert all(tree.tree_.node_count == 1 for tree in forest.estimators_)
    _exact(forest.predict(x[:5]), mapped.predict(x[:5]))


def test_the_file_is_small_page_aligned_and_opens_without_pickle(tmp_path: Path) -> None:
    x, y = _data()
    forest = RandomForestRegressor(n_estimators=10, random_state=5).fit(x, y)
    mapped, converted = _open(forest, tmp_path)
    # 16 bytes a node, plus the header's page, the roots and each array's page padding.
    assert mapped.nodes.dtype.itemsize == 16
    assert converted.bytes <= converted.nodes * 16 + 4 * flat.ALIGN
    for spec in mapped.header["arrays"].values():
        assert spec["offset"] % flat.ALIGN == 0
    # Tampered bytes are caught by verify (the header pins every array).
    data = bytearray(converted.path.read_bytes())
    data[mapped.header["arrays"]["nodes"]["offset"]] ^= 0xFF
    converted.path.write_bytes(bytes(data))
    with pytest.raises(flat.FlatForestError, match="does not match"):
        flat.FlatForest.open(str(converted.path), verify=True)
    (tmp_path / "not-flat").write_bytes(b"\x80\x04 a pickle")
    with pytest.raises(flat.FlatForestError, match="not a flat forest"):
        flat.FlatForest.open(str(tmp_path / "not-flat"))


@pytest.mark.parametrize("forest", [
    RandomForestClassifier(n_estimators=25, random_state=0),
    ExtraTreesClassifier(n_estimators=25, max_leaf_nodes=30, random_state=1),  # best-first
    # Class weights make each leaf's fractions weighted ones: stored as scikit-learn has them.
    RandomForestClassifier(n_estimators=15, class_weight="balanced", random_state=2),
], ids=["forest", "extra-trees-best-first", "weighted"])
def test_a_forest_classifier_predicts_probabilities_and_classes_bit_for_bit(
        forest: Any, tmp_path: Path) -> None:
    """The flat format takes classifiers too (it took regressors only, so mmap skipped
    every classifier): leaf class fractions in a side table, summed in estimator order."""
    x, y = _data(rows=2_000, nan=True)
    labels = np.where(y > 50, "striker", np.where(y < -50, "keeper", "midfield"))
    forest.fit(x, labels)
    mapped, converted = _open(forest, tmp_path)
    model = flat.open_model(str(converted.path), verify=True, prefetch=False)
    rows = np.vstack([x, np.random.default_rng(5).normal(size=(2_000, x.shape[1])) * 1000])
    _exact(forest.predict_proba(rows), mapped.predict_proba(rows))
    assert np.array_equal(forest.predict(rows), mapped.predict(rows))
    assert list(model.classes_) == list(forest.classes_)
    _exact(forest.predict_proba(rows), model.predict_proba(rows))
    (tmp_path / "regressor").mkdir()
    _, regressor = _open(RandomForestRegressor(n_estimators=3).fit(x, y), tmp_path / "regressor")
    assert not hasattr(flat.open_model(str(regressor.path), verify=False, prefetch=False),
                       "predict_proba")


@pytest.mark.parametrize("forest", [
    RandomForestRegressor(n_estimators=20, random_state=0),
    ExtraTreesRegressor(n_estimators=20, max_leaf_nodes=40, random_state=1),  # best-first
], ids=["forest", "extra-trees-best-first"])
def test_a_multi_output_regressor_predicts_every_output_bit_for_bit(
        forest: Any, tmp_path: Path) -> None:
    """A leaf's outputs in a side table (leaf_values), as a classifier's fractions are."""
    x, y = _data(rows=2_000, nan=True)
    targets = np.column_stack([y, np.cos(np.nan_to_num(x[:, 2]) / 300) * 10, -y / 7])
    forest.fit(x, targets)
    mapped, converted = _open(forest, tmp_path)
    assert mapped.header["outputs"] == 3 and "leaf_values" in mapped.header["arrays"]
    rows = np.vstack([x, np.random.default_rng(9).normal(size=(2_000, x.shape[1])) * 1000])
    expected = forest.predict(rows)
    assert expected.shape == (rows.shape[0], 3)
    _exact(expected, mapped.predict(rows))
    model = flat.open_model(str(converted.path), verify=True, prefetch=False)
    _exact(expected, model.predict(rows))


def test_a_multi_output_classifier_is_refused_with_the_reason(tmp_path: Path) -> None:
    x, y = _data()
    labels = np.column_stack([y > 0, y > 50]).astype(int)
    path = tmp_path / "model.joblib"
    joblib.dump(RandomForestClassifier(n_estimators=3, random_state=0).fit(x, labels), path)
    with pytest.raises(UsageError, match="a classifier of 2 outputs"):
        convert(path, "test" * 16, tmp_path / "cache", "test-run")
