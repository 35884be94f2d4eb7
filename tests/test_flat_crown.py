"""The flat file's crown (bench/model/flat_crown.py): every tree's top levels read from one
region after the trees, a jump record at the crown's depth sending every input on to the
tree's own split, and the predictions unchanged, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.ensemble import RandomForestRegressor

from bench.model.flat_crown import CROWN_DEPTH, crowned
from bench.model.flat_forest import flat_arrays
from tests.test_flat_forest import _data, _exact, _open, flat


def test_every_tree_is_read_from_its_crown_down_to_the_crowns_depth(tmp_path: Path) -> None:
    x, y = _data(rows=5000)
    forest = RandomForestRegressor(n_estimators=15, random_state=5).fit(x, y)
    assert min(e.tree_.max_depth for e in forest.estimators_) > CROWN_DEPTH + 2  # deep enough
    mapped, _ = _open(forest, tmp_path)
    body = sum(e.tree_.node_count for e in forest.estimators_)
    assert mapped.header["crown_depth"] == CROWN_DEPTH
    assert mapped.nodes.size > body and np.all(np.asarray(mapped.roots) >= body)
    passes: list[np.ndarray] = []
    rows = np.random.default_rng(1).normal(size=(50, x.shape[1])) * 500
    _exact(forest.predict(rows), mapped.predict(rows, on_pass=passes.append))
    for depth, at in enumerate(passes):
        if depth <= CROWN_DEPTH:  # the crown's levels and its jump records
            assert np.all(at >= body), depth
        else:  # below it, only the trees' own records
            assert np.all(at < body), depth
    assert len(passes) > CROWN_DEPTH + 1  # some walks went below the crown


def test_a_jump_record_sends_every_input_right_nan_and_infinities_included() -> None:
    x, y = _data()
    forest = RandomForestRegressor(n_estimators=3, random_state=6).fit(x, y)
    arrays = flat_arrays(forest)
    nodes, roots, depth = crowned(arrays["nodes"], arrays["roots"], depth=1)
    assert depth == 1
    jumps = np.flatnonzero(np.isnan(nodes["value"]) & (nodes["right"] != flat.LEAF))
    assert jumps.size and np.all(jumps >= arrays["nodes"].size)
    forest_of = flat.FlatForest({"n_features": x.shape[1]}, nodes, roots)
    plain = flat.FlatForest({"n_features": x.shape[1]}, arrays["nodes"], arrays["roots"])
    rows = np.vstack([x[:20], np.full((1, x.shape[1]), np.nan), np.full((1, x.shape[1]), np.inf),
                      np.full((1, x.shape[1]), -np.inf)])
    _exact(plain.predict(rows), forest_of.predict(rows))
    _exact(forest.predict(x), forest_of.predict(x))


def test_small_trees_get_no_crown(tmp_path: Path) -> None:
    """Trees that lie mostly above the crown's depth (a boosting model's) would be copied
    almost whole: their file stays as it was."""
    x, y = _data()
    forest = RandomForestRegressor(n_estimators=10, max_depth=CROWN_DEPTH + 1,
                                   random_state=7).fit(x, y)
    mapped, _ = _open(forest, tmp_path)
    assert mapped.header["crown_depth"] == 0
    assert mapped.nodes.size == sum(e.tree_.node_count for e in forest.estimators_)
    _exact(forest.predict(x), mapped.predict(x))
