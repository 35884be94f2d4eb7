"""Atomic writes and tree sizes: what every store in the harness relies on."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def _read_umask() -> int:
    # os.umask can only be read by setting it: done once, at import, before any thread runs.
    current = os.umask(0)
    os.umask(current)
    return current


_UMASK = _read_umask()


def write_atomic(path: Path, text: str) -> None:
    """Write text so a reader never sees half a file (temp file in the same folder + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def partial_path(target: Path) -> Path:
    """A temporary name beside `target`, unique to this process and call. A cached file is
    written under it and renamed whole: two runs making the same file at once (two engine
    lanes of the tests did) each write their own, and either rename leaves the same bytes;
    a fixed ".partial" name let one run rename the other's half-written file away."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    # mkstemp makes 0600: the service in its container (another uid) reads these files
    # through a read-only mount (a compressed model was refused with EACCES).
    os.chmod(name, 0o666 & ~_UMASK)
    return Path(name)


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link a large file into a build context (no GB copy), copying across filesystems."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def tree_bytes(root: Path) -> int:
    """Apparent size of every regular file below root (a file linked twice counts twice)."""
    total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            full = Path(dirpath) / name
            if full.is_file() and not full.is_symlink():
                total += full.stat().st_size
    return total
