"""Summaries of raw samples: median with min and max per (strategy, builder, condition,
metric). Never a lone mean; the raw samples stay in samples.csv."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from bench import units
from bench.metrics import METRICS, Sample


@dataclass(frozen=True)
class Summary:
    strategy: str
    builder: str
    condition: str
    metric: str
    n: int
    median: float
    minimum: float
    maximum: float


def summarize(samples: Iterable[Sample]) -> list[Summary]:
    groups: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    order: list[tuple[str, str, str, str]] = []
    for s in samples:
        key = (s.strategy, s.builder, s.condition, s.metric)
        if key not in groups:
            order.append(key)
        groups[key].append(s.value)
    return [Summary(*key, len(groups[key]), statistics.median(groups[key]), min(groups[key]),
                    max(groups[key])) for key in order]


def format_value(metric: str, value: float) -> str:
    return units.format_quantity(METRICS[metric].unit, value)
