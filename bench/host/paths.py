"""Where the harness keeps its files. Everything generated lives under git-ignored folders."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # bench/host/paths.py
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


def service_module(name: str) -> ModuleType:
    """A module of docker/service that has no relative imports, loaded from its file (the
    harness uses the service's own code where it must agree with it: file formats, codecs)."""
    full = f"mlbench_service_{name}"
    if full in sys.modules:
        return sys.modules[full]
    spec = importlib.util.spec_from_file_location(full, SERVICE_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[full] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def service_package() -> ModuleType:
    """docker/service imported as the package `backend`, as the image imports it (relative
    imports work), anew on every call: its settings are read at import, from the
    environment of that moment."""
    for name in list(sys.modules):
        if name == "backend" or name.startswith("backend."):
            del sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        "backend", SERVICE_DIR / "__init__.py", submodule_search_locations=[str(SERVICE_DIR)])
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules["backend"] = package
    spec.loader.exec_module(package)
    return package
