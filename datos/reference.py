"""Reference predictions of any joblib model, computed on the host in a fresh process.

Run as ``python -m datos.reference MODEL N_ROWS`` and prints JSON. A fresh process keeps a
multi-GB load (about 2x the file in peak memory) out of the harness process.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np


def feature_count(model: Any) -> int:
    count = getattr(model, "n_features_in_", None)
    if count is None and hasattr(model, "steps"):
        count = getattr(model.steps[0][1], "n_features_in_", None)
    if count is None:
        raise SystemExit("the model has no n_features_in_: fit it with scikit-learn >= 1.0")
    return int(count)


def main() -> None:
    path, n_rows = sys.argv[1], int(sys.argv[2])
    from bench.model.host_load import load_for_structure

    model = load_for_structure(path)
    if not hasattr(model, "predict"):
        raise SystemExit(f"{type(model).__name__} has no predict(): not a model")
    n_features = feature_count(model)
    rows = np.random.default_rng(0).normal(0.0, 1.0, (n_rows, n_features))
    # tolist(): floats for a regressor, the classes' own type (int, str) for a classifier.
    predictions = np.ravel(model.predict(rows)).tolist()
    probabilities = (np.asarray(model.predict_proba(rows), dtype=np.float64).tolist()
                     if hasattr(model, "predict_proba") else None)
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    from bench.model.flat_forest import flat_refusal

    json.dump({"n_features": n_features, "model_class": type(model).__name__,
               "final_estimator": type(final).__name__,
               # Why the flat format (the mmap strategies) cannot hold it; None: it can.
               "flat_refusal": flat_refusal(final),
               # Every class the final estimator derives from: the harness decides from these
               # which strategies can take it apart (bench.model.sharding).
               "final_bases": [cls.__name__ for cls in type(final).__mro__],
               "reference_rows": rows.tolist(), "reference_predictions": predictions,
               "reference_probabilities": probabilities},
              sys.stdout)


if __name__ == "__main__":
    main()
