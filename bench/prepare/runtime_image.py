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
from bench.host.fsutil import link_or_copy, write_atomic
from bench.host.paths import REQUIREMENTS_FILE, RUNTIME_DOCKERFILE
from bench.prepare.base_image import BaseImage
from bench.progress import Progress


@dataclass(frozen=True)
class RuntimeImage:
    ref: str
    image_id: str
    image_bytes: int
    build_s: float
    cached: bool  # True: built by an earlier run; build_s is from that build


def runtime_tag(base: BaseImage) -> str:
    digest = hashlib.sha256()
    for part in (base.image_id.encode(), REQUIREMENTS_FILE.read_bytes(),
                 RUNTIME_DOCKERFILE.read_bytes()):
        digest.update(part)
    return f"mlbench-runtime:{digest.hexdigest()[:12]}"


def ensure_runtime_image(
    engine: Engine, base: BaseImage, wheels: Path, cache: Path, progress: Progress,
    rebuild: bool = False,
) -> RuntimeImage:
    tag = runtime_tag(base)
    # The build time is kept beside the cache, not in a label: a label would need a rebuild.
    record = cache / "runtime-builds" / f"{tag.split(':')[1]}.json"
    attrs = engine.image_inspect(tag)
    if attrs is not None and not rebuild:
        build_s = json.loads(record.read_text())["build_s"] if record.exists() else math.nan
        return RuntimeImage(tag, str(attrs["Id"]), int(attrs["Size"]), build_s, cached=True)
    with tempfile.TemporaryDirectory(prefix="mlbench-runtime-") as scratch:
        context = Path(scratch)
        shutil.copyfile(RUNTIME_DOCKERFILE, context / "Dockerfile")
        shutil.copyfile(REQUIREMENTS_FILE, context / "requirements.txt")
        for wheel in wheels.glob("*.whl"):
            link_or_copy(wheel, context / "wheels" / wheel.name)
        with progress.step(f"building runtime image {tag} (base {base.ref} + dependencies)"):
            first = engine.build(context, "Dockerfile", tag, {CACHE_LABEL: "runtime"},
                                 builder="legacy", no_cache=rebuild,
                                 build_args={"BASE_IMAGE": base.ref},
                                 on_line=progress.update)
    write_atomic(record, json.dumps({"tag": tag, "build_s": first.seconds}))
    return RuntimeImage(tag, first.image_id, engine.image_bytes(tag), first.seconds, cached=False)
