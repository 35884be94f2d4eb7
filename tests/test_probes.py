"""Probes that read memory from the host: never a process outside the container."""

from __future__ import annotations

import os

from bench.measure.probes import ProcessMemory, poll_interval, process_tree_memory


def test_a_pid_outside_the_containers_cgroup_is_not_measured_but_explained() -> None:
    """Found: the PID read from the engine was never checked against the container's cgroup,
    so a reused or foreign PID would have measured some other process."""
    outcome = process_tree_memory(os.getpid(), "0123456789ab" * 5 + "cdef")
    assert not isinstance(outcome, ProcessMemory)
    assert "not in the container's cgroup" in outcome


def test_a_pid_the_host_cannot_see_is_not_measured_but_explained() -> None:
    outcome = process_tree_memory(2**22 + 12345, "0123456789ab")  # above pid_max: never exists
    assert isinstance(outcome, str) and "cannot see" in outcome


def test_the_poll_interval_grows_with_the_wait_and_stays_bounded() -> None:
    intervals = [poll_interval(t) for t in (0.0, 1.0, 5.0, 20.0, 600.0)]
    assert intervals == sorted(intervals)
    assert intervals[0] > 0 and intervals[-1] <= 1.0
    # Over a 20 s load from 2 s on, the probe asks about 50 times (the old one: 1,000 times).
    elapsed, polls = 2.0, 0
    while elapsed < 22.0:
        elapsed += poll_interval(elapsed)
        polls += 1
    assert polls <= 60
