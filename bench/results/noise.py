"""When do two measured values differ by more than noise? One rule for the report's winners,
the seed-claim verdicts and (unpaired, across runs) `compare`.

Sizes and counts are deterministic: the same build gives the same bytes, so a single value
is exact and two medians differ when they are more than SIZE_TIE_FRACTION apart.

Timings and memory are not. The old rule ("the min-max ranges of the trials do not
overlap") failed its own A/A test: in every committed run with 2 or more trials identical
work had non-overlapping ranges, because min-max over consecutive trials measures
repeatability inside one block of minutes, not the run's noise. The rule now pairs the two
strategies round by round (trial r of each ran in round r, minutes apart at most in an
interleaved run) and says they differ only when

- the median of the per-round ratios B/A is beyond max(MIN_EFFECT, the run's A/A floor),
  the floor being how far identical work was apart in the same run (bench.report.aa), and
- in at least ceil(2n/3) of the n paired rounds the ratio is beyond that round's own floor
  (how far identical work was apart in that round, where the run measured it; else the
  run's), on the median's side: a single outlying round neither makes nor hides a
  difference, and a round in which the machine shook identical work 1.5x apart cannot count
  a 1.3x ratio as evidence.

With fewer than MIN_PAIRED_ROUNDS paired rounds only several-fold effects decide: the ratio
of the medians must pass SINGLE_TIMING_FACTOR (SINGLE_MEMORY_FACTOR for memory).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.results.metrics import METRICS

SINGLE_TIMING_FACTOR = 2.0
SINGLE_MEMORY_FACTOR = 1.1
EXACT_KINDS = frozenset({"size", "count", "rollout"})
# Sizes within this relative distance are the same (identical images differ by a few bytes).
SIZE_TIE_FRACTION = 0.01
MIN_PAIRED_ROUNDS = 3
# The smallest effect worth a verdict, whatever the A/A floor: 10% for a timing, 5% for
# memory (15 identical starts were within 0.8 MB of each other's peak RSS).
MIN_EFFECT_TIMING = 1.10
MIN_EFFECT_MEMORY = 1.05

Rounds = Mapping[int, float]  # round -> the value measured in it


def is_exact(metric: str) -> bool:
    return METRICS[metric].kind in EXACT_KINDS


def single_value_factor(metric: str) -> float:
    """How far one reading of the metric may be from its true value (1: exact)."""
    if is_exact(metric):
        return 1.0
    return SINGLE_MEMORY_FACTOR if METRICS[metric].kind == "memory" else SINGLE_TIMING_FACTOR


def min_effect(metric: str) -> float:
    return MIN_EFFECT_MEMORY if METRICS[metric].kind == "memory" else MIN_EFFECT_TIMING


def majority(rounds: int) -> int:
    """Rounds that must agree on the direction: ceil(2n/3)."""
    return math.ceil(2 * rounds / 3)


def symmetric(ratio: float) -> float:
    """A ratio as a factor >= 1, whichever side is larger."""
    if ratio <= 0 or not math.isfinite(ratio):
        return math.inf
    return ratio if ratio >= 1 else 1 / ratio


@dataclass(frozen=True)
class Judgement:
    differs: bool
    ratio: float  # B / A: the median per-round ratio (or the ratio of medians, unpaired)
    rounds: int  # paired rounds the ratio is taken over (0: unpaired or exact)
    agreeing: int  # rounds on the side of 1 the median ratio is on
    threshold: float  # the factor the ratio had to pass

    @property
    def b_better(self) -> bool:
        return self.differs and self.ratio < 1


def judge(metric: str, a: Rounds, b: Rounds, floor: float = 1.0,
          round_floors: Rounds | None = None) -> Judgement:
    """Does B differ from A beyond noise? `floor`: the run's A/A spread for the metric;
    `round_floors`: the same per round, where the run measured it."""
    median_a, median_b = statistics.median(a.values()), statistics.median(b.values())
    ratio_of_medians = median_b / median_a if median_a else (1.0 if median_b == 0 else math.inf)
    if is_exact(metric):
        scale = max(abs(median_a), abs(median_b))
        differs = abs(median_a - median_b) > SIZE_TIE_FRACTION * scale
        return Judgement(differs, ratio_of_medians, 0, 0, 1 + SIZE_TIE_FRACTION)
    threshold = max(min_effect(metric), floor)
    paired = {r: b[r] / a[r] for r in sorted(set(a) & set(b)) if a[r] > 0 and b[r] >= 0}
    ratios = list(paired.values())
    if len(ratios) < MIN_PAIRED_ROUNDS:
        threshold = max(threshold, single_value_factor(metric))
        differs = symmetric(ratio_of_medians) > threshold
        return Judgement(differs, ratio_of_medians, len(ratios), len(ratios), threshold)
    median = statistics.median(ratios)
    floors = round_floors or {}

    def beyond(round_: int, ratio: float) -> bool:
        needed = max(min_effect(metric), floors.get(round_, floor))
        return ratio > needed if median >= 1 else ratio < 1 / needed

    agreeing = sum(1 for r, ratio in paired.items() if beyond(r, ratio))
    differs = symmetric(median) > threshold and agreeing >= majority(len(ratios))
    return Judgement(differs, median, len(ratios), agreeing, threshold)


def differs_unpaired(metric: str, a: Sequence[float], b: Sequence[float], threshold: float
                     ) -> bool:
    """Two runs (no shared rounds): B differs from A when the ratio of medians passes the
    threshold and most of B's trials (ceil(2n/3)) lie beyond A's range on that side. With
    a single trial on either side, the ratio alone decides."""
    median_a, median_b = statistics.median(a), statistics.median(b)
    if median_a <= 0:
        return median_b != median_a
    ratio = median_b / median_a
    if symmetric(ratio) <= threshold:
        return False
    if len(a) < 2 or len(b) < 2:
        return True
    beyond = (sum(1 for v in b if v > max(a)) if ratio > 1
              else sum(1 for v in b if v < min(a)))
    return beyond >= majority(len(b))
