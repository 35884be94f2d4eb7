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


def test_a_count_in_a_log_prints_percent_rate_and_time_left_at_the_interval(
        monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock[0])
    stream = io.StringIO()
    progress = Progress(stream)
    with progress.step("training"):
        for tree in range(1, 101):  # 100 trees, one every 0.5 s: 50 s in all
            clock[0] += 0.5
            progress.count(tree, 100, "trees")
    lines = [line.strip() for line in stream.getvalue().splitlines() if "trees" in line]
    # A line every 5 s (10 of them over 50 s), the last one at 100%.
    assert 50 / NON_TTY_UPDATE_EVERY_S - 1 <= len(lines) <= 50 / NON_TTY_UPDATE_EVERY_S + 1
    assert lines[0].startswith("10% 10trees/100trees [00:05<00:45")  # the ETA from the rate
    assert lines[-1].startswith("100% 100trees/100trees")


def test_increments_from_many_threads_add_up(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    stream = io.StringIO()
    progress = Progress(stream)
    with progress.step("uploading"):
        add = progress.adder(8 * 1000 * 1000)
        threads = [threading.Thread(target=lambda: [add(1000) for _ in range(1000)])
                   for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert "100% 8.00MB/8.00MB" in stream.getvalue()
