"""The smallest memory limit under which a strategy's container reaches its first correct
prediction: a bisection with a bounded number of starts.

Loading can need far more memory than serving (a compressed or whole-file load holds two
copies at its peak), so this is the number to put in `--memory` / a Kubernetes limit. A start
that is OOM-killed is recorded as such; one that stalls is bounded by the start timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bench.errors import StepFailed

GRANULE = 8 * 1024 * 1024  # limits are searched in steps of 8 MiB


@dataclass
class SearchResult:
    smallest_ok: int | None  # None: even the upper bound failed
    attempts: list[dict[str, object]] = field(default_factory=list)


def search(try_limit: Callable[[int], None], low: int, high: int, max_starts: int
           ) -> SearchResult:
    """Bisect in [low, high]: `try_limit(limit)` returns when the start served a correct
    prediction and raises StepFailed when it did not. `high` is tried first."""
    result = SearchResult(None)

    def attempt(limit: int) -> bool:
        try:
            try_limit(limit)
        except StepFailed as failure:
            outcome = "OOM-killed" if "OOM" in str(failure) else f"failed: {failure}"
            result.attempts.append({"limit_bytes": limit, "outcome": outcome})
            return False
        result.attempts.append({"limit_bytes": limit, "outcome": "ok"})
        return True

    if not attempt(high):
        return result
    good, bad = high, low
    while len(result.attempts) < max_starts and good - bad > GRANULE:
        middle = (good + bad) // 2 // GRANULE * GRANULE or GRANULE
        if middle in (good, bad):
            break
        if attempt(middle):
            good = middle
        else:
            bad = middle
    result.smallest_ok = good
    return result
