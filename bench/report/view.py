"""A stored run seen by the report: summaries indexed for lookup, strategies in run order,
one colour per strategy. Built from the results files only, never from the engine."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.results.metrics import MACHINE_ROW, Sample
from bench.results.store import StoredRun
from bench.results.summary import Summary, summarize

# Colour-blind-safe (Okabe-Ito, then Tableau) so every chart uses the same colour per strategy.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#9A8A00",
           "#000000", "#8c564b", "#7f7f7f", "#bcbd22", "#17becf")

Key = tuple[str, str, str, str]  # strategy, builder, condition, metric


@dataclass
class RunView:
    run: StoredRun
    summaries: dict[Key, Summary] = field(default_factory=dict)
    raw: dict[Key, list[float]] = field(default_factory=dict)
    # Per key, round -> the value of that round (the median where a round has several, as
    # replicas do): what the noise rule pairs. Warm-up starts are in neither.
    rounds: dict[Key, dict[int, float]] = field(default_factory=dict)
    strategies: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, run: StoredRun) -> RunView:
        view = cls(run)
        raw: dict[Key, list[float]] = defaultdict(list)
        by_round: dict[Key, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
        measured = [s for s in run.samples if not s.warmup]
        for s in measured:
            key = (s.strategy, s.builder, s.condition, s.metric)
            raw[key].append(s.value)
            by_round[key][s.round].append(s.value)
        view.raw = dict(raw)
        view.rounds = {key: {r: statistics.median(v) for r, v in rounds.items()}
                       for key, rounds in by_round.items()}
        view.summaries = {(s.strategy, s.builder, s.condition, s.metric): s
                          for s in summarize(measured)}
        order = list(run.document.get("strategies", {}))
        seen = {s.strategy for s in run.samples} - {"runtime", MACHINE_ROW}
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

    def outcome(self, strategy: str) -> dict[str, Any]:
        found: dict[str, Any] = self.run.document.get("strategies", {}).get(strategy, {})
        return found

    @property
    def plan(self) -> dict[str, Any]:
        """The order the trials ran in (schema 4); older runs ran strategy after strategy."""
        plan: dict[str, Any] = self.metadata.get("plan") or {"order": "sequential"}
        return plan

    def builders(self) -> list[str]:
        return [b for b in self.metadata.get("builders", []) if isinstance(b, str)]

    def has(self, metric: str) -> bool:
        return any(m == metric for (_s, _b, _c, m) in self.summaries)
