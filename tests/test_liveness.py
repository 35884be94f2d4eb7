"""A run's lock: held while the run lives, gone when its process ends, however it ends."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from bench.run import liveness

HOLDER = """
import sys, time
from pathlib import Path
from bench.run import liveness
with liveness.holding(sys.argv[1], Path(sys.argv[2])):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def _holder(run_id: str, cache: Path, seconds: float) -> subprocess.Popen[str]:
    process = subprocess.Popen([sys.executable, "-c", HOLDER, run_id, str(cache),
                                str(seconds)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    return process


def test_a_run_is_running_while_its_process_holds_the_lock(tmp_path: Path) -> None:
    assert not liveness.is_running("r1", tmp_path)
    holder = _holder("r1", tmp_path, 60)
    try:
        assert liveness.is_running("r1", tmp_path)
        assert not liveness.is_running("r2", tmp_path)  # another run's lock is its own
    finally:
        holder.send_signal(signal.SIGKILL)  # as `kill -9`: no finally runs in the holder
        holder.wait()
    # The kernel released the lock; the file is left behind and means nothing.
    assert (tmp_path / liveness.LOCKS_DIR / "r1.lock").exists()
    assert not liveness.is_running("r1", tmp_path)


def test_a_run_that_ends_releases_its_lock_and_removes_the_file(tmp_path: Path) -> None:
    holder = _holder("r1", tmp_path, 0.2)
    assert holder.wait(timeout=30) == 0
    assert not (tmp_path / liveness.LOCKS_DIR / "r1.lock").exists()
    assert not liveness.is_running("r1", tmp_path)
    with liveness.holding("r1", tmp_path):  # held again, here: the check does not wait
        assert liveness.is_running("r1", tmp_path)
