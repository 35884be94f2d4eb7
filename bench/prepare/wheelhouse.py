"""A host-side wheelhouse for the service's dependencies, built once and cached.

Wheels are chosen for the container's Python (3.11, glibc Linux of the host's architecture),
not the host's, so a host on another Python still builds a working image.
"""

from __future__ import annotations

import hashlib
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench.errors import BenchError, UsageError
from bench.host.fsutil import write_atomic
from bench.progress import Progress

CONTAINER_PYTHON = "3.11"
# Debian bookworm has glibc 2.36; pip matches a manylinux tag only when it is listed.
MANYLINUX_TAGS = ("manylinux_2_28", "manylinux_2_17", "manylinux2014", "manylinux_2_5", "manylinux1")


def wheelhouse_dir(cache: Path, requirements: Path) -> Path:
    key = hashlib.sha256(requirements.read_bytes() + platform.machine().encode()).hexdigest()[:16]
    return cache / "wheels" / key


def ensure_wheelhouse(cache: Path, requirements: Path, progress: Progress) -> Path:
    folder = wheelhouse_dir(cache, requirements)
    marker = folder / ".complete"
    if marker.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    machine = platform.machine()
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "-r", str(requirements), "-d", str(folder), "--only-binary=:all:",
        "--python-version", CONTAINER_PYTHON, "--implementation", "cp",
        "--abi", "cp" + CONTAINER_PYTHON.replace(".", ""),
    ]
    for tag in MANYLINUX_TAGS:
        command += ["--platform", f"{tag}_{machine}"]
    with progress.step(f"downloading service wheels into {folder}"):
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            shutil.rmtree(folder)  # what pip fetched before it failed is no environment
            unresolved = _unresolved(result.stderr)
            if unresolved is not None:
                raise UsageError(
                    f"the service's environment cannot be installed for Python "
                    f"{CONTAINER_PYTHON} on {machine}: {unresolved}; pin versions that install "
                    f"there with --requirements FILE (it was {requirements})")
            tail = "\n".join(result.stderr.strip().splitlines()[-5:])
            raise BenchError(f"pip download of the service wheels failed; check network "
                             f"access to the package index:\n{tail}")
    write_atomic(marker, "ok\n")
    return folder


_NETWORK = ("NewConnectionError", "Failed to establish", "Max retries", "timed out",
            "Temporary failure in name resolution", "ProxyError")


def _unresolved(stderr: str) -> str | None:
    """pip's reason when the index answered and no set of wheels fits (no wheel of that
    version for the container's Python, or pins that conflict); None for any other failure
    (the network: pip then finds no version either, after its retries)."""
    if any(mark in stderr for mark in _NETWORK):
        return None
    missing = re.search(r"No matching distribution found for (\S+)", stderr)
    if missing:
        return f"no wheel of {missing.group(1)}"
    conflict = re.search(r"Cannot install (.+?) because these package versions have "
                         r"conflicting dependencies", stderr)
    if conflict:
        return f"conflicting pins ({conflict.group(1)})"
    return None
