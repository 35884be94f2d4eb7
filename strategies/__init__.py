"""Loading strategies, registered explicitly. The runner only sees the Strategy interface."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

from bench.errors import UsageError
from bench.model.compression import parse_codec
from strategies.baked import Baked
from strategies.base import Strategy, StrategyOptions
from strategies.compressed import Compressed
from strategies.dockerignore import CopyAll, CopyAllIgnored, DockerIgnore
from strategies.mmap import Mmap, MmapRegistry
from strategies.modelcar import Modelcar
from strategies.registry import Registry
from strategies.sharded import Sharded, ShardedRegistry
from strategies.volume import Volume, VolumeAA

# name on the command line -> factory of one or more strategy instances
Factory = Callable[[StrategyOptions], list[Strategy]]
REGISTRY: dict[str, Factory] = {
    "baked": lambda _: [Baked()],
    "volume": lambda _: [Volume()],
    "volume-aa": lambda _: [VolumeAA()],
    "dockerignore": lambda _: [DockerIgnore(), CopyAll(), CopyAllIgnored()],
    "compressed": lambda options: [Compressed(parse_codec(c)) for c in options.codecs],
    "registry": lambda options: [Registry(d) for d in options.downloaders],
    "sharded": lambda options: [Sharded(k) for k in options.shards],
    "sharded-registry": lambda _: [ShardedRegistry()],
    "mmap": lambda _: [Mmap()],
    "mmap-registry": lambda _: [MmapRegistry()],
    "modelcar": lambda _: [Modelcar()],
}
DEFAULT_STRATEGIES = tuple(REGISTRY)
# Extra strategies from other modules (your own, or the tests'): "pkg.module,other.module",
# each module exposing STRATEGIES: dict[str, Factory].
PLUGINS_ENV = "MLBENCH_EXTRA_STRATEGIES"


def _load_plugins() -> None:
    for module_name in filter(None, os.environ.get(PLUGINS_ENV, "").split(",")):
        module = importlib.import_module(module_name.strip())
        REGISTRY.update(module.STRATEGIES)


def check_names(names: list[str]) -> None:
    """Unknown names are a usage error (checked when the run's config is made)."""
    _load_plugins()
    unknown = [name for name in names if name not in REGISTRY]
    if unknown:
        raise UsageError(f"unknown strategy {', '.join(unknown)}: choose from "
                         f"{', '.join(REGISTRY)} (comma-separated)")


def resolve(names: list[str], options: StrategyOptions) -> list[Strategy]:
    check_names(names)
    return [strategy for name in names for strategy in REGISTRY[name](options)]


def start_keys() -> dict[str, str]:
    """Strategy name -> its start_key, for the registered strategies that share a start: how
    the report reads the identical-work group of a run stored before schema 4."""
    defaults = StrategyOptions()
    return {strategy.name: strategy.start_key for factory in REGISTRY.values()
            for strategy in factory(defaults) if strategy.start_key}


def new_instance(strategy: Strategy, options: StrategyOptions) -> Strategy:
    """Another instance of the same strategy, with state of its own (a rollout prepares a
    second model version with it while the first one's servers still serve)."""
    for factory in REGISTRY.values():
        for candidate in factory(options):
            if candidate.name == strategy.name:
                return candidate
    raise KeyError(f"strategy {strategy.name} is not registered")
