"""Adopt the winner: a strategy's setup written into a user's project folder, and the
docker-compose file with one service per strategy (compose profiles), both made from the
strategies' own data (Dockerfile, .dockerignore, how the model reaches the container), so
what a user copies is what the benchmark measured.

    python -m bench export volume ~/my-service --model modelo_fifa.joblib
    cd ~/my-service && docker build -f Dockerfile.runtime -t model-runtime . \\
        && docker-compose --profile volume up -d
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from bench.engine import HARDENING, SERVICE_UID
from bench.errors import UsageError
from bench.host.fsutil import write_atomic
from bench.host.paths import DOCKER_DIR, REQUIREMENTS_FILE, SERVICE_DIR
from bench.service_env import SERVER_COMMAND
from strategies import REGISTRY
from strategies.base import (
    MODEL_DIR_IN_CONTAINER,
    MODEL_DIR_IN_REPO,
    Strategy,
    StrategyOptions,
)

RUNTIME_IMAGE_DEFAULT = "model-runtime"
# The benchmark's containers' hardening (bench/engine/types.py), as compose spells it.
COMPOSE_HARDENING: dict[str, Any] = {
    "read_only": HARDENING.read_only,
    "tmpfs": [f"{HARDENING.tmpfs}:{HARDENING.tmpfs_options}"],
    "cap_drop": list(HARDENING.cap_drop), "security_opt": list(HARDENING.security_opt),
    "user": str(SERVICE_UID)}

RUNTIME_DOCKERFILE = f"""\
# The runtime every strategy image builds FROM: Python and the service's dependencies.
#   docker build -f Dockerfile.runtime -t model-runtime .
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt \\
 && useradd --uid {SERVICE_UID} --no-create-home --home-dir /app --shell /usr/sbin/nologin app \\
 && mkdir -p /app/datos/modelos
WORKDIR /app
USER {SERVICE_UID}
EXPOSE 8000
CMD {json.dumps(list(SERVER_COMMAND))}
"""


def exportable() -> dict[str, Strategy]:
    """Name -> strategy, for the strategies a project can run without the harness (their
    `exportable` data: the model reaches the service from the image or a read-only mount;
    the registry, sharded and mmap strategies need files the harness makes)."""
    options = StrategyOptions()
    return {s.name: s for factory in REGISTRY.values() for s in factory(options)
            if s.exportable}


def model_file(strategy: Strategy) -> str:
    """The model's file name in the project (datos/modelos/...)."""
    return strategy.model_file_name()


def service(strategy: Strategy, context: str, dockerfile: str) -> dict[str, Any]:
    """The compose service of a strategy, hardened like the benchmark's containers."""
    name = model_file(strategy)
    container_path = f"{MODEL_DIR_IN_CONTAINER}/{name}"
    entry: dict[str, Any] = {
        "profiles": [strategy.name],
        "build": {"context": context, "dockerfile": dockerfile,
                  "args": {"RUNTIME_IMAGE": f"${{RUNTIME_IMAGE:-{RUNTIME_IMAGE_DEFAULT}}}"}},
        "image": f"model-service-{strategy.name}",
        "ports": ["127.0.0.1:${PORT:-8000}:8000"],
        # What the run gives the service, from the same method (strategies/base.py).
        "environment": strategy.local_env(container_path),
        **copy.deepcopy(COMPOSE_HARDENING),  # no YAML anchors shared between services
    }
    if not strategy.model_in_image:
        entry["volumes"] = [f"./{MODEL_DIR_IN_REPO}/{name}:{container_path}:ro"]
    return entry


def compose_document(strategies: Sequence[Strategy], context: str,
                     dockerfile_of: dict[str, str]) -> str:
    services = {s.name: service(s, context, dockerfile_of[s.name]) for s in strategies}
    header = ("# One service per loading strategy; start one with its profile:\n"
              "#   docker-compose --profile volume up -d volume\n"
              "# Written by `python -m bench.export` from the strategies' data; do not "
              "edit by hand.\n")
    body: str = yaml.safe_dump({"services": services}, sort_keys=False)
    return header + body


def repository_compose() -> str:
    """docker/compose.yaml of this repository: the context is the repository's root."""
    strategies = list(exportable().values())
    return compose_document(strategies, "..", {s.name: f"docker/{s.dockerfile}"
                                               for s in strategies})


def export(name: str, folder: Path, model: Path | None) -> list[Path]:
    """Write the strategy's files into `folder`; returns what was written."""
    strategies = exportable()
    if name not in strategies:
        raise UsageError(f"cannot export {name!r}: choose from {', '.join(strategies)} (the "
                         "registry, sharded and mmap strategies need files the harness makes)")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} is a file: pass a folder (it is created if missing)")
    if model is not None and not model.is_file():
        raise UsageError(f"--model {model} is not a file: pass your .joblib model")
    strategy = strategies[name]
    # The strategy's own Dockerfile, with the runtime image defaulting to the one
    # Dockerfile.runtime builds, so a plain `docker build .` works too.
    dockerfile = (DOCKER_DIR / strategy.dockerfile).read_text().replace(
        "ARG RUNTIME_IMAGE\n", f"ARG RUNTIME_IMAGE={RUNTIME_IMAGE_DEFAULT}\n")
    written: dict[str, str | Path] = {
        "Dockerfile": dockerfile,
        "Dockerfile.runtime": RUNTIME_DOCKERFILE,
        "requirements.txt": REQUIREMENTS_FILE,
        "compose.yaml": compose_document([strategy], ".", {name: "Dockerfile"}),
        "README.md": _readme(strategy),
    }
    if strategy.dockerignore is not None:
        written[".dockerignore"] = DOCKER_DIR / strategy.dockerignore
    for source in sorted(SERVICE_DIR.glob("*.py")):
        written[f"backend/{source.name}"] = source
    if model is not None:
        written[f"{MODEL_DIR_IN_REPO}/{model_file(strategy)}"] = _model_for(strategy, model,
                                                                            folder)
        written["requirements.txt"] = _requirements_for(model)
    paths = []
    for relative, content in written.items():
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            if content != target:
                shutil.copyfile(content, target)
        else:
            write_atomic(target, content)
        paths.append(target)
    return paths


def _model_for(strategy: Strategy, model: Path, folder: Path) -> Path:
    """The model as the strategy's container reads it (compressed where it is)."""
    scratch = folder / ".export-cache"
    made = strategy.exported_model(model, scratch)
    if made == model:
        return model
    target = folder / MODEL_DIR_IN_REPO / model_file(strategy)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(made, target)
    shutil.rmtree(scratch, ignore_errors=True)
    return target


def _requirements_for(model: Path) -> str | Path:
    """The runtime's requirements, or the model's own environment (bench.model.serving_env)
    with the versions pip chose for it pinned."""
    from bench.host.paths import cache_dir
    from bench.model.hashing import cached_sha256
    from bench.model.pickle_needs import model_environment
    from bench.model.serving_env import served_versions, serving_environment
    from bench.prepare.wheelhouse import ensure_wheelhouse
    from bench.progress import Progress

    cache = cache_dir()
    try:
        environment = model_environment(model, cached_sha256(model, cache), cache)
    except ValueError as error:
        raise UsageError(f"{error}; save the model with joblib.dump") from None
    serving = serving_environment(environment, {})
    if not serving.own:
        return REQUIREMENTS_FILE
    wheels = ensure_wheelhouse(cache, serving.requirements_file(cache), Progress(quiet=True))
    return serving.locked(served_versions(wheels))


def _readme(strategy: Strategy) -> str:
    name = model_file(strategy)
    how = ("copied into the image at build time" if strategy.model_in_image else
           f"mounted read-only from ./{MODEL_DIR_IN_REPO}/{name} at start")
    in_image = " and the model" if strategy.model_in_image else ""
    ignore = ("| `.dockerignore` | keeps the model (and notebooks, data) out of the build "
              "context |\n" if strategy.dockerignore else "")
    summary = strategy.summary[:1].upper() + strategy.summary[1:]
    return f"""# Prediction service: the `{strategy.name}` strategy

{summary}. The model is {how}; the service loads it
{"on the first request" if strategy.loading == "lazy" else "in the background at start"}.
Written by `python -m bench export {strategy.name}` from the setup the benchmark measured.

| file | what it does |
|---|---|
| `Dockerfile.runtime` | Python and the service's dependencies: the base every build reuses |
| `Dockerfile` | the service image: `FROM` the runtime, then the code{in_image} |
{ignore}| `compose.yaml` | the service, hardened (read-only root, no capabilities, non-root) |
| `backend/` | the prediction service (FastAPI): `/predict`, `/ready`, `/health`, `/metadata` |
| `{MODEL_DIR_IN_REPO}/{name}` | your model (pass `--model` to export, or put it there) |

    docker build -f Dockerfile.runtime -t {RUNTIME_IMAGE_DEFAULT} .
    docker-compose --profile {strategy.name} up -d --build
    curl -s localhost:8000/ready
    curl -s -X POST localhost:8000/predict -H 'content-type: application/json' \\
         -d '{{"rows": [[...one value per feature...]]}}'

`/predict` also takes `{{"records": [{{"feature": value, ...}}]}}` for a model fitted on a
DataFrame (its feature names are in `/metadata`).
"""


if __name__ == "__main__":  # python -m bench.export: write docker/compose.yaml again
    write_atomic(DOCKER_DIR / "compose.yaml", repository_compose())
    print(DOCKER_DIR / "compose.yaml")
