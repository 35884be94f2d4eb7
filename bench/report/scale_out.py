"""Scale-out on paper: how long until N fresh nodes all serve, projected from what one fresh
node measured (`--fresh-node`), for every strategy of the run.

A fresh node's first correct prediction is a fixed part (start, load, the first request)
plus the time it spends moving bytes from the servers every node shares (the OCI registry's
pull, the model store's copy, the registry strategies' download, mmap-lazy's demand pages).
When N nodes start at once those bytes share the servers' egress E, so the transfer takes
at least N x bytes / E:

    T(N) = fixed + max(transfer, N x bytes / E),  fixed = serving - transfer

With distribution inside the cluster (nodes serve each other what they already hold, as
Spegel, Dragonfly and Kraken do for images) the servers send each byte about once:
T_p2p(N) = fixed + max(transfer, bytes / E), the ideal such a system approaches.
mmap-lazy's demand pages arrive inside its first request, so its measured transfer is 0
and the shared egress is added on top of a start that already paid for the pages: an upper
estimate.

A run with `--nodes 1,2,3` measured N > 1 as well, every count in the same trials: the
projection is then made from its one-node starts, at the egress the run's servers really had
(--link-rate), and checked against the last node's first correct prediction (all_ready_s) at
each N: its error on the measured points.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bench.report.labels import Labels
from bench.report.table import row_label
from bench.report.view import RunView
from bench.results.node_conditions import node_count, split_node, without_count
from bench.results.units import format_bytes, format_compact, format_seconds
from bench.servers.link import LinkRate

if TYPE_CHECKING:
    from matplotlib.figure import Figure

DEFAULT_EGRESS = "10Gbit"  # a registry or object store's egress, as a cloud region gives it
NODES_SHOWN = (1, 10, 100)
NODES_CHARTED = range(1, 101)
LINE_STYLES = (("-", "--"), ("-.", ":"))  # (shared egress, peer-to-peer) per condition
# Seconds of a fresh node's start spent moving bytes from the shared servers, and the bytes.
TRANSFER_SECONDS = ("pull_s", "node_fetch_s", "download_s")
SHARED_BYTES = ("pull_bytes", "node_fetch_bytes", "paged_first_bytes")
# A download's bytes: its rate times its seconds (download_mb_per_s is bytes / download_s, in
# MB of 10^6 bytes; a start that found its cache warm has neither, and took nothing).
DOWNLOAD_RATE = "download_mb_per_s"


@dataclass(frozen=True)
class NodeCost:
    """What one fresh node of a strategy took: medians over the run's measured starts."""

    strategy: str
    condition: str
    serving_s: float  # the start's 0 (provisioning began) to the first correct prediction
    transfer_s: float  # of which moving bytes from the shared servers
    shared_bytes: float  # the bytes those servers sent before the node served

    def all_serving_s(self, nodes: int, egress_bytes_per_s: float, p2p: bool = False) -> float:
        """T(N): when the last of `nodes` nodes, started at once, serves."""
        sent = self.shared_bytes * (1 if p2p else nodes) / egress_bytes_per_s
        return self.serving_s - self.transfer_s + max(self.transfer_s, sent)


def node_costs(view: RunView) -> list[NodeCost]:
    """Every (strategy, condition) measured on a fresh node, in run order."""
    per_start: dict[tuple[str, str, int], dict[str, float]] = defaultdict(dict)
    wanted = (*TRANSFER_SECONDS, *SHARED_BYTES, DOWNLOAD_RATE, "model_ready_s")
    for s in view.samples:
        if not s.warmup and s.metric in wanted:
            per_start[(s.strategy, s.condition, s.trial)][s.metric] = s.value
    grouped: dict[tuple[str, str], list[tuple[float, float, float]]] = defaultdict(list)
    for (strategy, node_condition, _trial), values in per_start.items():
        if "pull_s" not in values or "model_ready_s" not in values:
            continue  # not a fresh-node start
        count = node_count(node_condition)
        if count not in (None, 1):
            continue  # --nodes: the projection starts from the one-node starts
        condition = node_condition if count is None else without_count(node_condition)
        shared = sum(values.get(m, 0.0) for m in SHARED_BYTES)
        shared += values.get(DOWNLOAD_RATE, 0.0) * 1e6 * values.get("download_s", 0.0)
        grouped[(strategy, condition)].append(
            (values["model_ready_s"], sum(values.get(m, 0.0) for m in TRANSFER_SECONDS), shared))
    order = {name: index for index, name in enumerate(view.strategies)}
    return [NodeCost(strategy, condition, *(statistics.median(column) for column in zip(*starts,
                                                                                        strict=True)))
            for (strategy, condition), starts in sorted(
                grouped.items(), key=lambda item: (order.get(item[0][0], len(order)), item[0][1]))]


def scale_out_markdown(costs: list[NodeCost], labels: Labels, egress: LinkRate) -> str:
    """The projection's table (empty: the run measured no fresh node)."""
    if not costs:
        return ""
    egress_bytes_per_s = egress.bytes_per_s
    head = " | ".join(labels("scale_nodes_n").format(n=n) for n in NODES_SHOWN)
    lines = [labels("scale_out_text").format(egress=egress), "",
             f"| {labels('strategy')} | {labels('scale_bytes_per_node')} | {head} | "
             f"{labels('scale_p2p_n').format(n=NODES_SHOWN[-1])} |",
             "|---|--:|" + "--:|" * (len(NODES_SHOWN) + 1)]
    for cost in costs:
        cells = [format_seconds(cost.all_serving_s(n, egress_bytes_per_s)) for n in NODES_SHOWN]
        p2p = format_seconds(cost.all_serving_s(NODES_SHOWN[-1], egress_bytes_per_s, p2p=True))
        lines.append(f"| {row_label(labels, cost.strategy, cost.condition)} | "
                     f"{format_bytes(cost.shared_bytes)} | {' | '.join(cells)} | {p2p} |")
    return "\n".join(lines) + "\n"


def scale_out_chart(view: RunView, costs: list[NodeCost], labels: Labels,
                    egress: LinkRate) -> Figure | None:
    """T(N) for N = 1..100, one line per strategy and condition; dashed: with peer-to-peer
    distribution inside the cluster."""
    import matplotlib.pyplot as plt  # bench.report.charts chose the Agg backend
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if not costs:
        return None
    egress_bytes_per_s = egress.bytes_per_s
    figure, axis = plt.subplots(figsize=(7.5, 4.5))
    nodes = list(NODES_CHARTED)
    seen: dict[str, int] = {}
    for cost in costs:
        colour = view.colour(cost.strategy)
        # A strategy's second condition (mmap's prefetch, a cache's state) in its own style.
        solid, dashed = LINE_STYLES[seen.get(cost.strategy, 0) % len(LINE_STYLES)]
        seen[cost.strategy] = seen.get(cost.strategy, 0) + 1
        name = row_label(labels, cost.strategy, cost.condition)
        axis.plot(nodes, [cost.all_serving_s(n, egress_bytes_per_s) for n in nodes],
                  color=colour, linestyle=solid, label=name)
        axis.plot(nodes, [cost.all_serving_s(n, egress_bytes_per_s, p2p=True) for n in nodes],
                  color=colour, linestyle=dashed, linewidth=0.8)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel(labels("scale_axis_nodes"))
    axis.set_ylabel(labels("scale_axis_seconds"))
    axis.set_title(labels("scale_chart_title").format(egress=egress), fontsize=10)
    axis.grid(True, which="both", linewidth=0.3)
    axis.legend(fontsize=7, loc="upper left")
    axis.annotate(labels("scale_p2p_dashed"), xy=(0.99, 0.01), xycoords="axes fraction",
                  ha="right", va="bottom", fontsize=7)
    axis.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: format_compact("s", v, "g")))
    axis.yaxis.set_minor_formatter(NullFormatter())
    axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    return figure


@dataclass(frozen=True)
class ScaleCheck:
    """All nodes serving at one N of a --nodes run: measured, and projected from the same
    run's one-node starts at the run's own egress."""

    strategy: str
    condition: str
    nodes: int
    measured_s: float  # median of all_ready_s over the trials
    projected_s: float

    @property
    def error(self) -> float:
        """projected / measured - 1: positive when the projection is slower."""
        return self.projected_s / self.measured_s - 1


def run_egress(view: RunView) -> LinkRate | None:
    """The egress the run's servers had (--link-rate); None on an unshaped loopback."""
    rate = (view.metadata.get("config", {}).get("options") or {}).get("link_rate")
    return LinkRate(int(rate["bits_per_s"])) if isinstance(rate, dict) else None


def scale_checks(view: RunView, costs: list[NodeCost]) -> list[ScaleCheck]:
    """Every measured N of a --nodes run against T(N) (empty: no such run, or no egress)."""
    egress = run_egress(view)
    if egress is None:
        return []
    ready: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for s in view.samples:
        count = node_count(s.condition)
        if (not s.warmup and s.metric == "all_ready_s" and count is not None
                and split_node(s.condition)[1] is None):
            ready[(s.strategy, without_count(s.condition), count)].append(s.value)
    by_row = {(c.strategy, c.condition): c for c in costs}
    checks = [ScaleCheck(strategy, condition, n, statistics.median(values),
                         by_row[(strategy, condition)].all_serving_s(n, egress.bytes_per_s))
              for (strategy, condition, n), values in ready.items()
              if (strategy, condition) in by_row]
    order = {name: index for index, name in enumerate(view.strategies)}
    return sorted(checks, key=lambda c: (order.get(c.strategy, len(order)), c.condition,
                                         c.nodes))


@dataclass(frozen=True)
class ScaleFit:
    """all_ready_s = fixed + per_node x N, least squares over the measured N of one
    strategy and condition: what one more node cost in this run, whatever it was (the
    servers' egress, the nodes' shared CPU and disk)."""

    strategy: str
    condition: str
    fixed_s: float
    per_node_s: float
    shared_bytes: float  # one node's bytes from the servers (the one-node starts' median)
    worst_error: float  # the largest |fitted / measured - 1| over the measured N

    @property
    def effective_egress(self) -> LinkRate | None:
        """The egress that would explain the slope alone (None: no slope)."""
        if self.per_node_s <= 0 or self.shared_bytes <= 0:
            return None
        return LinkRate(int(self.shared_bytes * 8 / self.per_node_s))


def scale_fits(checks: list[ScaleCheck], costs: list[NodeCost]) -> list[ScaleFit]:
    """One fit per strategy and condition measured at two or more N."""
    points: dict[tuple[str, str], list[ScaleCheck]] = defaultdict(list)
    for check in checks:
        points[(check.strategy, check.condition)].append(check)
    shared = {(c.strategy, c.condition): c.shared_bytes for c in costs}
    fits = []
    for (strategy, condition), measured in points.items():
        if len({c.nodes for c in measured}) < 2:
            continue
        slope, intercept = statistics.linear_regression([float(c.nodes) for c in measured],
                                                        [c.measured_s for c in measured])
        worst = max(abs((intercept + slope * c.nodes) / c.measured_s - 1) for c in measured)
        fits.append(ScaleFit(strategy, condition, intercept, slope,
                             shared.get((strategy, condition), 0.0), worst))
    return fits


def scale_check_markdown(view: RunView, checks: list[ScaleCheck], costs: list[NodeCost],
                         labels: Labels) -> str:
    """The projection against the nodes that ran, and a line fitted through them (empty:
    none ran)."""
    if not checks:
        return ""
    errors = [abs(c.error) for c in checks if c.nodes > 1]
    lines = [labels("scale_check_text").format(
                egress=run_egress(view), worst=f"{max(errors, default=0.0):.0%}",
                median=f"{statistics.median(errors) if errors else 0.0:.0%}"), "",
             f"| {labels('strategy')} | N | {labels('scale_measured')} | "
             f"{labels('scale_projected')} | {labels('scale_error')} |",
             "|---|--:|--:|--:|--:|"]
    lines += [f"| {row_label(labels, c.strategy, c.condition)} | {c.nodes} | "
              f"{format_seconds(c.measured_s)} | {format_seconds(c.projected_s)} | "
              f"{c.error:+.0%} |" for c in checks]
    fits = scale_fits(checks, costs)
    if fits:
        lines += ["", labels("scale_fit_text"), "",
                  f"| {labels('strategy')} | {labels('scale_fit_fixed')} | "
                  f"{labels('scale_fit_per_node')} | {labels('scale_fit_egress')} | "
                  f"{labels('scale_fit_error')} |", "|---|--:|--:|--:|--:|"]
        for fit in fits:
            egress = fit.effective_egress
            lines.append(f"| {row_label(labels, fit.strategy, fit.condition)} | "
                         f"{format_seconds(fit.fixed_s)} | {format_seconds(fit.per_node_s)} | "
                         f"{'–' if egress is None else f'{egress.bits_per_s / 1e6:.0f} Mbit/s'} | "
                         f"{fit.worst_error:.0%} |")
    return "\n".join(lines) + "\n"
