"""The host's load of a user's model, for what the harness reads from it (its structure: the
trees the flat format and the shards are made of, its class, its features).

A model saved by another scikit-learn is served by that version in its own environment
(bench.model.serving_env), and its reference predictions come from there
(bench.measure.own_environment). The host still reads its trees with its own scikit-learn,
which warns that the pickle is of another version (InconsistentVersionWarning): here that
warning says nothing the run does not check, since whatever the host makes of the trees is
served and must predict what the model's own environment predicts. So it is silenced here,
and only here.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import joblib


def load_for_structure(path: Path | str) -> Any:
    from sklearn.exceptions import InconsistentVersionWarning

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=InconsistentVersionWarning)
        return joblib.load(path)
