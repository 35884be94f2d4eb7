"""Progress in a log (no terminal): periodic lines that never go quiet."""

from __future__ import annotations

import io

import pytest

from bench import progress as progress_module
from bench.progress import NON_TTY_UPDATE_EVERY_S, Progress


def test_frequent_updates_keep_printing_at_the_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found: every update restarted the wait, so updates faster than the interval printed
    nothing more (a 16-minute training went quiet after tree 792 of 2241)."""
    clock = [1000.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    stream = io.StringIO()
    progress = Progress(stream)
    with progress.step("training"):
        for tree in range(60):  # one update a second for a minute
            progress.update(f"trained {tree} trees")
            clock[0] += 1.0
    updates = [line for line in stream.getvalue().splitlines() if "trained" in line]
    assert len(updates) >= 60 / NON_TTY_UPDATE_EVERY_S - 1
