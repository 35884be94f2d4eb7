"""Holds the model and the story of how it was loaded.

One load at a time (single flight): concurrent first requests of a lazy service wait on the
lock for the load already under way instead of loading again. Every phase is stamped with
wall-clock epoch seconds so the harness can draw a start-up timeline against container start.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
from typing import Any

from .loading import LoadSteps, LoadStory, loader_for
from .settings import Settings

log = logging.getLogger("service.model")


def import_model_libraries(model_format: str) -> None:
    """The libraries the format's loader declares, imported at start-up (load_<format>.py
    says why each needs what it needs)."""
    for name in loader_for(model_format).LIBRARIES:
        importlib.import_module(name)


class ModelHolder:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.story = LoadStory()
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def failed(self) -> bool:
        return self.story.error is not None

    def get(self) -> Any:
        """Return the model, loading it first if nobody has (single flight)."""
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None and self.story.error is None:
                self._load_locked()
            if self._model is None:
                raise RuntimeError(self.story.error or "model not loaded")
            return self._model

    def note_request(self) -> None:
        if self._model is None:
            self.story.requests_before_loaded += 1

    def load_in_background(self) -> None:
        threading.Thread(target=self._load_quietly, name="model-loader", daemon=True).start()

    def _load_quietly(self) -> None:
        with contextlib.suppress(Exception):  # recorded in story.error and logged
            self.get()

    def _load_locked(self) -> None:
        try:
            steps = LoadSteps(self.settings, self.story)
            model = loader_for(self.settings.model_format).load(steps)
            self.story.load_count += 1
            self._model = model
            if self.story.load_start is not None and self.story.load_end is not None:
                log.info("model (%s) loaded in %.3fs", self.settings.model_format,
                         self.story.load_end - self.story.load_start)
        except Exception as error:
            self.story.error = f"{type(error).__name__}: {error}"
            log.error("model load failed: %s", self.story.error)
            raise

    def close(self) -> None:
        """Stop what the model runs in the background (flat_lazy's fill). Found: an
        in-process service whose store had gone kept retrying its fill after shutdown."""
        close = getattr(self._model, "close", None)
        if close is not None:
            close()

    def describe(self) -> dict[str, Any]:
        model = self._model
        info: dict[str, Any] = {
            "loaded": model is not None,
            "loading": self.settings.loading,
            "codec": self.settings.codec,
            "model_path": self.settings.model_path,
            "model_sha256": self.story.verified_sha256,
            "story": self.story.__dict__,
        }
        if self.story.load_start is not None and self.story.load_end is not None:
            info["load_s"] = self.story.load_end - self.story.load_start
        if model is not None:
            info["model_class"] = type(model).__name__
            info["n_features"] = expected_features(model)
            names = getattr(model, "feature_names_in_", None)
            info["feature_names"] = None if names is None else [str(n) for n in names]
            if hasattr(model, "paged_stats"):  # flat_lazy: what it fetched, and when whole
                info["paged"] = model.paged_stats()
        return info


def expected_features(model: Any) -> int | None:
    """Feature count of any fitted scikit-learn estimator or pipeline."""
    count = getattr(model, "n_features_in_", None)
    if count is None and hasattr(model, "steps"):
        count = getattr(model.steps[0][1], "n_features_in_", None)
    return None if count is None else int(count)


def feature_names(model: Any) -> list[str] | None:
    """The names the model was fitted with (a DataFrame's columns), if any."""
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(name) for name in names]


def first_step(model: Any) -> Any:
    """The estimator that sees the request's values first (a Pipeline's first step)."""
    return model.steps[0][1] if hasattr(model, "steps") else model


def compares_in_float32(estimator: Any) -> bool:
    """Trees (scikit-learn's and the flat forest) cast their input to float32: a finite
    float64 beyond its range becomes inf there. A linear model takes any finite float64."""
    module = type(estimator).__module__
    return module.startswith(("sklearn.tree", "sklearn.ensemble._forest",
                              "sklearn.ensemble._gb")) or module.endswith("flat_forest")
