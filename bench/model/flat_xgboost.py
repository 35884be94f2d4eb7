"""XGBoost's scikit-learn models (XGBRegressor, XGBClassifier) in the flat format, from
XGBoost's own JSON model (``Booster.save_raw("json")``): served with numpy alone.

XGBoost predicts in float32 (src/predictor/predict_fn.h, GetNextNode; cpu_predictor.cc):
inputs cast to float32, a split sends ``x < split_condition`` left and NaN to its
``default_left`` side, each row's margin starts at the base score and adds every tree's leaf
value in tree order, in float32. The file keeps float32 values in its float64 slots (exactly)
and says ``accumulate: float32``; a strict ``<`` becomes ``<=`` against the float32 just below
the split (the same comparisons for every float32 input). The base margin is XGBoost's own:
read by predicting with every leaf set to 0. Then the objective's transform: none for
``reg:squarederror`` and the other identity objectives (bit for bit), ``expf`` for
``count:poisson``/``reg:gamma``/``reg:tweedie``, ``1 / (1 + expf(-x))`` for ``binary:logistic``
and softmax for ``multi:softprob``. numpy has no float32 exp rounded as glibc's ``expf``;
the service takes exp in float64 and rounds it to float32, which differs from ``expf`` in
about 6 of 10,000 values, so an exp-transformed prediction is within 1 ulp of float32 of
XGBoost's, a binary model's positive probability p and a softmax's within 2 (1 - p then
differs by the same amount, which near p = 1 is many of its own ulps;
tests/test_flat_xgboost.py measures it on 2,000 rows), and a class differs only where two
probabilities are that close. Refused with the reason: categorical splits, vector leaves,
dart and gblinear boosters, a ``missing`` other than NaN, other objectives.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np

from bench.model.flat_forest import FlatKind, Parts, TreeArrays, pack_trees, task_fields

LINKS = {"reg:squarederror": "identity", "reg:squaredlogerror": "identity",
         "reg:pseudohubererror": "identity", "reg:absoluteerror": "identity",
         "reg:quantileerror": "identity", "count:poisson": "exp", "reg:gamma": "exp",
         "reg:tweedie": "exp", "binary:logistic": "logit", "multi:softprob": "softmax"}


def is_xgboost(estimator: Any) -> bool:
    return type(estimator).__module__.split(".")[0] == "xgboost"


def _model(estimator: Any) -> dict[str, Any]:
    """XGBoost's own JSON model: read once, by the refusal and the conversion both."""
    document: dict[str, Any] = json.loads(bytes(estimator.get_booster().save_raw("json")))
    return document


def xgboost_refusal(estimator: Any, document: dict[str, Any]) -> str | None:
    missing = getattr(estimator, "missing", np.nan)
    if not (isinstance(missing, float) and np.isnan(missing)):
        return f"its missing value is {missing!r} (the flat format treats NaN as missing)"
    learner = document["learner"]
    booster = learner["gradient_booster"]
    if booster["name"] != "gbtree":
        return f"its booster is {booster['name']} (the flat format holds gbtree)"
    objective = learner["objective"]["name"]
    if objective not in LINKS:
        return f"its objective {objective} is not one the flat format applies"
    for tree in booster["model"]["trees"]:
        if any(tree["split_type"]) or int(tree["tree_param"].get("size_leaf_vector", 1)) > 1:
            return "it has categorical splits or vector leaves"
    return None


def _tree(tree: dict[str, Any]) -> TreeArrays:
    left = np.asarray(tree["left_children"], np.int64)
    condition = np.asarray(tree["split_conditions"], np.float32)
    leaf = left == -1
    # x < t (float32) is x <= the float32 just below t.
    below = np.nextafter(condition, np.float32(-np.inf)).astype(np.float64)
    return TreeArrays(left, np.asarray(tree["right_children"], np.int64),
                      np.asarray(tree["split_indices"], np.int64), np.where(leaf, 0.0, below),
                      np.where(leaf, condition.astype(np.float64), 0.0),
                      np.asarray(tree["default_left"], np.uint8))


def _iterations(estimator: Any, model: dict[str, Any]) -> int:
    """How many boosting rounds predict uses (early stopping keeps the best)."""
    rounds = len(model["iteration_indptr"]) - 1
    best = getattr(estimator, "best_iteration", None)
    return rounds if best is None else min(rounds, int(best) + 1)


def _base_margin(estimator: Any, document: dict[str, Any], columns: int) -> list[float]:
    """XGBoost's own starting margin of each column: its prediction with every leaf 0."""
    import xgboost

    zeroed = copy.deepcopy(document)
    for tree in zeroed["learner"]["gradient_booster"]["model"]["trees"]:
        leaves = [i for i, child in enumerate(tree["left_children"]) if child == -1]
        for i in leaves:
            tree["split_conditions"][i] = 0.0
            tree["base_weights"][i] = 0.0
    booster = xgboost.Booster(model_file=bytearray(json.dumps(zeroed).encode()))
    row = np.zeros((1, int(estimator.n_features_in_)), np.float32)
    margin = booster.inplace_predict(row, predict_type="margin")
    return [float(v) for v in np.asarray(margin, np.float32).reshape(-1)[:columns]]


def xgboost_arrays(estimator: Any, document: dict[str, Any]) -> Parts:
    model = document["learner"]["gradient_booster"]["model"]
    end = int(model["iteration_indptr"][_iterations(estimator, model)])
    trees = [_tree(tree) for tree in model["trees"][:end]]
    columns = np.asarray(model["tree_info"][:end], np.int32)
    n_columns = int(columns.max()) + 1 if columns.size else 1
    arrays = pack_trees(trees, int(estimator.n_features_in_))
    arrays["tree_column"] = columns
    import xgboost

    header: dict[str, Any] = {
        **task_fields(estimator, len(trees)), "library": f"xgboost {xgboost.__version__}",
        "combine": "sum", "baseline": _base_margin(estimator, document, n_columns),
        "link": LINKS[document["learner"]["objective"]["name"]],
        "exp": "libm",  # glibc's expf: float32, computed in float64 and rounded once
        "input_dtype": "float32", "accumulate": "float32", "nan": "route",
        "decision": "argmax_proba"}
    return arrays, header


XGBOOST = FlatKind(accepts=is_xgboost, read=_model, refusal=xgboost_refusal,
                   parts=xgboost_arrays)
