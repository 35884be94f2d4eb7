"""The Python 3.11 base image: python:3.11-slim when the engine has it or can pull it,
otherwise one made offline with debootstrap + docker import. Which one is recorded."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.engine import CACHE_LABEL, Engine
from bench.errors import BenchError
from bench.host.made_once import made_once
from bench.host.paths import cache_dir
from bench.progress import Progress

OFFICIAL_BASE = "python:3.11-slim"
# The tag names what is in it: a base made before libgomp1 was added is not taken for one
# made after.
LOCAL_BASE = "mlbench-base:py311-bookworm-gomp"
DEBOOTSTRAP_SUITE = "bookworm"
# Debian packages in the offline base. libgomp1: the OpenMP runtime LightGBM's wheel links
# from the system (scikit-learn and XGBoost carry their own); without it a model's own
# environment with LightGBM stops at import (libgomp.so.1: cannot open shared object file).
# python:3.11-slim lacks it too.
DEBOOTSTRAP_PACKAGES = ("python3", "python3-venv", "ca-certificates", "libgomp1")


@dataclass(frozen=True)
class BaseImage:
    ref: str
    image_id: str
    origin: str  # "official" (python:3.11-slim) or "debootstrap" (made offline here)


def ensure_base_image(engine: Engine, progress: Progress, rebuild: bool = False) -> BaseImage:
    """The base image: the engine's, or made once (bench.host.made_once: a second run that
    asks meanwhile waits for it instead of making another)."""
    with made_once("base-image", cache_dir()):
        return _find_or_make(engine, progress, rebuild)


def _find_or_make(engine: Engine, progress: Progress, rebuild: bool) -> BaseImage:
    if not rebuild:
        for ref, origin in ((OFFICIAL_BASE, "official"), (LOCAL_BASE, "debootstrap")):
            attrs = engine.image_inspect(ref)
            if attrs is not None:
                return BaseImage(ref, str(attrs["Id"]), origin)
        with progress.step(f"pulling {OFFICIAL_BASE}"):
            pulled = engine.try_pull(OFFICIAL_BASE)
        if pulled:
            attrs = engine.image_inspect(OFFICIAL_BASE)
            assert attrs is not None
            return BaseImage(OFFICIAL_BASE, str(attrs["Id"]), "official")
        progress.warn(f"{OFFICIAL_BASE} cannot be pulled here; building {LOCAL_BASE} offline "
                      "with debootstrap (Python 3.11 from Debian bookworm), about a minute")
    return _debootstrap_base(engine, progress)


def _debootstrap_base(engine: Engine, progress: Progress) -> BaseImage:
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None and os.geteuid() == 0 and shutil.which("apt-get"):
        with progress.step("installing debootstrap (apt-get) to make the base image offline"):
            subprocess.run(["apt-get", "install", "-y", "-qq", "debootstrap"],
                           capture_output=True, check=False)
        debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise BenchError("no base image and no debootstrap to make one: "
                         "`apt-get install -y debootstrap` (as root), or load python:3.11-slim")
    with tempfile.TemporaryDirectory(prefix="mlbench-rootfs-") as scratch:
        rootfs = Path(scratch) / "rootfs"
        with progress.step(f"debootstrap {DEBOOTSTRAP_SUITE} with python3"):
            result = subprocess.run(
                [debootstrap, "--variant=minbase", f"--include={','.join(DEBOOTSTRAP_PACKAGES)}",
                 DEBOOTSTRAP_SUITE, str(rootfs)],
                capture_output=True, text=True,
            )
            if result.returncode != 0:
                last = (result.stderr.strip().splitlines() or ["no output"])[-1]
                raise BenchError(f"debootstrap failed (it needs root and Debian's mirror): {last}")
        tarball = Path(scratch) / "rootfs.tar"
        with progress.step(f"importing {LOCAL_BASE}"):
            subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], check=True)
            shutil.rmtree(rootfs, ignore_errors=True)
            image_id = engine.import_rootfs(
                tarball, LOCAL_BASE,
                changes=[f"LABEL {CACHE_LABEL}=base", 'CMD ["python3"]',
                         "ENV LANG=C.UTF-8"],
            )
    return BaseImage(LOCAL_BASE, image_id, "debootstrap")
