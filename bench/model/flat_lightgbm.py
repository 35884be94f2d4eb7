"""LightGBM's scikit-learn models (LGBMRegressor, LGBMClassifier) in the flat format, from
LightGBM's own tree dump (``Booster.dump_model()``): the service then serves them with numpy
alone, without LightGBM in its image.

How LightGBM predicts (src/io/tree.h, NumericalDecision; src/boosting/gbdt_prediction.cpp),
and how the file repeats it:

- inputs as float64; a split sends ``x <= threshold`` left. NaN goes to ``default_left``
  where the split's ``missing_type`` is "NaN"; where it is "None", LightGBM reads NaN as 0.0,
  so NaN goes where 0.0 goes, fixed per split (``0.0 <= threshold``). "Zero" (zero_as_missing)
  also sends values within 1e-35 of 0 to the default side, which the record cannot say: refused.
- the raw sum of each column starts at 0 and adds the trees of that column (tree i adds to
  column i % num_tree_per_iteration) in iteration order, in float64; the average from which
  boosting started sits in the first trees' leaves already.
- the objective's output: identity for the regression losses, exp for poisson, gamma and
  tweedie, 1 / (1 + exp(-raw)) for binary (sigmoid 1 only), softmax for multiclass; an
  LGBMClassifier predicts ``classes_[argmax(proba)]``.
Categorical splits, linear trees, random-forest mode (``average_output``), a custom objective,
multiclassova and a sigmoid other than 1 are refused with the reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.model.flat_forest import FlatKind, Parts, TreeArrays, pack_trees, task_fields

IDENTITY_OBJECTIVES = frozenset({"regression", "regression_l1", "huber", "fair", "quantile",
                                 "mape"})
EXP_OBJECTIVES = frozenset({"poisson", "gamma", "tweedie"})


def is_lightgbm(estimator: Any) -> bool:
    """An LGBMModel, told by its class's module: the check imports no LightGBM."""
    return type(estimator).__module__.split(".")[0] == "lightgbm"


def _objective(dump: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The objective's name and its parameters ("binary sigmoid:1" -> binary, {sigmoid: 1})."""
    name, *params = str(dump.get("objective", "")).split()
    return name, dict(p.split(":", 1) for p in params if ":" in p)


def _link(dump: dict[str, Any]) -> str | None:
    name, params = _objective(dump)
    if name in IDENTITY_OBJECTIVES:
        return "identity"
    if name in EXP_OBJECTIVES:
        return "exp"
    if name in ("binary", "cross_entropy") and float(params.get("sigmoid", "1")) == 1.0:
        return "logit"
    if name == "multiclass":
        return "softmax"
    return None


def _walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The dump's nested nodes in preorder (iterative: trees can be deep)."""
    order, stack = [], [node]
    while stack:
        current = stack.pop()
        order.append(current)
        if "split_index" in current:
            stack += [current["right_child"], current["left_child"]]
    return order


def _dump(estimator: Any) -> dict[str, Any]:
    """LightGBM's own tree dump: read once, by the refusal and the conversion both."""
    dump: dict[str, Any] = estimator.booster_.dump_model()
    return dump


def lightgbm_refusal(estimator: Any, dump: dict[str, Any]) -> str | None:
    """Why the flat format cannot hold this LightGBM model (None: it can)."""
    if callable(getattr(estimator, "objective", None)):
        return "its objective is a Python function"
    if dump.get("average_output"):
        return "it is a random forest of LightGBM trees (average_output)"
    if _link(dump) is None:
        return f"its objective {dump.get('objective')!r} is not one the flat format applies"
    for tree in dump["tree_info"]:
        if tree.get("num_cat", 0) or tree.get("is_linear"):
            return "it has categorical splits or linear trees"
        for node in _walk(tree["tree_structure"]):
            if "split_index" in node and node.get("missing_type") == "Zero":
                return "zero_as_missing sends values near 0 to the default side"
            if "split_index" in node and node.get("decision_type") != "<=":
                return f"a split decides by {node.get('decision_type')!r}"
    return None


def _tree(structure: dict[str, Any]) -> TreeArrays:
    nodes = _walk(structure)
    position = {id(node): index for index, node in enumerate(nodes)}
    size = len(nodes)
    left, right = np.full(size, -1, np.int64), np.full(size, -1, np.int64)
    feature, threshold = np.zeros(size, np.int64), np.zeros(size, np.float64)
    leaf_value, missing = np.zeros(size, np.float64), np.zeros(size, np.uint8)
    for index, node in enumerate(nodes):
        if "split_index" not in node:
            leaf_value[index] = float(node["leaf_value"])
            continue
        left[index] = position[id(node["left_child"])]
        right[index] = position[id(node["right_child"])]
        feature[index] = int(node["split_feature"])
        threshold[index] = float(node["threshold"])
        nan_left = (bool(node["default_left"]) if node.get("missing_type") == "NaN"
                    else bool(threshold[index] >= 0.0))  # "None": NaN is read as 0.0
        missing[index] = nan_left
    return TreeArrays(left, right, feature, threshold, leaf_value, missing)


def lightgbm_arrays(estimator: Any, dump: dict[str, Any]) -> Parts:
    """The model's trees as flat arrays and the header fields of how they combine."""
    per_iteration = int(dump["num_tree_per_iteration"])
    trees = [_tree(tree["tree_structure"]) for tree in dump["tree_info"]]
    arrays = pack_trees(trees, int(estimator.n_features_in_))
    arrays["tree_column"] = (np.arange(len(trees)) % per_iteration).astype(np.int32)
    header: dict[str, Any] = {
        **task_fields(estimator, len(trees)), "library": f"lightgbm {_version()}",
        "combine": "sum", "baseline": [0.0] * per_iteration, "link": _link(dump),
        "exp": "libm",  # LightGBM's C++ calls std::exp
        "input_dtype": "float64", "nan": "route", "decision": "argmax_proba"}
    return arrays, header


def _version() -> str:
    import lightgbm

    return str(lightgbm.__version__)


LIGHTGBM = FlatKind(accepts=is_lightgbm, read=_dump, refusal=lightgbm_refusal,
                    parts=lightgbm_arrays)
