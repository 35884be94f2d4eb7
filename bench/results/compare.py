"""Compare two stored runs: ratio B/A per strategy and metric, regressions against rules.

A rule is ``[metric:]stat:threshold%`` (``median:10%``, ``build_cold_s:median:15%``); the most
specific rule for a metric wins. Timings on shared machines are noisy, so a change only counts
when all three hold: the ratio passes the threshold in the worse (or better) direction, the
difference is above a noise floor (for measured values the smaller of an absolute floor per
unit and a fraction of the value, so a small value is guarded too; for exact sizes a fraction
only), and, when both runs have repeated trials, most of B's trials (ceil(2n/3)) lie beyond
A's range on that side (bench.results.noise.differs_unpaired). The old third condition, "the two
min–max ranges do not overlap", let one unaffected trial hide any regression, and one spike
none could make.

A comparison that cannot be trusted is refused rather than passed: runs of a different model,
configuration or machine (``--allow-mismatch`` to compare anyway), and a value measured in A
but missing in B breaks the comparison (``--allow-missing`` to accept).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bench.errors import UsageError
from bench.results.metrics import METRICS
from bench.results.noise import SIZE_TIE_FRACTION, differs_unpaired, is_exact
from bench.results.store import StoredRun
from bench.results.summary import Summary, format_value, summarize
from bench.results.units import unit_of

STATS = ("median", "min", "max")
# Differences smaller than the unit's noise floor (bench/results/units.py) are noise whatever the
# ratio, unless the value itself is small: then RELATIVE_FLOOR of it is the floor.
RELATIVE_FLOOR = 0.05
# Fields whose difference makes two runs incomparable (refused without --allow-mismatch).
MUST_MATCH = ("model.sha256", "config.", "machine.cpu", "machine.logical_cpus",
              "machine.ram_bytes", "engine.server_version", "engine.cgroup_version")
DISPLAY_THRESHOLD = 0.10
# Metadata that changes between any two runs and says nothing about comparability.
VOLATILE = ("started_at", "machine.disk_free_bytes", "machine.hostname", "git.", "model.path",
            "model.details.train_s", "runtime_image.cached", "runtime_image.build_s",
            "config.results_root", "config.keep")
COMPARABLE = ("machine.", "engine.", "base_image.", "runtime_image.", "model.", "builders",
              "page_cache", "config.")

_RULE = re.compile(r"^(?:(?P<metric>[a-z0-9_]+):)?(?P<stat>[a-z]+):(?P<pct>\d+(?:\.\d+)?)%$")


@dataclass(frozen=True)
class Rule:
    metric: str | None  # None: every metric without a rule of its own
    stat: str
    threshold: float  # 0.10 for 10%

    def __str__(self) -> str:
        return f"{self.metric + ':' if self.metric else ''}{self.stat}:{self.threshold * 100:g}%"


def parse_rule(text: str) -> Rule:
    match = _RULE.match(text.strip())
    if match is None or match.group("stat") not in STATS:
        raise UsageError(f"malformed rule {text!r}: use [metric:]stat:N% with stat one of "
                         f"{', '.join(STATS)}, e.g. median:10% or build_cold_s:median:15%")
    metric = match.group("metric")
    if metric is not None and metric not in METRICS:
        raise UsageError(f"rule {text!r} names unknown metric {metric!r}: see bench/results/metrics.py")
    return Rule(metric, match.group("stat"), float(match.group("pct")) / 100)


@dataclass(frozen=True)
class Change:
    key: tuple[str, str, str, str]  # strategy, builder, condition, metric
    a: Summary
    b: Summary
    stat: str
    ratio: float  # B / A of the stat
    worse: bool
    better: bool
    rule: Rule | None  # the rule that judged it (None: display threshold only)

    @property
    def broken(self) -> bool:
        return self.worse and self.rule is not None


def _stat(summary: Summary, stat: str) -> float:
    return {"median": summary.median, "min": summary.minimum, "max": summary.maximum}[stat]


def _rule_for(metric: str, rules: Iterable[Rule]) -> Rule | None:
    specific = [r for r in rules if r.metric == metric]
    general = [r for r in rules if r.metric is None]
    chosen = specific or general
    return chosen[-1] if chosen else None


def _judge(a: Summary, b: Summary, rule: Rule | None, values_a: list[float],
           values_b: list[float]) -> tuple[str, float, bool, bool]:
    metric = METRICS[a.metric]
    stat = rule.stat if rule else "median"
    threshold = rule.threshold if rule else DISPLAY_THRESHOLD
    va, vb = _stat(a, stat), _stat(b, stat)
    ratio = vb / va if va else (1.0 if vb == va else float("inf"))
    if is_exact(a.metric):
        floor = SIZE_TIE_FRACTION * abs(va)
    else:
        floor = min(unit_of(metric.unit).noise_floor, RELATIVE_FLOOR * abs(va))
    big_enough = abs(vb - va) > floor
    separated = is_exact(a.metric) or differs_unpaired(a.metric, values_a, values_b,
                                                       1 + threshold)
    grew, shrank = ratio > 1 + threshold, ratio < 1 / (1 + threshold)
    worse_dir, better_dir = (grew, shrank) if metric.lower_is_better else (shrank, grew)
    significant = big_enough and separated
    return stat, ratio, worse_dir and significant, better_dir and significant


Key = tuple[str, str, str, str]  # strategy, builder, condition, metric


def _index(run: StoredRun) -> dict[Key, Summary]:
    # Raw latencies are judged through p50/p95.
    return {(s.strategy, s.builder, s.condition, s.metric): s for s in summarize(run.samples)
            if s.metric != "predict_latency_ms"}


def _values(run: StoredRun) -> dict[Key, list[float]]:
    """Every measured value per key, warm-ups left out (as the summaries do)."""
    values: dict[Key, list[float]] = {}
    for s in run.samples:
        if not s.warmup:
            values.setdefault((s.strategy, s.builder, s.condition, s.metric), []).append(s.value)
    return values


def missing_in_b(a: StoredRun, b: StoredRun) -> list[Key]:
    """What A measured and B did not: a dropped strategy or metric must not pass silently."""
    index_b = _index(b)
    return [key for key in _index(a) if key not in index_b]


def compare(a: StoredRun, b: StoredRun, rules: list[Rule]) -> list[Change]:
    index_a = _index(a)
    values_a, values_b = _values(a), _values(b)
    changes = []
    for key, sb in _index(b).items():
        sa = index_a.get(key)
        if sa is None:
            continue
        rule = _rule_for(sb.metric, rules)
        stat, ratio, worse, better = _judge(sa, sb, rule, values_a[key], values_b[key])
        changes.append(Change(key, sa, sb, stat, ratio, worse, better, rule))
    return changes


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}{k}.", v, out)
    else:
        out[prefix.rstrip(".")] = value


def metadata_differences(a: StoredRun, b: StoredRun) -> list[tuple[str, Any, Any]]:
    """Fields of machine, engine, images, model and config that differ (volatile ones ignored)."""
    flat_a: dict[str, Any] = {}
    flat_b: dict[str, Any] = {}
    _flatten("", a.document.get("metadata", {}), flat_a)
    _flatten("", b.document.get("metadata", {}), flat_b)
    out = []
    for key in sorted(set(flat_a) | set(flat_b)):
        if not key.startswith(COMPARABLE) or key.startswith(VOLATILE):
            continue
        if flat_a.get(key) != flat_b.get(key):
            out.append((key, flat_a.get(key), flat_b.get(key)))
    return out


def mismatches(a: StoredRun, b: StoredRun) -> list[tuple[str, Any, Any]]:
    """The metadata differences that make two runs incomparable."""
    return [d for d in metadata_differences(a, b) if d[0].startswith(MUST_MATCH)]


def _line(change: Change) -> str:
    strategy, builder, condition, metric = change.key
    where = strategy + ("" if builder == "-" else f" [{builder}]")
    where += "" if condition == "-" else f" ({condition})"
    a, b = _stat(change.a, change.stat), _stat(change.b, change.stat)
    rule = f"  rule {change.rule}" if change.rule else ""
    return (f"  {where:<40} {metric:<24} {format_value(metric, a):>12} -> "
            f"{format_value(metric, b):>12}  x{change.ratio:.2f}{rule}")


def render(a: StoredRun, b: StoredRun, changes: list[Change],
           missing: list[Key] | None = None) -> str:
    lines = [f"A: {a.folder}  ({a.document.get('run_id')}, {a.document.get('status')})",
             f"B: {b.folder}  ({b.document.get('run_id')}, {b.document.get('status')})"]
    differences = metadata_differences(a, b)
    if differences:
        lines.append("warning: the runs differ in metadata, so ratios mix machine and code "
                     "effects:")
        lines += [f"  {key}: {va!r} -> {vb!r}" for key, va, vb in differences]
    worse = [c for c in changes if c.worse]
    better = [c for c in changes if c.better]
    lines.append(f"regressions ({len(worse)}):")
    lines += [_line(c) + ("  BROKEN" if c.broken else "") for c in worse] or ["  none"]
    lines.append(f"improvements ({len(better)}):")
    lines += [_line(c) for c in better] or ["  none"]
    if missing:
        lines.append(f"measured in A, missing in B ({len(missing)}):")
        lines += [f"  {k[0]}{'' if k[1] == '-' else f' [{k[1]}]'}"
                  f"{'' if k[2] == '-' else f' ({k[2]})'}  {k[3]}" for k in missing]
    same = len(changes) - len(worse) - len(better)
    lines.append(f"within noise or threshold: {same} of {len(changes)} compared values")
    return "\n".join(lines)
