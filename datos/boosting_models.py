"""Synthetic gradient-boosting regressors of the FIFA market value (--model-kind hgb,
lightgbm, xgboost) whose joblib file reaches a requested size.

A boosting model grows by one tree per iteration, and its file by about the same bytes
each: the sizes of two small probes (PROBE_ITERATIONS and twice that) give the bytes per
iteration and the fixed shell, the iterations follow, and a refit corrects what the
estimate missed. Trees of up to 255 leaves (scikit-learn's and LightGBM's largest default
histogram bins; XGBoost's depth 8), so that a file of a given size holds few, large trees as
the forests do. Early stopping is off: the iterations asked are the iterations made.

A HistGradientBoosting of 255-leaf trees takes about 30 KB an iteration: 1 GB would be 33,000
iterations, hours of training. Above AIM_ITERATIONS such iterations its trees grow instead
(HGB_BYTES_PER_LEAF measured here: 1.10 MB for 2 iterations of 4,700 leaves), with leaves of
5 rows or more (scikit-learn's default 20 stops a tree near 6,000 leaves of the 122,501
rows): a 1 GB model is then some 450 iterations of about 2.2 MB, as a boosting model of
hundreds of deep trees is, and trains in about half an hour.
Deterministic for (size, seed): one thread's order of sums where the library offers it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PROBE_ITERATIONS = 4
REFITS = 3
AIM_ITERATIONS = 300
HGB_BYTES_PER_LEAF = 117
HGB_LEAVES = 255


@dataclass(frozen=True)
class BoostingKind:
    library: str  # the distribution that trains (and unpickles) it
    make: Callable[[int, int, int], Any]  # (iterations, seed, target bytes) -> unfitted
    stem: str  # the cached file's name: <stem>_<bytes>B_seed<seed>.joblib
    label: str  # what the progress line calls it


def _hgb(iterations: int, seed: int, target_bytes: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    leaves = max(HGB_LEAVES, target_bytes // (AIM_ITERATIONS * HGB_BYTES_PER_LEAF))
    return HistGradientBoostingRegressor(
        max_iter=iterations, max_leaf_nodes=leaves, early_stopping=False, random_state=seed,
        **({} if leaves == HGB_LEAVES else {"min_samples_leaf": 5}))


def _lightgbm(iterations: int, seed: int, target_bytes: int) -> Any:
    import lightgbm

    return lightgbm.LGBMRegressor(n_estimators=iterations, num_leaves=255, random_state=seed,
                                  deterministic=True, force_row_wise=True, n_jobs=1,
                                  verbose=-1)


def _xgboost(iterations: int, seed: int, target_bytes: int) -> Any:
    import xgboost

    return xgboost.XGBRegressor(n_estimators=iterations, max_depth=8, tree_method="hist",
                                random_state=seed, n_jobs=1)


KINDS: dict[str, BoostingKind] = {
    "hgb": BoostingKind("scikit-learn", _hgb, "fifa_hgb", "HistGradientBoostingRegressor"),
    "lightgbm": BoostingKind("lightgbm", _lightgbm, "fifa_lgbm", "LightGBM regressor"),
    "xgboost": BoostingKind("xgboost", _xgboost, "fifa_xgb", "XGBoost regressor"),
}


def missing_library(kind: str) -> str | None:
    """The library a boosting kind needs that this host cannot import; None: none."""
    library = KINDS[kind].library
    module = {"scikit-learn": "sklearn"}.get(library, library)
    return None if importlib.util.find_spec(module) is not None else library


def fit_to_size(kind: str, target_bytes: int, seed: int, x: Any, y: Any,
                size_of: Callable[[Any], int], tolerance: float,
                progress: Callable[[int, int], None]) -> Any:
    """A fitted model of `kind` whose dump (`size_of`) is within `tolerance` of the target,
    or the nearest of REFITS attempts."""
    make = KINDS[kind].make
    small = size_of(make(PROBE_ITERATIONS, seed, target_bytes).fit(x, y))
    large = size_of(make(2 * PROBE_ITERATIONS, seed, target_bytes).fit(x, y))
    per_iteration = max(1, (large - small) // PROBE_ITERATIONS)
    shell = max(0, small - PROBE_ITERATIONS * per_iteration)
    if target_bytes < shell + per_iteration:
        raise ValueError(f"a {kind} model of one iteration takes {shell + per_iteration} "
                         f"bytes, more than the {target_bytes} asked: ask a larger size")
    iterations = max(1, round((target_bytes - shell) / per_iteration))
    model: Any = None
    for _attempt in range(REFITS):
        progress(0, iterations)
        model = make(iterations, seed, target_bytes).fit(x, y)
        progress(iterations, iterations)
        size = size_of(model)
        if abs(size - target_bytes) <= tolerance * target_bytes:
            break
        iterations = max(1, iterations + round((target_bytes - size) / per_iteration))
    return model
