"""The seed document's claims, judged against a stored run with their uncertainty.

The claims live as data in ``seed_claims.toml``. Each claim is evaluated on per-round values
(paired by round, or by build repetition, where both sides have them: trial r of each side
ran in the same round of an interleaved run, never across blocks), with the noise rule of
bench.results.noise: with 3 or more pairs the verdict is "holds" when the median of the per-pair
values meets the seed's figure and ceil(2n/3) of the pairs do too, "does not hold" when the
median misses it and ceil(2n/3) pairs miss it on the same side, otherwise "inconclusive"; a
single outlying round decides nothing. With fewer pairs the interval is the min-max of the
pairs or, for a single timing, anything within bench.results.noise.SINGLE_TIMING_FACTOR of it, and
the verdict needs the whole interval on one side. A timing claim of a run whose identical
work was further apart than bench.report.aa.NOISY_SPREAD is inconclusive: the run is noisy.

When the run's model is more than 10% away from the seed's 5.45 GB, the model's share of each
quantity is measured directly (the model file's bytes in a context, the load phase's own
seconds, the build-time difference per extra context byte) and only that share is scaled to
the seed's size; such figures are labelled an extrapolation. Within 10% the measured values
are used as they are.
"""

from __future__ import annotations

import fnmatch
import statistics
import tomllib
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any

from bench.report import aa
from bench.report.view import RunView
from bench.results.metrics import METRICS
from bench.results.noise import MIN_PAIRED_ROUNDS, is_exact, majority, single_value_factor
from bench.results.summary import format_value

CLAIMS_FILE = Path(__file__).with_name("seed_claims.toml")
KINDS = ("value", "ratio", "reduction", "difference")
EXPECTS = ("at_least", "at_most", "within")
# Within this relative distance of the seed's size, the run IS the seed's case: no scaling.
SEED_SIZE_TOLERANCE = 0.10
VERDICTS = ("holds", "does_not_hold", "inconclusive")


@dataclass(frozen=True)
class Evaluation:
    builder: str
    measured: float  # median of the per-pair values, as measured
    value: float  # median of the per-pair values at the seed's size (== measured when unscaled)
    low: float  # the interval the verdict is taken from (at the seed's size)
    high: float
    pairs: int
    verdict: str  # holds | does_not_hold | inconclusive
    detail: str  # the measured quantities, humanised
    reason: str = ""  # why a verdict is inconclusive beyond the interval itself
    per_round: tuple[tuple[int, float], ...] = ()  # round -> derived value, paired rounds


@dataclass(frozen=True)
class ClaimResult:
    claim: dict[str, Any]
    evaluations: list[Evaluation]  # empty: not measured in this run

    @property
    def verdict(self) -> str:
        if not self.evaluations:
            return "not_measured"
        verdicts = {e.verdict for e in self.evaluations}
        if len(verdicts) == 1:
            return verdicts.pop()
        if verdicts == {"inconclusive"} or verdicts <= {"inconclusive"}:
            return "inconclusive"
        return "depends_on_builder"


def load_claims(path: Path = CLAIMS_FILE) -> tuple[int, list[dict[str, Any]]]:
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    claims = document.get("claim", [])
    for claim in claims:
        if claim.get("kind") not in KINDS or claim.get("expect") not in EXPECTS:
            raise ValueError(f"claim {claim.get('id')!r} in {path}: kind must be one of {KINDS} "
                             f"and expect one of {EXPECTS}")
    return int(document["seed_model_bytes"]), claims


Values = dict[int, float]  # trial (or build repetition) -> value


def scale_factor(model_bytes: float, seed_model_bytes: int) -> float:
    """1 when the run's model is the seed's (within 10%); else seed / model."""
    if model_bytes <= 0:
        return 1.0
    if abs(model_bytes / seed_model_bytes - 1) <= SEED_SIZE_TOLERANCE:
        return 1.0
    return seed_model_bytes / model_bytes


def condition_matches(wanted: str | None, condition: str) -> bool:
    """A claim's condition names parts ("cold cache volume, * replicas"); a start's condition
    matches when each part matches one of its own parts (fnmatch: "*" for a count). None
    matches any condition."""
    if wanted is None:
        return True
    parts = condition.split(", ")
    return all(any(fnmatch.fnmatchcase(p, w) for p in parts) for w in wanted.split(", "))


def _values(view: RunView, strategy: str, metric: str, builder: str,
            condition: str | None = None) -> Values:
    """Per-round values of one metric (warm-ups left out) under the first condition that
    matches (None: the first measured)."""
    found = next((c for (s, b, c, m) in view.rounds if (s, b, m) == (strategy, builder, metric)
                  and condition_matches(condition, c)), None)
    if found is None:
        return {}
    return dict(view.rounds.get((strategy, builder, found, metric), {}))


def _group_values(view: RunView, members: list[str], metric: str, builder: str,
                  condition: str | None) -> Values:
    """Per round, the median over the members measured in it (one member: its values)."""
    per_member = [_values(view, m, metric, builder, condition) for m in members]
    rounds = sorted({r for values in per_member for r in values})
    return {r: statistics.median(v[r] for v in per_member if r in v) for r in rounds}


def _median(values: Values) -> float:
    return statistics.median(values.values())


class _Quantity:
    """One side of a claim: its per-trial values as measured and at the seed's size."""

    def __init__(self, view: RunView, spec: dict[str, Any], builder: str, factor: float) -> None:
        self.metric = spec["metric"]
        self.strategy = spec["strategy"]
        self.builder = spec.get("builder", builder)
        self.members = [self.strategy]
        if spec.get("identical_work"):
            # Every strategy of the run that does the strategy's work at start: per round
            # their median, so that one member's slow start in a round is not the claim's.
            self.members = next((m for m in aa.groups(view).values() if self.strategy in m),
                                [self.strategy])
        self.measured = _group_values(view, self.members, self.metric, self.builder,
                                      spec.get("condition"))
        self.scaled = dict(self.measured)
        part = spec.get("model_part")
        if factor == 1.0 or part is None or not self.measured:
            return
        if part == "all":
            self.scaled = {t: v * factor for t, v in self.measured.items()}
        elif part == "model_file":
            model = _values(view, self.strategy, "model_file_bytes", "-")
            if model:
                size = _median(model)
                self.scaled = {t: v + size * (factor - 1) if v >= size else v
                               for t, v in self.measured.items()}
        elif "metric" in part:  # the model's share is another metric of the same start
            share = _values(view, self.strategy, part["metric"], self.builder,
                            spec.get("condition"))
            self.scaled = {t: v + share[t] * (factor - 1)
                           for t, v in self.measured.items() if t in share}
        elif "extra_context_over" in part:
            self._scale_by_extra_context(view, part["extra_context_over"], factor)
        else:
            raise ValueError(f"unknown model_part {part!r}")

    def _scale_by_extra_context(self, view: RunView, reference: str, factor: float) -> None:
        """A build's time beyond the same build without the model, scaled per extra byte:
        the extra context is the model plus whatever else the .dockerignore leaves out (the
        raw CSV), and only the model's bytes grow at the seed's size."""
        ours = _values(view, self.strategy, "context_bytes", self.builder)
        theirs = _values(view, reference, "context_bytes", self.builder)
        model = _values(view, self.strategy, "model_file_bytes", "-")
        reference_times = _values(view, reference, self.metric, self.builder)
        if not (ours and theirs and model and reference_times):
            self.scaled = {}
            return
        extra, size = _median(ours) - _median(theirs), _median(model)
        if extra < size / 2:  # the model is not in the extra bytes: nothing here grows
            return
        grow = (extra - size + size * factor) / extra
        self.scaled = {t: reference_times[t] + (v - reference_times[t]) * grow
                       for t, v in self.measured.items() if t in reference_times}


def _derive(kind: str, a: float, b: float) -> float:
    if kind == "value":
        return a
    if kind == "difference":
        return b - a
    ratio = b / a if a else float("inf")
    return ratio if kind == "ratio" else 1 - ratio


def _pairs(a: Values, b: Values | None) -> list[tuple[float, float]]:
    """Paired by trial where both sides have the same trials; otherwise every combination."""
    if b is None:
        return [(v, 0.0) for v in a.values()]
    common = sorted(set(a) & set(b))
    if common:
        return [(a[t], b[t]) for t in common]
    return list(product(a.values(), b.values()))


def _interval(kind: str, pairs: list[tuple[float, float]], a_factor: float, b_factor: float
              ) -> tuple[float, float]:
    """Min-max of the derived value over the pairs; a single pair of measured (not exact)
    values spans every corner of their plausible ranges (bench.results.noise)."""
    if len(pairs) >= 2 or a_factor == b_factor == 1.0:
        derived = [_derive(kind, a, b) for a, b in pairs]
        return min(derived), max(derived)
    a, b = pairs[0]
    corners = [_derive(kind, a * fa, b * fb)
               for fa in {1 / a_factor, a_factor} for fb in {1 / b_factor, b_factor}]
    return min(corners), max(corners)


def _side(claim: dict[str, Any], value: float) -> int:
    """-1 below what the claim needs, 0 meeting it, +1 above it."""
    tolerance = float(claim.get("tolerance", 0.0))
    if claim["expect"] == "at_least":
        return -1 if value < float(claim["value"]) * (1 - tolerance) else 0
    if claim["expect"] == "at_most":
        return 1 if value > float(claim["value"]) * (1 + tolerance) else 0
    floor, ceiling = (float(x) for x in claim["range"])
    if value < floor * (1 - tolerance):
        return -1
    return 1 if value > ceiling * (1 + tolerance) else 0


def _majority_verdict(claim: dict[str, Any], derived: list[float]) -> str:
    """The noise rule's verdict over n >= 3 paired rounds (see the module's docstring)."""
    need = majority(len(derived))
    median_side = _side(claim, statistics.median(derived))
    sides = [_side(claim, v) for v in derived]
    if median_side == 0:
        return "holds" if sides.count(0) >= need else "inconclusive"
    return "does_not_hold" if sides.count(median_side) >= need else "inconclusive"


def _judge(claim: dict[str, Any], low: float, high: float) -> str:
    tolerance = float(claim.get("tolerance", 0.0))
    if claim["expect"] == "at_least":
        threshold = float(claim["value"]) * (1 - tolerance)
        return "holds" if low >= threshold else "does_not_hold" if high < threshold else (
            "inconclusive")
    if claim["expect"] == "at_most":
        threshold = float(claim["value"]) * (1 + tolerance)
        return "holds" if high <= threshold else "does_not_hold" if low > threshold else (
            "inconclusive")
    floor, ceiling = (float(x) for x in claim["range"])
    floor, ceiling = floor * (1 - tolerance), ceiling * (1 + tolerance)
    if floor <= low and high <= ceiling:
        return "holds"
    if high < floor or low > ceiling:
        return "does_not_hold"
    return "inconclusive"


def cold_cache(view: RunView) -> bool:
    return bool(view.metadata.get("config", {}).get("drop_caches"))


def evaluate(view: RunView, claims: list[dict[str, Any]], seed_model_bytes: int
             ) -> tuple[float, list[ClaimResult]]:
    model_bytes = float(view.metadata.get("model", {}).get("bytes") or 0)
    factor = scale_factor(model_bytes, seed_model_bytes)
    results = []
    for claim in claims:
        builders = (view.builders() or ["legacy"]) if claim.get("per_builder") else ["-"]
        evaluations = []
        for builder in builders:
            evaluation = _evaluate_one(view, claim, builder, factor)
            if evaluation is not None:
                evaluations.append(evaluation)
        results.append(ClaimResult(claim, evaluations))
    return factor, results


def _evaluate_one(view: RunView, claim: dict[str, Any], builder: str, factor: float
                  ) -> Evaluation | None:
    kind = claim["kind"]
    a = _Quantity(view, claim["a"], builder, factor)
    b = _Quantity(view, claim["b"], builder, factor) if "b" in claim else None
    if not a.scaled or (b is not None and not b.scaled):
        return None
    measured_pairs = _pairs(a.measured, None if b is None else b.measured)
    scaled_pairs = _pairs(a.scaled, None if b is None else b.scaled)
    a_factor = single_value_factor(a.metric)
    b_factor = 1.0 if b is None else single_value_factor(b.metric)
    low, high = _interval(kind, scaled_pairs, a_factor, b_factor)
    exact = is_exact(a.metric) and (b is None or is_exact(b.metric))
    if len(scaled_pairs) >= MIN_PAIRED_ROUNDS and not exact:
        verdict = _majority_verdict(claim, [_derive(kind, x, y) for x, y in scaled_pairs])
    else:
        verdict = _judge(claim, low, high)
    reason = ""
    # The A/A floor is measured on starts; a build claim keeps its own repetitions' rule.
    timings = [q.metric for q in (a, b) if q is not None and METRICS[q.metric].kind == "start"]
    noisy = max((aa.floor(view, m, a.builder) for m in timings), default=1.0)
    if claim.get("disk_read") and not cold_cache(view):
        verdict, reason = "inconclusive", "warm_cache_reason"
    elif (noisy > aa.NOISY_SPREAD and verdict != "inconclusive"
          # A claim about identical work is judged on the noise itself: its own pairs.
          and not (b is not None and aa.identical(view, a.strategy, b.strategy))):
        verdict, reason = "inconclusive", "noisy_run_reason"
    elif verdict == "inconclusive" and len(scaled_pairs) < 2 and not (
            is_exact(a.metric) and (b is None or is_exact(b.metric))):
        reason = "single_timing_reason"
    def side(q: _Quantity) -> str:
        name = q.strategy if len(q.members) == 1 else "{" + ", ".join(q.members) + "}"
        return f"{name} {format_value(q.metric, _median(q.measured))}"

    parts = [side(a)] + ([side(b)] if b is not None else [])
    common = sorted(set(a.scaled) & set(b.scaled)) if b is not None else sorted(a.scaled)
    per_round = tuple((r, _derive(kind, a.scaled[r], b.scaled[r] if b is not None else 0.0))
                      for r in common) if len(common) == len(scaled_pairs) else ()
    return Evaluation(
        builder,
        statistics.median(_derive(kind, x, y) for x, y in measured_pairs),
        statistics.median(_derive(kind, x, y) for x, y in scaled_pairs),
        low, high, len(scaled_pairs), verdict, " → ".join(parts), reason, per_round)
