"""MODEL_FORMAT=joblib: one joblib file (compressed with MODEL_CODEC or not), downloaded and
verified first when the service downloads, verified against MODEL_SHA256 when pinned."""

from __future__ import annotations

import logging
import time
from typing import Any

import joblib

from .codecs_io import open_model_stream
from .loading import LoadSteps

log = logging.getLogger("service.model")

# Imported at start-up, as any real service does: otherwise the first unpickle pays about a
# second of imports and load_s would not scale with the model.
LIBRARIES = ("sklearn.ensemble", "sklearn.pipeline")


def load(steps: LoadSteps) -> Any:
    settings, story = steps.settings, steps.story
    if settings.downloads:
        steps.download()
    elif settings.pinned_sha256:
        steps.verify_local()
    story.load_start = time.time()
    log.info("loading model %s (codec %s)", settings.model_path, settings.codec)
    if settings.load_delay_s:  # tests only: a load long enough to watch the probe
        time.sleep(settings.load_delay_s)
    with open_model_stream(settings.model_path, settings.codec) as stream:
        model = joblib.load(stream)
    story.load_end = time.time()
    if not hasattr(model, "predict"):
        raise TypeError(f"{type(model).__name__} has no predict(): not a model")
    return model
