"""The shared runtime image (base + service dependencies) that every strategy builds FROM.

Built once and cached by content (base image id, requirements, Dockerfile), so its cost is
paid once and reported separately from the strategies' own build times.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.engine import CACHE_LABEL, Engine
from bench.errors import StepFailed
from bench.host.fsutil import link_or_copy, write_atomic
from bench.host.made_once import made_once
from bench.host.paths import DOCKER_DIR, REQUIREMENTS_FILE, RUNTIME_DOCKERFILE
from bench.model.model_code import IN_IMAGE, code_digest, files_of
from bench.prepare.base_image import BaseImage
from bench.prepare.wheelhouse import ensure_wheelhouse
from bench.progress import Progress


@dataclass(frozen=True)
class RuntimeImage:
    ref: str
    image_id: str
    image_bytes: int
    build_s: float
    cached: bool  # True: built by an earlier run; build_s is from that build


def runtime_tag(base: BaseImage, requirements: Path = REQUIREMENTS_FILE) -> str:
    """Names the base, the environment's pins and the Dockerfile: an image a model's own
    environment (bench.model.serving_env) gets is cached by its pins."""
    digest = hashlib.sha256()
    for part in (base.image_id.encode(), requirements.read_bytes(),
                 RUNTIME_DOCKERFILE.read_bytes()):
        digest.update(part)
    return f"mlbench-runtime:{digest.hexdigest()[:12]}"


def ensure_runtime_image(
    engine: Engine, base: BaseImage, cache: Path, progress: Progress, rebuild: bool = False,
    requirements: Path = REQUIREMENTS_FILE,
) -> RuntimeImage:
    """The runtime image for this base and these requirements: the cached one, or built from
    the host-side wheelhouse, downloaded only then (86 MB and 12 s of pip in a fresh clone
    whose engine already holds the image). Made once: a second run that asks meanwhile
    waits for it (bench.host.made_once)."""
    with made_once("runtime-image", cache):
        return _find_or_build(engine, base, cache, progress, rebuild, requirements)


def _find_or_build(engine: Engine, base: BaseImage, cache: Path, progress: Progress,
                   rebuild: bool, requirements: Path) -> RuntimeImage:
    tag = runtime_tag(base, requirements)
    # The build time is kept beside the cache, not in a label: a label would need a rebuild.
    record = cache / "runtime-builds" / f"{tag.split(':')[1]}.json"
    attrs = engine.image_inspect(tag)
    if attrs is not None and not rebuild:
        build_s = json.loads(record.read_text())["build_s"] if record.exists() else math.nan
        return RuntimeImage(tag, str(attrs["Id"]), int(attrs["Size"]), build_s, cached=True)
    wheels = ensure_wheelhouse(cache, requirements, progress)
    with tempfile.TemporaryDirectory(prefix="mlbench-runtime-") as scratch:
        context = Path(scratch)
        shutil.copyfile(RUNTIME_DOCKERFILE, context / "Dockerfile")
        shutil.copyfile(requirements, context / "requirements.txt")
        for wheel in wheels.glob("*.whl"):
            link_or_copy(wheel, context / "wheels" / wheel.name)
        with progress.step(f"building runtime image {tag} (base {base.ref} + dependencies)"):
            first = engine.build(context, "Dockerfile", tag, {CACHE_LABEL: "runtime"},
                                 builder="legacy", no_cache=rebuild,
                                 build_args={"BASE_IMAGE": base.ref},
                                 on_line=progress.update)
    write_atomic(record, json.dumps({"tag": tag, "build_s": first.seconds}))
    return RuntimeImage(tag, first.image_id, engine.image_bytes(tag), first.seconds, cached=False)


MODEL_CODE_DOCKERFILE = DOCKER_DIR / "Dockerfile.modelcode"


def with_model_code(engine: Engine, runtime: RuntimeImage, folder: Path,
                    progress: Progress) -> RuntimeImage:
    """The runtime with the user's --model-code folder at IN_IMAGE, on PYTHONPATH: every
    strategy's image builds FROM it, so each holds the code as it holds the service's own
    libraries (a fresh node pulls it with them). Cached by the runtime and the code."""
    digest = hashlib.sha256(f"{runtime.ref}\n".encode())
    digest.update(MODEL_CODE_DOCKERFILE.read_bytes())
    digest.update(code_digest(folder).encode())
    tag = f"{runtime.ref}-code{digest.hexdigest()[:12]}"
    attrs = engine.image_inspect(tag)
    if attrs is None:
        with tempfile.TemporaryDirectory(prefix="mlbench-modelcode-") as scratch:
            context = Path(scratch)
            shutil.copyfile(MODEL_CODE_DOCKERFILE, context / "Dockerfile")
            for path in files_of(folder):
                target = context / "model_code" / path.relative_to(folder)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
            (context / "model_code").mkdir(exist_ok=True)
            with progress.step(f"adding --model-code {folder} to the runtime ({IN_IMAGE})"):
                engine.build(context, "Dockerfile", tag, {CACHE_LABEL: "runtime"},
                             builder="legacy", no_cache=False,
                             build_args={"RUNTIME_IMAGE": runtime.ref})
        attrs = engine.image_inspect(tag)
        if attrs is None:
            raise StepFailed(f"the runtime with --model-code ({tag}) is not in the engine "
                             "after its build")
    return RuntimeImage(tag, str(attrs["Id"]), int(attrs["Size"]), runtime.build_s,
                        runtime.cached)
