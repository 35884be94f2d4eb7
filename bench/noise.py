"""When do two measured values differ by more than noise? One rule for the report's winners,
the seed-claim verdicts and `compare`.

Sizes and counts are deterministic: the same build gives the same bytes, so a single value
is exact. Timings are not: on a shared 2-core machine two normal runs differed by up to 1.49x
on single start-up medians. So a timing is known only as the min-max range of its repeated
trials; a single timing is taken as anything within a factor of SINGLE_TIMING_FACTOR of it,
which lets only effects of several-fold decide anything. Memory varies less (allocator and
page-cache timing): a single reading counts as anything within SINGLE_MEMORY_FACTOR.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from bench.metrics import METRICS

SINGLE_TIMING_FACTOR = 2.0
SINGLE_MEMORY_FACTOR = 1.1
EXACT_KINDS = frozenset({"size", "count", "rollout"})
# Sizes within this relative distance are the same (identical images differ by a few bytes).
SIZE_TIE_FRACTION = 0.01


def is_exact(metric: str) -> bool:
    return METRICS[metric].kind in EXACT_KINDS


def single_value_factor(metric: str) -> float:
    """How far one reading of the metric may be from its true value (1: exact)."""
    if is_exact(metric):
        return 1.0
    return SINGLE_MEMORY_FACTOR if METRICS[metric].kind == "memory" else SINGLE_TIMING_FACTOR


def plausible_range(metric: str, values: Sequence[float]) -> tuple[float, float]:
    """The range a metric's true value lies in, as far as these trials can tell."""
    if not values:
        raise ValueError(f"no values of {metric}")
    if len(values) >= 2 or is_exact(metric):
        return min(values), max(values)
    value, factor = values[0], single_value_factor(metric)
    low, high = value / factor, value * factor
    return (low, high) if value >= 0 else (high, low)


def separated(metric: str, a: Sequence[float], b: Sequence[float]) -> bool:
    """True when a and b differ beyond noise: measured values whose plausible ranges do not
    overlap, exact sizes whose medians differ by more than SIZE_TIE_FRACTION."""
    if is_exact(metric):
        median_a, median_b = statistics.median(a), statistics.median(b)
        scale = max(abs(median_a), abs(median_b))
        return abs(median_a - median_b) > SIZE_TIE_FRACTION * scale
    low_a, high_a = plausible_range(metric, a)
    low_b, high_b = plausible_range(metric, b)
    return high_a < low_b or high_b < low_a
