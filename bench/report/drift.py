"""What the report says about time: the A/A table it opens with, the machine's canary per
round, and the drift chart (every start against the wall clock, the canary beneath). Reads
only the stored run."""

from __future__ import annotations

import datetime
import statistics
from typing import TYPE_CHECKING

from bench.report import aa
from bench.report.labels import Labels
from bench.report.view import RunView
from bench.results.metrics import MACHINE_ROW
from bench.results.summary import format_value
from bench.results.units import number
from bench.run.canary import slow_rounds

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DRIFT_METRICS = ("model_ready_s", "load_s")


def canary_by_round(view: RunView, metric: str = "canary_cpu_s") -> dict[int, float]:
    return dict(view.rounds.get((MACHINE_ROW, "-", "-", metric), {}))


def marked_rounds(view: RunView) -> list[int]:
    """Rounds whose CPU or memory canary took more than 1.5x its run's median."""
    return sorted(set(slow_rounds(canary_by_round(view)))
                  | set(slow_rounds(canary_by_round(view, "canary_memory_s"))))


def _factor(value: float) -> str:
    return f"{number(value, '.2f')}×"


def _markdown_table(header: list[str], align: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table; `align` holds "---" (left) or "--:" (right) per column."""
    return ([f"| {' | '.join(header)} |", f"|{'|'.join(align)}|"]
            + [f"| {' | '.join(row)} |" for row in rows])


def aa_markdown(view: RunView, labels: Labels) -> str:
    spreads = aa.spreads(view)
    if not spreads:
        return labels("aa_none") + "\n"
    controls = aa.controls(view)
    control = "".join(labels("aa_control").format(control=c, target=t)
                      for c, t in controls.items())
    members = sorted({m for s in spreads for m in s.medians})
    lines = [labels("aa_intro").format(members=", ".join(f"`{m}`" for m in members),
                                       control=control), ""]
    for found in spreads:
        if found.metric == "model_ready_s":
            rounds = ", ".join(f"{r}: {_factor(v)}" for r, v in found.per_round.items())
            lines.append(labels("aa_headline").format(spread=_factor(found.spread),
                                                      metric=labels(found.metric).lower(),
                                                      rounds=rounds or "–"))
            if found.spread > aa.NOISY_SPREAD:
                widest = sorted(found.per_round, key=found.per_round.__getitem__,
                                reverse=True)[:3]
                lines += ["", labels("aa_noisy").format(
                    spread=_factor(found.spread), rounds=", ".join(map(str, widest)))]
            lines.append("")
    rows = [[labels(found.metric),
             *(format_value(found.metric, found.medians[m]) if m in found.medians else "–"
               for m in members),
             _factor(found.spread), " ".join(_factor(v) for v in found.per_round.values()),
             _factor(aa.floor(view, found.metric))] for found in spreads]
    lines += _markdown_table(
        [labels("metric"), *members, labels("spread"), labels("per_round"), labels("floor")],
        ["---", *["--:"] * (len(members) + 1), "---", "--:"], rows)
    return "\n".join(lines) + "\n"


def canary_markdown(view: RunView, labels: Labels) -> str:
    cpu = canary_by_round(view)
    if not cpu:
        return ""
    read = canary_by_round(view, "canary_read_s")
    memory = canary_by_round(view, "canary_memory_s")
    steal = canary_by_round(view, "round_steal_fraction")
    iowait = canary_by_round(view, "round_iowait_fraction")
    slow = set(marked_rounds(view))

    def moved(values: dict[int, float]) -> str:
        low = min(values.values(), default=0.0)
        return _factor(max(values.values()) / low) if low > 0 else labels("not_in_this_run")

    def ms(values: dict[int, float], r: int) -> str:
        return f"{number(values[r] * 1000, '.0f')} ms" if r in values else "–"

    def share(values: dict[int, float], r: int) -> str:
        return f"{number(values[r] * 100, '.1f')} %" if r in values else "–"

    rows = [[f"{r}{' ⚠' if r in slow else ''}", ms(cpu, r), ms(read, r), ms(memory, r),
             share(steal, r), share(iowait, r)] for r in sorted(cpu)]
    header = [labels(k) for k in ("round", "canary_cpu_s", "canary_read_s", "canary_memory_s",
                                  "round_steal_fraction", "round_iowait_fraction")]
    lines = [labels("canary_intro").format(drift=moved(cpu), memory=moved(memory)), "",
             *_markdown_table(header, ["--:"] * len(header), rows)]
    return "\n".join(lines) + "\n"


def slow_rounds_note(view: RunView, labels: Labels) -> str:
    slow = marked_rounds(view)
    return labels("slow_rounds_note").format(rounds=", ".join(map(str, slow))) if slow else ""


def run_span(view: RunView) -> tuple[str, str, float] | None:
    """First and last container start of the run, and the seconds between them."""
    stamps = sorted(s.started_at for s in view.samples if s.started_at)
    if not stamps:
        return None
    first = datetime.datetime.fromisoformat(stamps[0])
    last = datetime.datetime.fromisoformat(stamps[-1])
    return stamps[0], stamps[-1], (last - first).total_seconds()


def drift_chart(view: RunView, labels: Labels) -> Figure | None:
    """Each strategy's first correct prediction and load per start against the wall clock,
    slow rounds shaded, the canary's CPU task beneath."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt  # bench.report.charts chose the Agg backend
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from bench.results.units import format_compact

    seconds = FuncFormatter(lambda value, _pos: format_compact("s", value, "g"))

    points: dict[tuple[str, str], list[tuple[datetime.datetime, float]]] = {}
    for s in view.samples:
        if s.metric in DRIFT_METRICS and s.started_at and not s.warmup and s.strategy != (
                MACHINE_ROW):
            points.setdefault((s.strategy, s.metric), []).append(
                (datetime.datetime.fromisoformat(s.started_at), s.value))
    canary = [(datetime.datetime.fromisoformat(s.started_at), s.value, s.round)
              for s in view.samples if s.metric == "canary_cpu_s" and s.started_at]
    per_start = sorted((datetime.datetime.fromisoformat(s.started_at), s.value)
                       for s in view.samples
                       if s.metric == "start_canary_memory_s" and s.started_at)
    if not points:
        return None
    figure, axes = plt.subplots(len(DRIFT_METRICS) + 1, 1, sharex=True,
                                figsize=(7.5, 2.2 * (len(DRIFT_METRICS) + 1)),
                                gridspec_kw={"height_ratios": [3] * len(DRIFT_METRICS) + [1.5]})
    slow = set(marked_rounds(view))
    stamps = sorted(t for t, _v, _r in canary)
    for axis, metric in zip(axes, DRIFT_METRICS, strict=False):
        for strategy in view.strategies:
            series = sorted(points.get((strategy, metric), []))
            if series:
                # Markers only: a strategy with two conditions (mmap's prefetch, the
                # registry's caches) would zigzag between them if joined.
                axis.plot([t for t, _ in series], [v for _, v in series], marker="o",
                          markersize=2.5, linewidth=0, color=view.colour(strategy),
                          label=strategy)
        axis.set_ylabel(labels(metric))
        axis.set_yscale("log")
        axis.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.yaxis.set_major_formatter(seconds)
        axis.yaxis.set_minor_formatter(NullFormatter())
        for t, _v, r in canary:
            if r in slow:
                later = [u for u in stamps if u > t]
                axis.axvspan(t, later[0] if later else t + datetime.timedelta(minutes=1),
                             color="#D55E00", alpha=0.12, linewidth=0)
    axes[0].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    bottom = axes[-1]
    if canary:
        median = statistics.median(v for _t, v, _r in canary)
        bottom.plot([t for t, _v, _r in canary], [v * 1000 for _t, v, _r in canary],
                    marker="s", markersize=3, color="#000000", linewidth=0.8)
        bottom.axhline(median * 1500, color="#D55E00", linewidth=0.6, linestyle="--")
    if per_start:
        bottom.plot([t for t, _v in per_start], [v * 1000 for _t, v in per_start],
                    marker=".", markersize=3, linewidth=0, color="#7f7f7f",
                    label=labels("start_canary_memory_s"))
        bottom.legend(fontsize=6, loc="upper right", frameon=False)
    bottom.set_ylabel("ms")
    axes[0].set_title(labels("chart_drift"))
    bottom.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))  # type: ignore[no-untyped-call]
    bottom.set_xlabel("UTC")
    return figure
