"""MODEL_FORMAT=flat: map the flat forest (flat_forest.py), no unpickling, no copy. A
download is verified whole against its pin before it is mapped; a local read-only mount is
trusted, as volume's is."""

from __future__ import annotations

import logging
import time
from typing import Any

from .loading import LoadSteps

log = logging.getLogger("service.model")

# numpy only (a Pipeline's pinned preprocessing imports what it needs when unpickled):
# without scikit-learn and SciPy each process's private memory stays small, and that is
# what --workers and --replicas multiply.
LIBRARIES: tuple[str, ...] = ()


def load(steps: LoadSteps) -> Any:
    from .flat_forest import open_model

    settings, story = steps.settings, steps.story
    if settings.downloads:
        steps.download()
    story.load_start = time.time()
    log.info("mapping flat forest %s (prefetch %s)", settings.model_path, settings.prefetch)
    model = open_model(settings.model_path, verify=False, prefetch=settings.prefetch)
    story.load_end = time.time()
    return model
