"""The run's plan (bench.run.plan): interleaved by default, reproducible from its seed."""

from __future__ import annotations

import random

import pytest

from bench.run.plan import Step, plan, trial_order

NAMES = ["baked", "volume", "volume-aa", "registry", "mmap-registry", "compressed-gzip9"]


def test_every_round_runs_every_strategy_once_after_every_build() -> None:
    steps = plan(NAMES, 5, "interleaved", random.Random(1))
    kinds = [s.kind for s in steps]
    # Every strategy is opened (prepared, built, warmed up) before the first round, closed
    # after the last: everything a strategy's trials need lives until the end.
    first_canary, last_trial = kinds.index("canary"), len(kinds) - kinds[::-1].index("trial") - 1
    assert all(k in ("open", "trial") for k in kinds[:first_canary])
    assert all(k == "close" for k in kinds[last_trial + 1:])
    rounds = trial_order(steps)
    assert sorted(rounds) == [0, 1, 2, 3, 4, 5]
    for round_, names in rounds.items():
        assert sorted(names) == sorted(NAMES), round_
    # Trial r of every strategy runs in round r; round 0 holds the warm-ups.
    assert all(s.trial == s.round for s in steps if s.kind == "trial")
    assert {s.strategy for s in steps if s.warmup} == set(NAMES)


def test_the_order_is_shuffled_per_round_and_repeats_from_its_seed() -> None:
    one = trial_order(plan(NAMES, 5, "interleaved", random.Random(7)))
    again = trial_order(plan(NAMES, 5, "interleaved", random.Random(7)))
    other = trial_order(plan(NAMES, 5, "interleaved", random.Random(8)))
    assert one == again
    assert one != other
    # Not one fixed order: the rounds differ among themselves, so no strategy always runs
    # right after the same neighbour (as copyall-dockerignore always followed copyall).
    measured = [tuple(names) for r, names in one.items() if r > 0]
    assert len(set(measured)) > 1


def test_a_canary_opens_every_round() -> None:
    steps = plan(NAMES, 3, "interleaved", random.Random(0))
    for index, step in enumerate(steps):
        if step.kind == "trial" and step.round > 0:
            before = [s for s in steps[:index] if s.kind == "canary"]
            assert before and before[-1].round == step.round


def test_sequential_keeps_one_strategy_at_a_time() -> None:
    steps = plan(NAMES[:2], 2, "sequential", random.Random(0), warmup=False)
    assert steps == [Step("open", "baked"), Step("canary", "", 1),
                     Step("trial", "baked", 1, 1), Step("trial", "baked", 2, 2),
                     Step("close", "baked"), Step("open", "volume"), Step("canary", "", 2),
                     Step("trial", "volume", 1, 1), Step("trial", "volume", 2, 2),
                     Step("close", "volume")]


def test_without_warm_up_no_start_is_left_out() -> None:
    steps = plan(NAMES, 2, "interleaved", random.Random(0), warmup=False)
    assert not any(s.warmup for s in steps)
    assert sum(1 for s in steps if s.kind == "trial") == 2 * len(NAMES)


def test_an_unknown_order_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown order"):
        plan(NAMES, 2, "backwards", random.Random(0))  # type: ignore[arg-type]
