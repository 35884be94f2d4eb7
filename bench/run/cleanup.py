"""Leave nothing behind: labels for everything a run creates, removal on every exit path,
and a sweep of what killed earlier runs left.

SIGTERM is turned into the same exception as Ctrl-C so one ``finally`` handles both.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from bench.engine import KEEP_LABEL, OWNER_PID_LABEL, RUN_LABEL, Engine
from bench.progress import Progress
from bench.run import liveness


def run_labels(run_id: str, keep: bool) -> dict[str, str]:
    return {
        RUN_LABEL: run_id,
        OWNER_PID_LABEL: str(os.getpid()),
        KEEP_LABEL: "1" if keep else "0",
    }


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_runs(engine: Engine, progress: Progress) -> list[str]:
    """Remove the objects of earlier runs whose harness process is gone (killed -9, crashed).
    Images of runs started with --keep stay until `clean`."""
    from bench.host.node_teardown import remove_dead_clusters

    swept = remove_dead_clusters(engine, progress)  # node engines of a run killed with -9
    for run_id in sorted(engine.run_labels(RUN_LABEL)):
        if liveness.is_running(run_id) or any(
                _pid_alive(pid) for pid in engine.owner_pids(run_id)):
            continue
        keep_images = engine.keeps(run_id)
        removed = engine.remove_labelled(f"{RUN_LABEL}={run_id}", images=not keep_images)
        if any(removed.values()):
            progress.info(f"swept leftovers of dead run {run_id}: {removed}")
            swept.append(run_id)
    return swept


def remove_ended_runs(engine: Engine) -> tuple[dict[str, int], list[str]]:
    """`clean`: remove every run's objects, --keep images included, except those of runs
    still running (in another terminal, or the other engine lane of the tests): (what was
    removed, the runs left)."""
    removed = {"containers": 0, "images": 0, "volumes": 0, "networks": 0}
    running = []
    for run_id in sorted(engine.run_labels(RUN_LABEL)):
        if liveness.is_running(run_id):
            running.append(run_id)
            continue
        for kind, count in engine.remove_labelled(f"{RUN_LABEL}={run_id}").items():
            removed[kind] += count
    return removed, running


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    # A shell starts background jobs with SIGINT ignored, and Python then never raises
    # KeyboardInterrupt: restore it so Ctrl-C or `kill -INT` always cleans up.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def remove_run(engine: Engine, run_id: str, keep_images: bool, progress: Progress) -> None:
    # Ignore a second Ctrl-C while removing, so cleanup itself is not cut short.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        removed = engine.remove_labelled(f"{RUN_LABEL}={run_id}", images=not keep_images)
        if any(removed.values()):
            progress.info(f"removed run objects: {removed}"
                          + (" (images kept: --keep; `python -m bench clean` removes them)"
                             if keep_images else ""))
    finally:
        signal.signal(signal.SIGINT, previous)
