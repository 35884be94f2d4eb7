"""--model-code DIR: the modules of the user's own project that their pickle imports (a
transformer class in a Pipeline, a custom estimator). The folder goes on the import path of
the host's own loads (the reference predictions, the conversions) and into the image, on the
service's PYTHONPATH, read-only (bench/prepare/runtime_image.py: with_model_code); its
top-level modules are then not "missing" from the service (pickle_needs.environment)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from bench.errors import UsageError

IN_IMAGE = "/opt/model-code"  # where the image holds the folder, on PYTHONPATH
_SKIPPED = frozenset({"__pycache__", ".git", ".venv", ".mypy_cache", ".pytest_cache"})


def provided_modules(folder: Path | None) -> frozenset[str]:
    """The top-level modules `import` finds in the folder: name.py, or a name/ package."""
    if folder is None:
        return frozenset()
    return frozenset(
        entry.stem if entry.is_file() else entry.name for entry in folder.iterdir()
        if entry.name not in _SKIPPED and not entry.name.startswith(".")
        and ((entry.is_file() and entry.suffix == ".py" and entry.stem.isidentifier())
             or (entry.is_dir() and entry.name.isidentifier()
                 and any(entry.glob("*.py")))))


def check_model_code(folder: Path) -> None:
    """A usage error naming the problem and the fix, for a --model-code that holds no code."""
    if not folder.is_dir():
        raise UsageError(f"--model-code {folder} is not a folder: pass the folder that holds "
                         "your modules (e.g. src/, where src/features.py is imported as "
                         "features)")
    if not provided_modules(folder):
        raise UsageError(f"--model-code {folder} holds no Python module (a name.py file or "
                         "a package folder): pass the folder your model's modules are in")


def files_of(folder: Path) -> list[Path]:
    """The folder's files that go into the image, in a stable order: caches and every path
    with a part that starts with "." left out (a `.env` of secrets, `.git`: image layers
    keep what they are given, and import never reads them)."""
    return sorted(path for path in folder.rglob("*") if path.is_file()
                  and not _SKIPPED & set(parts := path.relative_to(folder).parts)
                  and not any(part.startswith(".") for part in parts))


def code_digest(folder: Path) -> str:
    """The folder's content, as the image tag names it: its paths and bytes."""
    digest = hashlib.sha256()
    for path in files_of(folder):
        digest.update(f"{path.relative_to(folder).as_posix()}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def activate(folder: Path) -> None:
    """Put the folder on this process's import path and on its children's (the reference
    and the in-process predict run in fresh processes)."""
    resolved = str(folder.resolve())
    if resolved not in sys.path:
        sys.path.insert(0, resolved)
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if resolved not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([resolved, *paths])
