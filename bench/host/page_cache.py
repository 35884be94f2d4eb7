"""The kernel's page cache: drop it (cold-cache trials) and read how much it holds."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

DROP_CACHES = Path("/proc/sys/vm/drop_caches")
MEMINFO = Path("/proc/meminfo")


def can_drop() -> bool:
    return DROP_CACHES.exists() and os.access(DROP_CACHES, os.W_OK)


def drop() -> None:
    """Write back dirty pages, then drop every clean page the kernel may drop (not those a
    process still maps)."""
    subprocess.run(["sync"], check=False)
    DROP_CACHES.write_text("3\n")


def cached_bytes() -> int:
    """The machine's page cache now (/proc/meminfo `Cached`)."""
    for line in MEMINFO.read_text().splitlines():
        if line.startswith("Cached:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{MEMINFO} has no Cached line")
