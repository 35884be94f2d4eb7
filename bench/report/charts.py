"""The report's charts: one horizontal bar per strategy and series, never a bare bar.

A bar is the median; a black line spans min to max; dots are the raw trials. Each strategy has
one colour in every chart (``RunView.colour``); series within a chart (builder, metric) are
lighter shades of it (shades survive grayscale printing; hatches made SVGs ten times larger).
A value axis switches to log scale when values span more than two orders of magnitude.
Every chart is written as PNG (300 dpi) and SVG (text kept as text, so files stay small).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on CI machines; must precede pyplot
import matplotlib.pyplot as plt
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from bench.report.drift import drift_chart
from bench.report.labels import Labels
from bench.report.table import row_label
from bench.report.view import RunView
from bench.results.metrics import CHARTS, METRICS, TIMELINE_STAMPS, in_chart, timeline_metric
from bench.results.units import format_compact, number, unit_of

matplotlib.rcParams.update({"svg.fonttype": "none", "font.size": 8, "axes.titlesize": 10,
                            "axes.spines.top": False, "axes.spines.right": False})

SHADES = (0.0, 0.45, 0.7, 0.85)  # share of white mixed into the strategy colour per series
FORMATS = ("png", "svg")


@dataclass(frozen=True)
class Series:
    metric: str
    builder: str = "-"


@dataclass(frozen=True)
class ChartSpec:
    name: str  # file stem
    title_key: str
    series: tuple[Series, ...]


def chart_specs(view: RunView) -> list[ChartSpec]:
    """One bar chart per catalogue chart (bench.results.metrics.CHARTS), its series the metrics the
    catalogue puts in it, per builder where the chart shows builders."""
    builders = view.builders() or ["legacy"]
    specs = []
    for stem, shown in CHARTS:
        chosen = {"all": builders, "first": builders[:1], "-": ["-"]}[shown]
        series = tuple(Series(m, b) for b in chosen for m in in_chart(stem))
        if any(view.has(s.metric) for s in series):
            specs.append(ChartSpec(stem, f"chart_{stem}", series))
    return specs


def series_label(labels: Labels, series: Series, spec: ChartSpec) -> str:
    builders = {s.builder for s in spec.series}
    metrics = {s.metric for s in spec.series}
    parts = []
    if len(metrics) > 1:
        parts.append(labels(series.metric))
    if len(builders) > 1 or series.builder not in ("-",):
        parts.append(labels(series.builder))
    return ", ".join(parts) or labels(series.metric)


def _tick_formatter(unit: str) -> Callable[[float, int], str]:
    return lambda value, _pos: format_compact(unit, value, "g")


def shade(colour: str, series_index: int) -> tuple[float, float, float]:
    white = SHADES[min(series_index, len(SHADES) - 1)]
    r, g, b = to_rgb(colour)
    return (r + (1 - r) * white, g + (1 - g) * white, b + (1 - b) * white)


def _rows(view: RunView, spec: ChartSpec) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for strategy in view.strategies:
        conditions: list[str] = []
        for series in spec.series:
            conditions += [c for (s, b, c, m) in view.summaries
                           if s == strategy and m == series.metric and b == series.builder]
        rows += [(strategy, c) for c in dict.fromkeys(conditions)]
    return rows


def render_bar_chart(view: RunView, spec: ChartSpec, labels: Labels) -> Figure | None:
    rows = _rows(view, spec)
    if not rows:
        return None
    unit = METRICS[spec.series[0].metric].unit
    count = len(spec.series)
    height = 0.8 / count
    legend_in = 0.3 if count > 1 else 0.0
    fig_height = 0.9 + legend_in + len(rows) * (0.18 * count + 0.22)
    fig, ax = plt.subplots(figsize=(7.0, fig_height))
    values_seen: list[float] = []
    for index, (strategy, condition) in enumerate(rows):
        for j, series in enumerate(spec.series):
            key = (strategy, series.builder, condition, series.metric)
            summary = view.summaries.get(key)
            if summary is None:
                continue
            y = index - 0.4 + height * (j + 0.5)
            raw = view.raw[key]
            values_seen += raw
            ax.barh(y, summary.median, height=height * 0.9,
                    color=shade(view.colour(strategy), j), edgecolor=view.colour(strategy),
                    linewidth=0.5)
            if summary.n > 1:
                ax.hlines(y, summary.minimum, summary.maximum, color="black", linewidth=0.9)
                ax.scatter(raw, [y] * len(raw), s=6, color="black", zorder=3)
            ax.annotate(format_compact(unit, summary.median, ".3g"), (summary.maximum, y), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=6.5)
    positive = [v for v in values_seen if v > 0]
    log = bool(positive) and max(positive) / min(positive) > 100
    if log:
        ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(_tick_formatter(unit)))
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([row_label(labels, s, c) for s, c in rows])
    for tick, (strategy, _c) in zip(ax.get_yticklabels(), rows, strict=True):
        tick.set_color(view.colour(strategy))
    ax.invert_yaxis()
    ax.set_xlim(right=(ax.get_xlim()[1] * (3 if log else 1.15)))
    axis_key = unit_of(unit).axis
    axis = labels(axis_key) if axis_key is not None else unit
    ax.set_xlabel(f"{axis} ({labels('log_scale')})" if log else axis)
    ax.set_title(labels(spec.title_key))
    if count > 1:  # below the plot, where it can never cover a bar
        handles = [Patch(facecolor=shade("#555555", j), edgecolor="#555555",
                         label=series_label(labels, s, spec)) for j, s in enumerate(spec.series)]
        fig.legend(handles=handles, fontsize=7, loc="lower left", ncol=min(count, 4),
                   frameon=False, bbox_to_anchor=(0.0, 0.0))
    ax.grid(axis="x", linewidth=0.3, alpha=0.5)
    fig.text(0.99, 0.995, labels("points_note"), ha="right", va="top", fontsize=6,
             color="0.35")
    fig.tight_layout(rect=(0, (legend_in + 0.05) / fig_height, 1, 1 - 0.12 / fig_height))
    return fig


# -- the start-up timeline ----------------------------------------------------------------

# Lanes within a row, so phases that overlap (a streamed download under the load) both show.
SEGMENTS = (  # label key, lane, start phase, end phase, colour
    ("seg_pull", 1, None, "pull_end", "#D55E00"),  # a fresh node (--fresh-node)
    ("seg_node_fetch", 1, "pull_end", "node_fetch_end", "#F0E442"),
    ("seg_container", 0, "container_start", "process_start", "#bdbdbd"),
    ("seg_server", 0, "process_start", "ready", "#56B4E9"),
    ("seg_download", 1, "download_start", "download_end", "#E69F00"),
    ("seg_load", 2, "load_start", "load_end", "#009E73"),
    ("seg_predict", 2, "load_end", "model_ready", "#CC79A7"),
)
LANE_HEIGHT = 0.26


def median_phases(view: RunView) -> list[tuple[str, str, dict[str, float]]]:
    """Per (strategy, condition): the median over trials of every phase time, from the
    timeline samples (at_<stamp>_s), ready_s and model_ready_s."""
    phase_of = {timeline_metric(stamp): stamp for stamp in TIMELINE_STAMPS}
    phase_of |= {"ready_s": "ready", "model_ready_s": "model_ready"}
    rows: dict[tuple[str, str], dict[str, float]] = {}
    for (strategy, builder, condition, metric), summary in view.summaries.items():
        if builder == "-" and metric in phase_of:
            rows.setdefault((strategy, condition), {})[phase_of[metric]] = summary.median
    stamped = set(TIMELINE_STAMPS) - {"server_up"}  # starts the service stamped
    return [(strategy, condition, phases)
            for strategy in view.strategies
            for (name, condition), phases in rows.items()
            if name == strategy and stamped & set(phases)]


def render_timeline(view: RunView, labels: Labels) -> Figure | None:
    rows = median_phases(view)
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(7.0, 1.0 + 0.42 * len(rows)))
    used: dict[str, str] = {}
    for index, (_strategy, _condition, phases) in enumerate(rows):
        for key, lane, start_name, end_name, colour in SEGMENTS:
            start = 0.0 if start_name is None else phases.get(
                start_name, 0.0 if start_name == "container_start" else None)
            end = phases.get(end_name)
            if start is None or end is None:
                continue
            if key == "seg_predict":
                start = max(start, phases.get("ready", start))
            if end <= start:
                continue
            ax.broken_barh([(start, end - start)],
                           (index - 0.4 + lane * (LANE_HEIGHT + 0.01), LANE_HEIGHT),
                           facecolors=colour)
            used[key] = colour
        if "model_ready" in phases:
            ax.annotate(f"{number(phases['model_ready'], '.2f')} s", (phases["model_ready"], index + 0.2),
                        xytext=(3, 0), textcoords="offset points", va="center", fontsize=6.5)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([row_label(labels, s, c) for s, c, _p in rows])
    for tick, (strategy, _c, _p) in zip(ax.get_yticklabels(), rows, strict=True):
        tick.set_color(view.colour(strategy))
    ax.invert_yaxis()
    ax.set_xlim(left=0, right=ax.get_xlim()[1] * 1.08)
    ax.set_xlabel(labels("axis_since_start") + " (s)")
    ax.set_title(labels("chart_timeline"))
    ax.grid(axis="x", linewidth=0.3, alpha=0.5)
    ax.legend(handles=[Patch(facecolor=c, label=labels(k)) for k, c in used.items()],
              fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.18 - 0.3 / len(rows)),
              ncol=len(used), frameon=False)
    fig.tight_layout()
    return fig


def save(fig: Figure, folder: Path, stem: str, formats: tuple[str, ...], dpi: int) -> list[Path]:
    paths = []
    try:
        for fmt in formats:
            path = folder / f"{stem}.{fmt}"
            partial = folder / f".{stem}.partial.{fmt}"  # renamed whole: never half a chart
            fig.savefig(partial, dpi=dpi if fmt == "png" else None, bbox_inches="tight",
                        metadata={"Date": None} if fmt == "svg" else None)
            partial.replace(path)
            paths.append(path)
    finally:
        plt.close(fig)
        for leftover in folder.glob(f".{stem}.partial.*"):
            leftover.unlink(missing_ok=True)
    return paths


def render_all(view: RunView, labels: Labels, folder: Path, formats: tuple[str, ...] = FORMATS,
               dpi: int = 300) -> dict[str, list[Path]]:
    """Every chart the run's data supports: stem -> written files."""
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Path]] = {}
    for spec in chart_specs(view):
        fig = render_bar_chart(view, spec, labels)
        if fig is not None:
            written[spec.name] = save(fig, folder, spec.name, formats, dpi)
    timeline = render_timeline(view, labels)
    if timeline is not None:
        written["timeline"] = save(timeline, folder, "timeline", formats, dpi)
    drift = drift_chart(view, labels)
    if drift is not None:
        written["drift"] = save(drift, folder, "drift", formats, dpi)
    return written


