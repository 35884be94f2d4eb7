"""Made once on this host, whoever asks first: a lock for the cached things that take a
minute to make (the base image, the runtime image).

Found: the two engine lanes of the test suite (and two runs started together) each found no
base image and made one, so debootstrap ran twice and the tag moved to the second; every
later run then built a second runtime image on top of it, and a test that counted BuildKit's
cache entries saw the new runtime's layers appear in the middle of its run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

LOCKS_DIR = "locks"


@contextlib.contextmanager
def made_once(what: str, cache: Path) -> Iterator[None]:
    """Hold the host-wide lock of `what` for the block: whoever comes second waits, then
    finds what the first made. The lock file stays (removing it while another process
    waits on it would let a third take a lock of a file nobody else sees)."""
    path = cache / LOCKS_DIR / f"{what}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)  # released when the descriptor closes
        yield
    finally:
        os.close(descriptor)
