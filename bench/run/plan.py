"""The order a run measures in: a pure plan of steps the runner dispatches.

On a machine whose speed drifts 2-3x within a day, running every trial of one strategy, then
the next, confounds strategy with time: identical work measured an hour apart differs 1.57x.
So by default the plan interleaves (as Google Benchmark's
``--benchmark_enable_random_interleaving`` does for micro-benchmarks, google/benchmark#1051):
every strategy is opened (prepared and built) first, then round r runs trial r of every
strategy in an order shuffled per round from a recorded seed, and every strategy is closed
(memory search, rollout, teardown) after the last round. A canary of the machine is taken
before every round. ``sequential`` keeps the old order (and its smaller peak of resources:
one strategy's servers and volumes at a time), with a canary before each strategy's trials.

Round 0 holds the warm-up starts (one per strategy, right after its build, stored but never
summarised) unless warm-up is off.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

Order = Literal["interleaved", "sequential"]
ORDERS: tuple[Order, ...] = ("interleaved", "sequential")
StepKind = Literal["open", "canary", "trial", "close"]


@dataclass(frozen=True)
class Step:
    kind: StepKind
    strategy: str = ""  # "" for a canary
    round: int = 0  # the round a trial or canary belongs to (0: warm-up / outside rounds)
    trial: int = 0  # the strategy's trial number (0: its warm-up)

    @property
    def warmup(self) -> bool:
        return self.kind == "trial" and self.trial == 0

    def describe(self) -> dict[str, object]:
        return asdict(self)


def plan(names: Sequence[str], trials: int, order: Order, rng: random.Random,
         warmup: bool = True) -> list[Step]:
    """The steps of a run of `names`, `trials` measured starts each."""
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}: one of {ORDERS}")
    if order == "sequential":
        steps: list[Step] = []
        for index, name in enumerate(names, start=1):
            steps.append(Step("open", name))
            if warmup:
                steps.append(Step("trial", name, 0, 0))
            steps.append(Step("canary", "", index))
            steps += [Step("trial", name, trial, trial) for trial in range(1, trials + 1)]
            steps.append(Step("close", name))
        return steps
    steps = []
    for name in names:  # each warm-up right after its own build, as in the sequential plan
        steps.append(Step("open", name))
        if warmup:
            steps.append(Step("trial", name, 0, 0))
    for round_ in range(1, trials + 1):
        steps.append(Step("canary", "", round_))
        shuffled = list(names)
        rng.shuffle(shuffled)
        steps += [Step("trial", name, round_, round_) for name in shuffled]
    steps += [Step("close", name) for name in names]
    return steps


def trial_order(steps: Sequence[Step]) -> dict[int, list[str]]:
    """Round -> the strategies in the order their trials ran (what run.json stores)."""
    rounds: dict[int, list[str]] = {}
    for step in steps:
        if step.kind == "trial":
            rounds.setdefault(step.round, []).append(step.strategy)
    return rounds
