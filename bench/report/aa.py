"""The run's A/A control, from the stored results only: how far identical work was apart.

Strategies that share a `start_key` do the same work at start (volume, dockerignore, copyall
and copyall-dockerignore: the same code image, the same joblib file bind-mounted); the
default run also repeats `volume` under a second name (`volume-aa`, its `aa_of`). Whatever
separates them is noise, so:

- the *group spread* of a metric is max/min of the group's medians, with the same per round
  (max/min over the members measured in that round);
- the *floor* of a start-up or memory metric, which the noise rule (bench.results.noise) must exceed
  before it calls two strategies different, is that group spread: how far identical work
  was apart in this run. A first version took the control pair's own distance (the median
  of volume-aa's per-round ratios to volume) alone; on the committed 1 GB runs that one pair
  said 1.02x for the load while copyall-dockerignore, the same work, was 1.24x from volume in
  4 of 5 rounds: one pair is too few to measure a floor. `leave_out` gives the floor without
  one member, so that member can test the rule instead of feeding it;
- builds are not identical across the group (copyall copies the model into its image), so
  the floor of a build metric is the dedicated control's distance from what it repeats
  (volume-aa builds the same Dockerfile as volume). A run without either has no floor (1:
  the rule's minimum effect alone).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.report.view import RunView
from bench.results.noise import is_exact, symmetric

# The timings the A/A table opens the report with.
AA_METRICS = ("model_ready_s", "load_s", "ready_s", "predict_p50_ms")
# Above this spread of first correct prediction, identical work is too far apart for the run
# to rank strategies inside it: the report says the run is noisy, and which rounds.
NOISY_SPREAD = 1.15


@dataclass(frozen=True)
class GroupSpread:
    key: str
    metric: str
    medians: dict[str, float]  # member -> its median
    spread: float  # max / min of the medians
    per_round: dict[int, float]  # round -> max / min over the members measured in it

    @property
    def widest_rounds(self) -> list[int]:
        """Rounds whose own spread is wider than the run's NOISY_SPREAD."""
        return sorted(r for r, v in self.per_round.items() if v > NOISY_SPREAD)


def groups(view: RunView) -> dict[str, list[str]]:
    """start_key -> the strategies of the run that share it (groups of two or more)."""
    from strategies import start_keys

    # A run stored before schema 4 has no start_key: the registered strategies' own.
    known = start_keys() if int(view.run.document.get("schema_version", 0)) < 4 else {}
    found: dict[str, list[str]] = {}
    for name in view.strategies:
        key = view.outcome(name).get("start_key") or known.get(name)
        if key:
            found.setdefault(str(key), []).append(name)
    return {k: v for k, v in found.items() if len(v) >= 2}


def identical(view: RunView, a: str, b: str) -> bool:
    """Whether two strategies of the run do identical work at start (one A/A group)."""
    return any(a in members and b in members for members in groups(view).values())


def controls(view: RunView) -> dict[str, str]:
    """The dedicated A/A controls of the run: control -> the strategy it repeats."""
    found = {}
    for name in view.strategies:
        target = view.outcome(name).get("notes", {}).get("aa_of")
        if target and target in view.strategies:
            found[name] = str(target)
    return found


def _ratio(low: float, high: float) -> float:
    return high / low if low > 0 else float("inf")


def spread(view: RunView, key: str, members: list[str], metric: str) -> GroupSpread | None:
    medians: dict[str, float] = {}
    rounds: dict[int, list[float]] = {}
    for name in members:
        values = view.rounds.get((name, "-", "-", metric))
        if not values:
            continue
        medians[name] = statistics.median(values.values())
        for round_, value in values.items():
            rounds.setdefault(round_, []).append(value)
    if len(medians) < 2:
        return None
    return GroupSpread(key, metric, medians, _ratio(min(medians.values()), max(medians.values())),
                       {r: _ratio(min(v), max(v)) for r, v in sorted(rounds.items())
                        if len(v) >= 2})


def spreads(view: RunView) -> list[GroupSpread]:
    found = []
    for key, members in groups(view).items():
        for metric in AA_METRICS:
            measured = spread(view, key, members, metric)
            if measured is not None:
                found.append(measured)
    return found


def _paired_factor(view: RunView, a: str, b: str, metric: str, builder: str = "-",
                   condition: str = "-") -> float | None:
    first = view.rounds.get((a, builder, condition, metric))
    second = view.rounds.get((b, builder, condition, metric))
    if not first or not second:
        return None
    ratios = [second[r] / first[r] for r in sorted(set(first) & set(second)) if first[r] > 0]
    return symmetric(statistics.median(ratios)) if ratios else None


def floor(view: RunView, metric: str, builder: str = "-", leave_out: str | None = None
          ) -> float:
    """The run's noise floor for `metric`, as a factor >= 1 (see the module's docstring)."""
    if is_exact(metric):
        return 1.0
    if builder == "-":
        widest = 1.0
        for key, members in groups(view).items():
            kept = [m for m in members if m != leave_out]
            found = spread(view, key, kept, metric)
            if found is not None:
                widest = max(widest, found.spread)
        return widest
    for control, target in controls(view).items():
        paired = _paired_factor(view, target, control, metric, builder)
        if paired is not None:
            return paired
    return 1.0


def round_floors(view: RunView, metric: str, leave_out: str | None = None) -> dict[int, float]:
    """Per round, how far identical work was apart in it (the widest group), for start-up
    and memory metrics; empty where the run has no group."""
    if is_exact(metric):
        return {}
    found: dict[int, float] = {}
    for key, members in groups(view).items():
        measured = spread(view, key, [m for m in members if m != leave_out], metric)
        if measured is None:
            continue
        for round_, value in measured.per_round.items():
            found[round_] = max(found.get(round_, 1.0), value)
    return found
