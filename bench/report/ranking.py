"""Who wins a metric, computed once (the terminal's stars and the report's winners table
only format it), with the noise rule (bench.results.noise) and the run's A/A floor (bench.report.aa).

Entries are ranked by median. The tie is the best and every entry up to the last one the
rule does not separate from the best: an entry ranked between two tied ones is in the tie
too, so no runner-up ever has a better median than a tie member. The runner-up is the best
entry outside the tie; the worst is the last entry, with its factor over the best only when
the rule separates the two. Identical values (exact sizes within 1%) are one tie.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report import aa
from bench.report.view import RunView
from bench.results.metrics import METRICS
from bench.results.noise import Rounds, is_exact, judge


@dataclass(frozen=True)
class Entry:
    strategy: str
    condition: str
    median: float
    rounds: Rounds


@dataclass(frozen=True)
class Ranking:
    metric: str
    builder: str
    ranked: list[Entry]  # best first
    tie: list[Entry]  # the best and those within noise of it (len 1: a clear winner)
    floor: float
    round_floors: Rounds

    @property
    def best(self) -> Entry:
        return self.ranked[0]

    @property
    def runner_up(self) -> Entry | None:
        rest = self.ranked[len(self.tie):]
        return rest[0] if rest else None

    @property
    def worst(self) -> Entry | None:
        return self.ranked[-1] if len(self.ranked) > len(self.tie) else None

    @property
    def worst_over_best(self) -> float | None:
        worst = self.worst
        if worst is None or not self.best.median:
            return None
        return worst.median / self.best.median

    @property
    def worst_group(self) -> list[Entry]:
        """The worst, and every entry outside the tie identical to it (exact sizes only: a
        byte-identical context is not "the" worst alone)."""
        worst = self.worst
        if worst is None:
            return []
        if not is_exact(self.metric):
            return [worst]
        outside = self.ranked[len(self.tie):]
        return [e for e in outside
                if not judge(self.metric, worst.rounds, e.rounds).differs]


def _differs(metric: str, a: Entry, b: Entry, floor: float, round_floors: Rounds) -> bool:
    return judge(metric, a.rounds, b.rounds, floor, round_floors).differs


def rank(metric: str, builder: str, entries: list[Entry], floor: float = 1.0,
         round_floors: Rounds | None = None) -> Ranking:
    reverse = not METRICS[metric].lower_is_better
    ranked = sorted(entries, key=lambda e: e.median, reverse=reverse)
    best = ranked[0]
    floors = dict(round_floors or {})
    last_tied = 0
    for index, entry in enumerate(ranked[1:], start=1):
        if not _differs(metric, best, entry, floor, floors):
            last_tied = index
    return Ranking(metric, builder, ranked, ranked[:last_tied + 1], floor, floors)


def entries(view: RunView, metric: str, builder: str,
            rows: list[tuple[str, str]] | None = None) -> list[Entry]:
    """The entries of a metric: every (strategy, condition) measured, or the given rows
    (a row's own condition, else its strategy's unconditioned value)."""
    keys = rows if rows is not None else [
        (s, c) for (s, b, c, m) in view.summaries if m == metric and b == builder]
    found = []
    for strategy, condition in keys:
        summary = (view.summaries.get((strategy, builder, condition, metric))
                   or view.summaries.get((strategy, builder, "-", metric)))
        if summary is None:
            continue
        used = summary.condition
        found.append(Entry(strategy, condition, summary.median,
                           view.rounds.get((strategy, builder, used, metric), {})))
    return found


def ranking(view: RunView, metric: str, builder: str,
            rows: list[tuple[str, str]] | None = None) -> Ranking | None:
    found = entries(view, metric, builder, rows)
    if len(found) < 2:
        return None
    floors = aa.round_floors(view, metric) if builder == "-" else {}
    return rank(metric, builder, found, aa.floor(view, metric, builder), floors)
