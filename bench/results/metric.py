"""What a metric is: its unit, kind, labels and where the report shows it (the catalogue of
every metric is bench/results/metrics.py)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.results.units import UNITS

# What a metric is about. "size" and "count" are exact (the same build gives the same bytes);
# the others vary from trial to trial (bench.results.noise).
# "machine" is the host's own state (the canary before each round, the memory and the model's
# resident pages before each start): context for the timings, never ranked.
KINDS = ("build", "start", "size", "memory", "transfer", "rollout", "count", "load", "machine")
# The comparison tables of the report (and groups of the terminal summary), in order.
TABLES = ("build", "start", "model")
# The bar charts, in order: (file stem, builders shown): "all" builders as series, the
# "first" builder only (images are alike), or "-" for metrics without a builder.
CHARTS = (("context", "all"), ("build_time", "all"), ("image", "first"), ("startup", "-"),
          ("first_predict", "-"), ("memory", "-"), ("disk", "-"), ("rollout", "-"))


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    kind: str
    en: str  # short label for table headers and chart axes
    es: str
    description: str
    lower_is_better: bool = True
    table: str | None = None  # the comparison table that shows it (None: raw samples only)
    chart: str | None = None  # the bar chart that shows it as a series
    wins: bool = False  # it enters "which strategy wins what"
    headline: bool = False  # a column of the comparison printed at the end of every run
    # None: every default run of every strategy that applies produces it; otherwise when it
    # is produced (checked by the catalogue test against a real run).
    optional: str | None = None

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"metric {self.name}: unit {self.unit!r} is not one of "
                             f"{tuple(UNITS)} (bench/results/units.py)")
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name}: kind {self.kind!r} is not one of {KINDS}")
        if self.table is not None and self.table not in TABLES:
            raise ValueError(f"metric {self.name}: table {self.table!r} is not one of {TABLES}")
        if self.chart is not None and self.chart not in dict(CHARTS):
            raise ValueError(f"metric {self.name}: unknown chart {self.chart!r}")
