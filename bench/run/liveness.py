"""Which runs are still running, so that `clean` never removes what a live run uses.

A run holds an exclusive lock (flock) on <cache>/runs/<run id>.lock from before it creates
anything until it has removed what it made. The kernel releases the lock when the process
ends, however it ends: a run killed with -9 is not running, and `clean` sweeps it. Anything
else that makes labelled objects for a while (a test's servers) holds its id's lock the same
way. A lock, not the owner's pid: a pid is reused, and one process (a test worker) runs many
runs one after another, each finished when its lock is released.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from bench.host.paths import cache_dir

LOCKS_DIR = "runs"


def _lock_path(run_id: str, cache: Path | None) -> Path:
    return (cache or cache_dir()) / LOCKS_DIR / f"{run_id}.lock"


@contextlib.contextmanager
def holding(run_id: str, cache: Path | None = None) -> Iterator[None]:
    """The run's lock, held for the block."""
    path = _lock_path(run_id, cache)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(descriptor)  # releases the lock


def is_running(run_id: str, cache: Path | None = None) -> bool:
    """True while some process holds the run's lock."""
    path = _lock_path(run_id, cache)
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False
