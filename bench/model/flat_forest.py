"""Convert a fitted tree ensemble (RandomForest/ExtraTrees, GradientBoosting and
HistGradientBoosting, regressors and classifiers, or a Pipeline ending in one) into the
service's flat, memory-mapped format (docker/service/flat_forest.py defines it)."""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import UsageError
from bench.host.fsutil import write_atomic
from bench.host.paths import service_module
from bench.model.flat_crown import crowned
from bench.model.host_load import load_for_structure
from bench.model.sharding import tree_attribute


@dataclass(frozen=True)
class FlatModel:
    path: Path
    bytes: int
    nodes: int
    convert_s: float
    cached: bool  # True: convert_s was measured by an earlier run (measured_in)
    measured_in: str
    preprocessing: Path | None  # the pinned pickle of a Pipeline's steps before the forest


def _preorder(left: np.ndarray, right: np.ndarray) -> np.ndarray | None:
    """The tree's nodes in depth-first preorder (old index at each new position), or None
    when they already are: scikit-learn's depth-first builder numbers them so; the best-first
    one (max_leaf_nodes) does not."""
    inner = np.flatnonzero(left != -1)
    if np.array_equal(left[inner], inner + 1):
        return None
    order, stack = [], [0]
    while stack:  # iterative: a max_depth=None tree can be deeper than Python's recursion
        node = stack.pop()
        order.append(node)
        if left[node] != -1:
            stack += [int(right[node]), int(left[node])]
    return np.asarray(order, dtype=np.int64)


@dataclass(frozen=True)
class TreeArrays:
    """One tree as the flat format needs it, in the library's own node numbering: children
    (-1 on leaves), the feature and threshold of each split, each leaf's value (what the
    tree adds, or a classifier's row in leaf_proba) and where a NaN goes (None: right)."""

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    leaf_value: np.ndarray
    missing_left: np.ndarray | None


def pack_trees(trees: list[TreeArrays], n_features: int) -> dict[str, np.ndarray]:
    """The trees, each in preorder, as one array of node records with global indices
    (docker/service/flat_forest.py describes the record), and each tree's first record."""
    sizes = np.array([tree.left.size for tree in trees], dtype=np.int64)
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    total = int(sizes.sum())
    if total >= 2**31:
        raise UsageError(f"a model of {total} nodes does not fit int32 node indices")
    module = service_module("flat_forest")
    nodes = np.zeros(total, module.node_dtype(np.dtype(np.int16 if n_features < 2**15
                                                       else np.int32)))
    for tree, start, size in zip(trees, roots, sizes, strict=True):
        left, right, feature, threshold = tree.left, tree.right, tree.feature, tree.threshold
        leaf_value, missing = tree.leaf_value, tree.missing_left
        order = _preorder(left, right)
        if order is not None:  # renumber: new position p holds old node order[p]
            new_index = np.empty_like(order)
            new_index[order] = np.arange(order.size)
            moved = right[order]
            right = np.where(moved == -1, -1, new_index[moved])
            left, feature, threshold = left[order], feature[order], threshold[order]
            leaf_value = leaf_value[order]
            missing = None if missing is None else missing[order]
        is_leaf = left == -1
        block = nodes[start:start + size]
        block["right"] = np.where(is_leaf, module.LEAF, right + start)
        block["feature"] = np.where(is_leaf, 0, feature)
        block["value"] = np.where(is_leaf, leaf_value, threshold)
        if missing is not None:
            block["missing_left"] = missing
    return {"nodes": nodes, "roots": roots}


def flat_arrays(forest: Any) -> dict[str, np.ndarray]:
    """A RandomForest/ExtraTrees regressor's or classifier's trees as flat arrays (a
    classifier's leaves' class fractions in leaf_proba, a multi-output regressor's outputs in
    leaf_values: a row per leaf, in tree order)."""
    classifier = hasattr(forest, "classes_")
    rows_array = "leaf_proba" if classifier else (
        "leaf_values" if getattr(forest, "n_outputs_", 1) > 1 else None)
    trees: list[TreeArrays] = []
    leaf_tables: list[np.ndarray] = []
    leaves_before = 0
    for estimator in forest.estimators_:
        tree = estimator.tree_
        left = tree.children_left
        leaf_value = tree.value[:, 0, 0]
        if rows_array is not None:  # a leaf's value: the index of its row
            leaves = np.flatnonzero(left == -1)
            leaf_value = np.zeros(left.size, np.float64)
            leaf_value[leaves] = leaves_before + np.arange(leaves.size)
            # value is (nodes, outputs, classes): a classifier's one output's fractions, a
            # regressor's outputs (one number each)
            leaf_tables.append(tree.value[leaves, 0, :] if classifier else tree.value[leaves, :, 0])
            leaves_before += leaves.size
        trees.append(TreeArrays(left, tree.children_right, tree.feature, tree.threshold,
                                leaf_value, getattr(tree, "missing_go_to_left", None)))
    arrays = pack_trees(trees, int(forest.n_features_in_))
    if rows_array is not None:
        arrays[rows_array] = np.ascontiguousarray(np.concatenate(leaf_tables), np.float64)
    return arrays


def task_fields(estimator: Any, n_trees: int) -> dict[str, Any]:
    """The header fields every model's file has: its trees, its task, a classifier's classes."""
    classifier = hasattr(estimator, "classes_")
    return {"n_estimators": n_trees, "task": "classification" if classifier else "regression",
            "classes": np.asarray(estimator.classes_).tolist() if classifier else None,
            "outputs": int(getattr(estimator, "n_outputs_", 1))}


Parts = tuple[dict[str, np.ndarray], dict[str, Any]]  # the arrays, the header's own fields


@dataclass(frozen=True)
class FlatKind:
    """How one family of models becomes a flat file: whether an estimator is one, what is
    read of it once (a library's tree dump: refusal and conversion both need it), why it is
    refused (None: it is not), and its arrays and header fields."""

    accepts: Callable[[Any], bool]
    read: Callable[[Any], Any]
    refusal: Callable[[Any, Any], str | None]
    parts: Callable[[Any, Any], Parts]


def _forest_refusal(forest: Any, _read: Any) -> str | None:
    outputs = getattr(forest, "n_outputs_", 1)
    if outputs > 1 and hasattr(forest, "classes_"):
        return f"a classifier of {outputs} outputs (it holds one classifier's classes)"
    return None


FOREST = FlatKind(
    accepts=lambda e: tree_attribute(e) == ("estimators_", "list"), read=lambda _: None,
    refusal=_forest_refusal,
    parts=lambda e, _: (flat_arrays(e), task_fields(e, len(e.estimators_))))


def _kind_of(estimator: Any) -> FlatKind:
    """The estimator's family; scikit-learn's boosting last, whose refusal names anything
    else."""
    from bench.model.flat_boosting import BOOSTING
    from bench.model.flat_lightgbm import LIGHTGBM
    from bench.model.flat_xgboost import XGBOOST

    return next(kind for kind in (FOREST, LIGHTGBM, XGBOOST, BOOSTING)
                if kind.accepts(estimator))


def flat_refusal(estimator: Any) -> str | None:
    """Why the flat format cannot hold this final estimator (None: it can)."""
    kind = _kind_of(estimator)
    return kind.refusal(estimator, kind.read(estimator))


def convert(model_path: Path, sha256: str, cache: Path, run_id: str) -> FlatModel:
    """Write (or find cached, by the model's hash) the flat file of a joblib model."""
    import joblib
    import sklearn

    reader = service_module("flat_forest")
    # A new format converts again: the folder names the version.
    folder = cache / "flat" / f"{sha256[:16]}-v{reader.FORMAT_VERSION}"
    target, record = folder / "model.flat", folder / "convert.json"
    if target.exists() and record.exists():
        stored = json.loads(record.read_text())
        pre = folder / "preprocessing.joblib"
        return FlatModel(target, target.stat().st_size, stored["nodes"], stored["convert_s"],
                         True, stored.get("run_id", "unknown"), pre if pre.exists() else None)
    started = time.perf_counter()
    model = load_for_structure(model_path)
    steps = getattr(model, "steps", None)
    final, step = (steps[-1][1], len(steps) - 1) if steps else (model, None)
    kind = _kind_of(final)
    read = kind.read(final)
    refusal = kind.refusal(final, read)
    if refusal is not None:
        raise UsageError(f"the flat format cannot hold {type(final).__name__}: {refusal}; "
                         "leave the mmap strategies out of --strategies")
    arrays, combined = kind.parts(final, read)
    arrays["nodes"], arrays["roots"], crown_depth = crowned(arrays["nodes"], arrays["roots"])
    names = getattr(model, "feature_names_in_", None)
    header: dict[str, Any] = {
        "sklearn_version": sklearn.__version__, "estimator": type(final).__name__,
        "n_features": int(final.n_features_in_),  # what the node arrays index
        "input_n_features": int(getattr(model, "n_features_in_", final.n_features_in_)),
        "feature_names": None if names is None else [str(n) for n in names],
        "n_outputs": 1, **combined, "crown_depth": crown_depth, "source_sha256": sha256,
        "preprocessing": None}
    folder.mkdir(parents=True, exist_ok=True)
    pre_path = None
    if step:  # the Pipeline's steps before the forest: a small pickle, pinned by its hash
        buffer = io.BytesIO()
        joblib.dump(model[:step], buffer)
        pre_path = folder / "preprocessing.joblib"
        pre_path.write_bytes(buffer.getvalue())
        header["preprocessing"] = {"file": pre_path.name,
                                   "sha256": hashlib.sha256(buffer.getvalue()).hexdigest()}
    reader.write_flat(str(target), arrays, header)
    seconds = time.perf_counter() - started
    nodes = int(arrays["nodes"].size)
    write_atomic(record, json.dumps({"nodes": nodes, "convert_s": seconds, "run_id": run_id}))
    return FlatModel(target, target.stat().st_size, nodes, seconds, False, run_id, pre_path)
