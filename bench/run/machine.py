"""Machine, engine and commit metadata recorded with every run (as pytest-benchmark does)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psutil

from bench.engine import EngineInfo
from bench.host.paths import PROJECT_ROOT


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def virtualization() -> str:
    """The hypervisor the machine runs under: `systemd-detect-virt --vm` (kvm, ...; --vm, as a
    container would otherwise be named instead), else "vm" when the CPU reports a hypervisor,
    else "none". A report must say when its vCPUs are a VM's."""
    if shutil.which("systemd-detect-virt"):
        result = subprocess.run(["systemd-detect-virt", "--vm"], capture_output=True, text=True)
        if result.stdout.strip():
            return result.stdout.strip()
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("flags")), "")
    except OSError:
        return "unknown"
    return "vm" if " hypervisor" in flags else "none"


def machine_info(data_dir: Path) -> dict[str, Any]:
    disk = shutil.disk_usage(data_dir)
    return {
        "hostname": platform.node(),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "virtualization": virtualization(),
        "ram_bytes": psutil.virtual_memory().total,
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "disk_total_bytes": disk.total,
        "disk_free_bytes": disk.free,
    }


def commit_info() -> dict[str, Any]:
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    # What differs from the commit (tracked files): a run from a dirty tree says which code
    # it measured beyond the commit, not only that there was some.
    # "XY path" lines (the first one's leading space stripped with the output): the path.
    changed = [line.split(None, 1)[1] for line in git(
        "status", "--porcelain", "--untracked-files=no").splitlines() if line.strip()]
    return {
        "commit": git("rev-parse", "HEAD") or None,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD") or None,
        "dirty": bool(changed),
        "uncommitted": changed,
    }


def engine_metadata(info: EngineInfo) -> dict[str, Any]:
    return asdict(info)
