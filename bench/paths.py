"""Where the harness keeps its files. Everything generated lives under git-ignored folders."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DOCKER_DIR = PROJECT_ROOT / "docker"
SERVICE_DIR = DOCKER_DIR / "service"
REQUIREMENTS_FILE = DOCKER_DIR / "requirements.txt"
RUNTIME_DOCKERFILE = DOCKER_DIR / "Dockerfile.runtime"


def cache_dir() -> Path:
    """Wheelhouse, base rootfs, build contexts, compressed models: reusable across runs."""
    return Path(os.environ.get("MLBENCH_CACHE", PROJECT_ROOT / ".cache" / "mlbench"))


def models_dir() -> Path:
    return Path(os.environ.get("MLBENCH_MODELS", PROJECT_ROOT / "datos" / "modelos"))


def results_dir() -> Path:
    return Path(os.environ.get("MLBENCH_RESULTS", PROJECT_ROOT / "results"))
