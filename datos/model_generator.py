"""Train a synthetic FIFA RandomForestRegressor (or, --model-kind forest-classifier, a
RandomForestClassifier of the player's market-value band; hgb, lightgbm and xgboost, a
gradient-boosting regressor of the value: datos/boosting_models.py) whose joblib file
reaches a requested size.

Original hyperparameters (max_depth=30, min_samples_split=10, min_samples_leaf=1,
max_features='sqrt'); n_estimators is calibrated so the file lands within 10% of the target.
A full-depth tree on 122,501 rows serialises to about 2.45 MB; where whole trees cannot land
within the tolerance (small targets), every tree is trained on a smaller bootstrap sample
(max_samples), which shrinks it. Deterministic for (size, seed); cached;
written atomically.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeAlias

import joblib
import numpy as np

from datos import boosting_models
from datos.synthetic_fifa import N_FEATURES, generate

TOLERANCE = 0.10
ORIGINAL_HYPERPARAMETERS: dict[str, Any] = {
    "max_depth": 30,
    "min_samples_split": 10,
    "min_samples_leaf": 1,
    "max_features": "sqrt",
}
TREES_PER_PROGRESS_STEP = 8
# What the synthetic model predicts: the market value (the seed's regressor), or its band
# among the players, a quartile each (a classifier of the same forest shape); or the value
# by gradient boosting (scikit-learn's HistGradientBoosting, LightGBM, XGBoost).
# Each kind's file stem and the name the progress line gives it (the boosting kinds':
# datos/boosting_models.py).
FOREST_KINDS = {"forest-regressor": ("fifa_rf", "RandomForest"),
                "forest-classifier": ("fifa_rfc", "RandomForestClassifier")}
MODEL_KINDS = (*FOREST_KINDS, *boosting_models.KINDS)


def _naming(kind: str) -> tuple[str, str]:
    """A kind's file stem and label."""
    boosting = boosting_models.KINDS.get(kind)
    return FOREST_KINDS[kind] if boosting is None else (boosting.stem, boosting.label)


def kind_label(kind: str) -> str:
    return _naming(kind)[1]
VALUE_BANDS = ("low", "mid", "high", "star")
Forest: TypeAlias = Any  # a RandomForestRegressor or Classifier (scikit-learn has no types)
REFERENCE_ROWS = 16

ProgressCallback = Callable[[int, int], None]  # (trees trained, trees in all)


@dataclass(frozen=True)
class GeneratedModel:
    path: str
    bytes: int
    target_bytes: int
    seed: int
    n_estimators: int
    max_samples: float | None
    train_s: float
    n_features: int
    reference_rows: list[list[float]]
    reference_predictions: list[Any]  # values, or a classifier's bands
    kind: str = "forest-regressor"
    reference_probabilities: list[list[float]] | None = None


def model_path(models_dir: Path, target_bytes: int, seed: int,
               kind: str = "forest-regressor") -> Path:
    return models_dir / f"{_naming(kind)[0]}_{target_bytes}B_seed{seed}.joblib"


def value_bands(market_value: Any) -> Any:
    """Each player's market-value quartile, named (the classifier's target)."""
    edges = np.quantile(market_value, [0.25, 0.5, 0.75])
    return np.asarray(VALUE_BANDS)[np.searchsorted(edges, market_value)]


def _dump_size(model: Forest, folder: Path) -> int:
    probe = folder / "probe.joblib"
    joblib.dump(model, probe)
    size = probe.stat().st_size
    probe.unlink()
    return size


def _forest(seed: int, n_estimators: int, max_samples: float | None,
            kind: str = "forest-regressor") -> Forest:
    # Imported here: the command line reads MODEL_KINDS without a second of scikit-learn.
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestRegressor if kind == "forest-regressor" else RandomForestClassifier
    return cls(
        n_estimators=n_estimators, random_state=seed, n_jobs=-1, warm_start=True,
        max_samples=max_samples, **ORIGINAL_HYPERPARAMETERS,
    )


def generate_model(
    target_bytes: int, seed: int, models_dir: Path,
    progress: ProgressCallback = lambda _done, _total: None, kind: str = "forest-regressor",
) -> GeneratedModel:
    """Return the cached model for (size, seed, kind), training it first if needed."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}: one of {', '.join(MODEL_KINDS)}")
    path = model_path(models_dir, target_bytes, seed, kind)
    sidecar = path.with_suffix(".json")
    if path.exists() and sidecar.exists():
        stored = json.loads(sidecar.read_text())
        if stored.get("bytes") == path.stat().st_size:
            return GeneratedModel(**stored)

    models_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    data = generate(seed=seed)
    x, y = data.features, data.market_value_eur
    if kind == "forest-classifier":
        y = value_bands(y)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".train-") as scratch:
        folder = Path(scratch)
        if kind in boosting_models.KINDS:
            model = boosting_models.fit_to_size(
                kind, target_bytes, seed, x, y, lambda m: _dump_size(m, folder), TOLERANCE,
                progress)
            iterations = int(getattr(model, "n_iter_", None) or model.n_estimators)
            return _store(model, path, sidecar, folder, target_bytes, seed, iterations, None,
                          started, x, kind)
        # Calibrate: the size of a two-tree forest gives the per-tree cost and the fixed shell.
        probe = _forest(seed, 2, None, kind).fit(x, y)
        two = _dump_size(probe, folder)
        probe.estimators_ = probe.estimators_[:1]
        probe.n_estimators = 1
        one = _dump_size(probe, folder)
        per_tree, shell = max(1, two - one), max(0, 2 * one - two)
        max_samples: float | None = None
        n_trees = max(1, round((target_bytes - shell) / per_tree))
        if abs(n_trees * per_tree + shell - target_bytes) > TOLERANCE / 2 * target_bytes:
            # Whole trees cannot land near the target (few trees): train one more tree and
            # shrink every tree by bootstrapping fewer rows (max_samples).
            n_trees = max(1, math.ceil((target_bytes - shell) / per_tree))
            max_samples = max(1e-4, (target_bytes - shell) / (n_trees * per_tree))
        model = _forest(seed, 0, max_samples, kind)
        for _attempt in range(6):
            model = _grow(model, n_trees, x, y, progress)
            size = _dump_size(model, folder)
            if abs(size - target_bytes) <= TOLERANCE * target_bytes:
                break
            if max_samples is not None:
                max_samples = min(1.0, max_samples * (target_bytes - shell) / max(1, size - shell))
                model = _forest(seed, 0, max_samples, kind)
                continue
            n_trees = max(1, n_trees + round((target_bytes - size) / per_tree))
            if n_trees < len(model.estimators_):  # overshot: drop the last trees
                model.estimators_ = model.estimators_[:n_trees]
                model.n_estimators = n_trees
        model.set_params(n_jobs=None, warm_start=False)
        return _store(model, path, sidecar, folder, target_bytes, seed, len(model.estimators_),
                      max_samples, started, x, kind)


def _store(model: Any, path: Path, sidecar: Path, folder: Path, target_bytes: int, seed: int,
           n_estimators: int, max_samples: float | None, started: float, x: Any,
           kind: str) -> GeneratedModel:
    """Dump the model to `path` (atomically, from the scratch folder) with its sidecar: the
    reference rows and what the model predicts for them."""
    final = folder / "model.joblib"
    joblib.dump(model, final)
    rows = x[np.linspace(0, len(x) - 1, REFERENCE_ROWS).astype(int)]
    generated = GeneratedModel(
        path=str(path), bytes=final.stat().st_size, target_bytes=target_bytes, seed=seed,
        n_estimators=n_estimators, max_samples=max_samples,
        train_s=time.perf_counter() - started, n_features=N_FEATURES,
        reference_rows=rows.tolist(),
        reference_predictions=model.predict(rows).tolist(), kind=kind,
        reference_probabilities=(model.predict_proba(rows).tolist()
                                 if kind == "forest-classifier" else None),
    )
    os.replace(final, path)
    tmp_sidecar = sidecar.with_suffix(".json.tmp")
    tmp_sidecar.write_text(json.dumps(asdict(generated)))
    os.replace(tmp_sidecar, sidecar)
    return generated


def _grow(model: Forest, n_trees: int, x: Any, y: Any, progress: ProgressCallback) -> Forest:
    have = len(getattr(model, "estimators_", []))
    if n_trees <= have:
        return model
    steps = math.ceil((n_trees - have) / TREES_PER_PROGRESS_STEP)
    for step in range(1, steps + 1):
        model.set_params(n_estimators=min(n_trees, have + step * TREES_PER_PROGRESS_STEP))
        model.fit(x, y)  # warm_start: only the new trees are trained
        progress(model.n_estimators, n_trees)
    return model
