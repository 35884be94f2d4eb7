"""Labelled objects a test makes outside a run (its own servers, networks, images): held by
the id's lock while they live, as a run's are (bench.run.liveness), so that `clean` or a
run's sweep in the other engine lane leaves them; removed by their label at the end."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator

from bench.engine import Engine
from bench.progress import Progress
from bench.run import liveness
from bench.run.cleanup import remove_run, run_labels


@contextlib.contextmanager
def scoped_run(engine: Engine, prefix: str) -> Iterator[tuple[str, dict[str, str]]]:
    """(run id, labels) for objects made in the block; all of them removed after it."""
    run_id = f"{prefix}-{secrets.token_hex(3)}"
    with liveness.holding(run_id):
        try:
            yield run_id, run_labels(run_id, keep=False)
        finally:
            remove_run(engine, run_id, False, Progress(quiet=True))
