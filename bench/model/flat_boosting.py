"""Gradient-boosting models in the flat format: GradientBoosting and HistGradientBoosting,
regressors and classifiers (docker/service/flat_forest.py reads them).

A boosting model's prediction is a baseline plus every tree's leaf value, added in stage
order into one raw column per output (one for a regressor or a binary classifier, one per
class otherwise), then mapped through the loss's inverse link. The file keeps the baseline,
the column each tree adds to, each leaf's value as the library adds it, and how to read the
raw sum, so that the service repeats the library's own arithmetic in the same order:

- GradientBoosting (sklearn/ensemble/_gradient_boosting.pyx, predict_stages): inputs cast to
  float32, ``x <= threshold``, ``raw[k] += learning_rate * leaf``: the product is stored (the
  same float64 product the library computes). It refuses NaN and infinite inputs, so the
  flat model does too. A regressor returns the raw sum; a binary classifier predicts
  ``raw >= 0``.
- HistGradientBoosting (_predictor.pyx): inputs as float64, ``x <= num_threshold``, NaN by
  the node's missing_go_to_left; leaf values carry the shrinkage already. A regressor returns
  the inverse link of the raw sum (identity, or exp for the poisson and gamma losses); a
  binary classifier predicts ``raw > 0``.
- Classifiers' probabilities: expit of the raw sum (binary) or softmax over the columns,
  as scikit-learn's losses compute them (scipy's expit is 1 / (1 + exp(-x)) in C; the service
  computes the same with numpy: tests/test_flat_boosting.py checks bit for bit).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bench.model.flat_forest import FlatKind, Parts, TreeArrays, pack_trees, task_fields
from bench.model.sharding import tree_attribute

# scikit-learn's link classes, by name, and what the service applies to the raw sum.
INVERSE_LINKS = {"IdentityLink": "identity", "LogLink": "exp", "LogitLink": "logit",
                 "MultinomialLogit": "softmax"}
# Whose exp each link applies: LogitLink calls scipy's expit (the C library's exp),
# LogLink and the multinomial softmax numpy's exp (docker/service/flat_forest.py: _exp).
LINK_EXP = {"identity": "numpy", "exp": "numpy", "logit": "libm", "softmax": "numpy"}


def _kind(estimator: Any) -> str | None:
    """"hist", "gb", or None, by where the ensemble keeps its trees (bench.model.sharding)."""
    return {("_predictors", "list"): "hist", ("estimators_", "array"): "gb"}.get(
        tree_attribute(estimator) or ("", ""))


def _link(estimator: Any) -> str | None:
    return INVERSE_LINKS.get(type(estimator._loss.link).__name__)


def boosting_refusal(estimator: Any, _read: Any = None) -> str | None:
    """Why the flat format cannot hold this estimator (None: it can)."""
    kind = _kind(estimator)
    if kind is None:
        return (f"{type(estimator).__name__} is not a RandomForest, ExtraTrees, "
                "GradientBoosting or HistGradientBoosting model")
    classifier = hasattr(estimator, "classes_")
    if (classifier or kind == "hist") and _link(estimator) is None:
        return (f"its loss {type(estimator._loss).__name__} maps predictions through "
                f"{type(estimator._loss.link).__name__}, which the flat format does not apply")
    if kind == "hist":
        if getattr(estimator, "_preprocessor", None) is not None or np.any(
                getattr(estimator, "is_categorical_", None) or False):
            return "it has categorical features (the flat format holds numerical splits)"
    elif not (estimator.init_ == "zero" or type(estimator.init_).__name__.startswith("Dummy")):
        return (f"its init estimator {type(estimator.init_).__name__} gives every row its "
                "own baseline (the flat format holds a constant one)")
    return None


def _gb_trees(estimator: Any) -> tuple[list[TreeArrays], list[int], np.ndarray]:
    trees, columns = [], []
    for stage in estimator.estimators_:  # one row per stage, one tree per raw column
        for column, regressor in enumerate(stage):
            tree = regressor.tree_
            trees.append(TreeArrays(
                tree.children_left, tree.children_right, tree.feature, tree.threshold,
                estimator.learning_rate * tree.value[:, 0, 0], None))
            columns.append(column)
    n_features = int(estimator.n_features_in_)
    # The library's own baseline (its init estimator's raw prediction), the same for every
    # row: checked constant by boosting_refusal.
    baseline = estimator._raw_predict_init(np.zeros((1, n_features), np.float32))[0]
    return trees, columns, np.asarray(baseline, np.float64)


def _hist_trees(estimator: Any) -> tuple[list[TreeArrays], list[int], np.ndarray]:
    trees, columns = [], []
    for iteration in estimator._predictors:
        for column, predictor in enumerate(iteration):
            nodes = predictor.nodes
            leaf = nodes["is_leaf"].astype(bool)
            trees.append(TreeArrays(
                # uint32 children: widened first, so that a leaf's -1 is -1.
                np.where(leaf, -1, nodes["left"].astype(np.int64)),
                np.where(leaf, -1, nodes["right"].astype(np.int64)),
                nodes["feature_idx"].astype(np.int64), nodes["num_threshold"],
                nodes["value"].astype(np.float64), nodes["missing_go_to_left"]))
            columns.append(column)
    return trees, columns, np.asarray(estimator._baseline_prediction, np.float64).ravel()


def boosting_arrays(estimator: Any, _read: Any = None) -> Parts:
    """The model's trees as flat arrays (and the column each adds to), and the header
    fields that say how the raw sums become predictions."""
    kind = _kind(estimator)
    trees, columns, baseline = (_hist_trees if kind == "hist" else _gb_trees)(estimator)
    arrays = pack_trees(trees, int(estimator.n_features_in_))
    arrays["tree_column"] = np.asarray(columns, np.int32)
    classifier = hasattr(estimator, "classes_")
    # A GradientBoostingRegressor returns the raw sum whatever its loss.
    link = _link(estimator) if classifier or kind == "hist" else "identity"
    header: dict[str, Any] = {
        **task_fields(estimator, len(trees)), "combine": "sum", "baseline": baseline.tolist(),
        "link": link, "exp": LINK_EXP[str(link)],
        "input_dtype": "float64" if kind == "hist" else "float32",
        "nan": "route" if kind == "hist" else "refuse",
        # A class from the raw sums, as each predict method decides: a binary
        # HistGradientBoosting classifier predicts raw > 0, GradientBoosting raw >= 0.
        "decision": ("argmax_raw" if len(baseline) > 1 else "raw>=0" if kind == "gb"
                     else "raw>0")}
    return arrays, header


# Last in bench.model.flat_forest's order: it takes what no other family did, and its refusal
# says what the estimator is not.
BOOSTING = FlatKind(accepts=lambda _: True, read=lambda _: None, refusal=boosting_refusal,
                    parts=boosting_arrays)
