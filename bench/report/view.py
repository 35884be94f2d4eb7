"""A stored run seen by the report: summaries indexed for lookup, strategies in run order,
one colour per strategy. Built from the results files only, never from the engine."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.metrics import Sample
from bench.results import StoredRun
from bench.summary import Summary, summarize

# Colour-blind-safe (Okabe-Ito, then Tableau) so every chart uses the same colour per strategy.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#9A8A00",
           "#000000", "#8c564b", "#7f7f7f", "#bcbd22", "#17becf")

Key = tuple[str, str, str, str]  # strategy, builder, condition, metric


@dataclass
class RunView:
    run: StoredRun
    summaries: dict[Key, Summary] = field(default_factory=dict)
    raw: dict[Key, list[float]] = field(default_factory=dict)
    strategies: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, run: StoredRun) -> RunView:
        view = cls(run)
        raw: dict[Key, list[float]] = defaultdict(list)
        for s in run.samples:
            raw[(s.strategy, s.builder, s.condition, s.metric)].append(s.value)
        view.raw = dict(raw)
        view.summaries = {(s.strategy, s.builder, s.condition, s.metric): s
                          for s in summarize(run.samples)}
        order = list(run.document.get("strategies", {}))
        seen = {s.strategy for s in run.samples} - {"runtime"}
        view.strategies = [name for name in order if name in seen]
        view.strategies += sorted(seen - set(view.strategies))
        return view

    @property
    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = self.run.document.get("metadata", {})
        return meta

    @property
    def samples(self) -> list[Sample]:
        return self.run.samples

    def colour(self, strategy: str) -> str:
        index = self.strategies.index(strategy) if strategy in self.strategies else 0
        return PALETTE[index % len(PALETTE)]

    def get(self, strategy: str, metric: str, builder: str = "-", condition: str | None = None
            ) -> Summary | None:
        """The summary of one metric; condition None picks the first condition measured."""
        if condition is not None:
            return self.summaries.get((strategy, builder, condition, metric))
        for (s, b, _c, m), summary in self.summaries.items():
            if (s, b, m) == (strategy, builder, metric):
                return summary
        return None

    def conditions(self, strategy: str, metric: str) -> list[str]:
        return [c for (s, _b, c, m) in self.summaries if s == strategy and m == metric]

    def builders(self) -> list[str]:
        return [b for b in self.metadata.get("builders", []) if isinstance(b, str)]

    def has(self, metric: str) -> bool:
        return any(m == metric for (_s, _b, _c, m) in self.summaries)
