"""Loading strategies, registered explicitly. The runner only sees the Strategy interface."""

from __future__ import annotations

from collections.abc import Callable

from bench.errors import UsageError
from strategies.baked import Baked
from strategies.base import Strategy, StrategyOptions
from strategies.volume import Volume

# name on the command line -> factory of one or more strategy instances
Factory = Callable[[StrategyOptions], list[Strategy]]
REGISTRY: dict[str, Factory] = {
    "baked": lambda _: [Baked()],
    "volume": lambda _: [Volume()],
}
DEFAULT_STRATEGIES = tuple(REGISTRY)


def resolve(names: list[str], options: StrategyOptions) -> list[Strategy]:
    unknown = [name for name in names if name not in REGISTRY]
    if unknown:
        raise UsageError(f"unknown strategy {', '.join(unknown)}: choose from "
                         f"{', '.join(REGISTRY)} (comma-separated)")
    return [strategy for name in names for strategy in REGISTRY[name](options)]
