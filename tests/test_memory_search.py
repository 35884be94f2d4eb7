"""The memory-limit bisection, with a stand-in for container starts (the real search is
exercised against the engine in tests/integration/test_scale.py)."""

from __future__ import annotations

from bench.errors import StepFailed
from bench.measure.memory_search import GRANULE, search

MIB = 1024 * 1024


def starts_that_need(needed: int) -> tuple[list[int], object]:
    tried: list[int] = []

    def try_limit(limit: int) -> None:
        tried.append(limit)
        if limit < needed:
            raise StepFailed("container was OOM-killed")
    return tried, try_limit


def test_bisection_finds_the_smallest_limit_within_a_granule() -> None:
    tried, try_limit = starts_that_need(300 * MIB)
    result = search(try_limit, 64 * MIB, 2048 * MIB, max_starts=20)  # type: ignore[arg-type]
    assert result.smallest_ok is not None
    assert 300 * MIB <= result.smallest_ok <= 300 * MIB + GRANULE
    assert tried[0] == 2048 * MIB
    assert {a["outcome"] for a in result.attempts} == {"ok", "OOM-killed"}


def test_the_number_of_starts_is_bounded() -> None:
    tried, try_limit = starts_that_need(300 * MIB)
    result = search(try_limit, 64 * MIB, 2048 * MIB, max_starts=4)  # type: ignore[arg-type]
    assert len(tried) == 4 and result.smallest_ok is not None
    assert result.smallest_ok >= 300 * MIB  # coarser, never wrong


def test_a_strategy_that_fails_even_at_the_upper_bound_has_no_limit() -> None:
    _tried, try_limit = starts_that_need(10**12)
    result = search(try_limit, 64 * MIB, 512 * MIB, max_starts=7)  # type: ignore[arg-type]
    assert result.smallest_ok is None and len(result.attempts) == 1
