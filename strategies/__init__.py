"""Loading strategies, one module each, found by the STRATEGIES each declares. The runner only
sees the Strategy interface."""

from __future__ import annotations

import importlib
import os
import pkgutil

from bench.errors import UsageError
from strategies.base import Factory, Strategy, StrategyOptions


def _discovered() -> tuple[dict[str, Factory], set[str]]:
    """Every module of this package that declares STRATEGIES, sorted by its ORDER: a new
    strategy is one module, and nothing else names it. A module's NAMED_ONLY are the names
    that run only when --strategies names them (not in the default run)."""
    modules = [importlib.import_module(f"{__name__}.{info.name}")
               for info in pkgutil.iter_modules(__path__)]
    found: dict[str, Factory] = {}
    named_only: set[str] = set()
    for module in sorted((m for m in modules if hasattr(m, "STRATEGIES")),
                         key=lambda m: (getattr(m, "ORDER", 1000), m.__name__)):
        found.update(module.STRATEGIES)
        named_only |= set(getattr(module, "NAMED_ONLY", ()))
    return found, named_only


REGISTRY, NAMED_ONLY = _discovered()
DEFAULT_STRATEGIES = tuple(name for name in REGISTRY if name not in NAMED_ONLY)
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
