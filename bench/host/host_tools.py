"""What an option needs of this host (tools on PATH, root), checked before anything is built:
one usage error naming what is missing and how to get it, or how to do without."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

from bench.errors import UsageError


def require(option: str, tools: Sequence[str], packages: str, root_for: str) -> None:
    """`option` needs `tools` (Debian's `packages` install them) and root (`root_for`
    says why)."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise UsageError(f"{option} needs {' and '.join(missing)} on the host: apt-get install "
                         f"{packages}, or leave {option} out")
    if os.geteuid() != 0:
        raise UsageError(f"{option} needs root ({root_for}): run as root or leave it out")
