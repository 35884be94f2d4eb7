"""A build context shaped like the user's repository, because what is in the context is
what is being measured: service code under backend/, the model under datos/modelos/, raw data
under datos/originales/, a notebook, Dockerfiles under docker/, built from the root as in the
seed. Large files are hard-linked, not copied.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

from bench.host.fsutil import link_or_copy, partial_path, write_atomic
from bench.host.paths import DOCKER_DIR, REQUIREMENTS_FILE, SERVICE_DIR
from datos.synthetic_fifa import generate, write_raw_csv

SERVICE_FILE_TO_EDIT = "backend/app.py"
RAW_DATA_IN_REPO = "datos/originales/fifa_players.csv"


def raw_data_csv(cache: Path, seed: int = 0) -> Path:
    """The raw players table a team keeps in the repository (generated once, cached)."""
    path = cache / "data" / f"fifa_players_seed{seed}.csv"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = partial_path(path)
        try:
            write_raw_csv(generate(seed=seed), str(partial))
            partial.replace(path)
        finally:
            partial.unlink(missing_ok=True)
    return path


def materialize(
    destination: Path, dockerfile: str, dockerignore: str | None,
    repo_files: Mapping[str, Path], raw_csv: Path, labels: Mapping[str, str] | None = None,
) -> Path:
    """Lay out the repository in ``destination``; returns it.

    ``labels`` are stamped right after every FROM: the legacy builder keeps each finished
    step as an image (a GB model layer among them) and runs each step in a container; with
    the run's labels on them, an interrupted or failed build leaves nothing unlabelled.
    """
    if destination.exists():
        shutil.rmtree(destination)
    backend = destination / "backend"
    backend.mkdir(parents=True)
    for source in SERVICE_DIR.glob("*.py"):
        shutil.copyfile(source, backend / source.name)
    shutil.copyfile(REQUIREMENTS_FILE, destination / "requirements.txt")
    (destination / "docker").mkdir()
    write_atomic(destination / "docker" / "Dockerfile",
                 stamp_labels((DOCKER_DIR / dockerfile).read_text(), labels or {}))
    if dockerignore is not None:
        shutil.copyfile(DOCKER_DIR / dockerignore, destination / ".dockerignore")
    for repo_path, host_file in {**repo_files, RAW_DATA_IN_REPO: raw_csv}.items():
        link_or_copy(host_file, destination / repo_path)
    (destination / "datos" / "modelos" / ".gitkeep").touch()
    notebook = {"cells": [{"cell_type": "code", "source": ["import joblib"], "metadata": {},
                           "outputs": [], "execution_count": None}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    write_atomic(destination / "notebooks" / "exploracion.ipynb", json.dumps(notebook))
    write_atomic(destination / "README.md", "# FIFA scouting API\n")
    return destination


def stamp_labels(dockerfile: str, labels: Mapping[str, str]) -> str:
    if not labels:
        return dockerfile
    stamp = "LABEL " + " ".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    out = []
    for line in dockerfile.splitlines():
        out.append(line)
        if line.strip().upper().startswith("FROM "):
            out.append(stamp)
    return "\n".join(out) + "\n"


def touch_service_code(context: Path, revision: int) -> None:
    """The one-line code change a warm rebuild measures."""
    with (context / SERVICE_FILE_TO_EDIT).open("a", encoding="utf-8") as handle:
        handle.write(f"# rebuild marker {revision}\n")
