"""How much free disk a planned run needs, estimated before anything is built.

A 5.45 GB model can need 20+ GB: an image per builder that carries the model (plus BuildKit's
copy of the context), compressed copies, shards, the S3 server's data and a cache volume, and
the model itself. The estimate is deliberately generous (a refused run costs a flag; a disk
filled halfway through a run costs the engine)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.errors import UsageError
from bench.results.units import format_bytes
from strategies.base import Strategy

RUNTIME_IMAGE_BYTES = 1_000_000_000  # base + dependencies, when they are not built yet
MARGIN = 1.10
SLACK_BYTES = 1_000_000_000


@dataclass(frozen=True)
class DiskPlan:
    engine_bytes: int  # under the engine's data root: images, build cache, volumes
    host_bytes: int  # under the harness cache and models folders: model, copies, shards

    @property
    def total(self) -> int:
        return self.engine_bytes + self.host_bytes


def estimate(strategies: list[Strategy], model_bytes: int, builders: tuple[str, ...],
             model_exists: bool, runtime_exists: bool, *, node_servers: bool = False,
             rollout: bool = False) -> DiskPlan:
    """`node_servers`: the OCI registry and the model store of --fresh-node/--rollout hold
    one more copy of what a node fetches; `rollout`: the next version doubles it all."""
    engine = 0 if runtime_exists else RUNTIME_IMAGE_BYTES
    host = 0 if model_exists else model_bytes
    for strategy in strategies:
        if strategy.image_carries_model:
            # One image per builder; BuildKit also keeps the context it received.
            engine += model_bytes * len(builders) + (model_bytes if "buildkit" in builders else 0)
        host += int(model_bytes * strategy.disk_model_copies)
        if node_servers:
            engine += model_bytes  # in the registry's or the store's volume
    if rollout:  # the next model version and everything made from it
        engine, host = engine * 2, host * 2 + model_bytes
    return DiskPlan(int(engine * MARGIN), int(host * MARGIN))


def _existing(path: Path) -> Path:
    """The nearest existing folder: the cache or results folder may not exist yet."""
    while not path.exists():
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(_existing(path)).free


def check(plan: DiskPlan, engine_root: Path, host_root: Path) -> None:
    """Refuse, with the numbers, a run that would not fit (root and cache may share a disk)."""
    same_disk = _device(engine_root) == _device(host_root)
    checks = ([(engine_root, plan.total)] if same_disk
              else [(engine_root, plan.engine_bytes), (host_root, plan.host_bytes)])
    for root, needed in checks:
        free = free_bytes(root)
        if needed + SLACK_BYTES > free:
            raise UsageError(
                f"not enough free disk: this run needs about {format_bytes(needed)} (+1 GB "
                f"slack) on {root}, {format_bytes(free)} is free; free space, use a smaller "
                "--model-size or fewer --strategies, or pass --skip-disk-check")


def _device(path: Path) -> int:
    return _existing(path).stat().st_dev
