"""A canary of the machine, taken before every round: fixed work timed on the host.

If the same CPU task takes 1.6x longer in round 4 than in round 1, every start in round 4
ran on a slower machine: the report marks such a round instead of ranking strategies by it.
The CPU task hashes 64 MB already in memory; the read copies a fixed 64 MB file that the
page cache holds (memory bandwidth and the kernel's copy path); the memory task gathers 2 M
random 8-byte values from a 128 MB array (memory latency: what a tree walk and the
unpickler wait on, and what moved 63-144 ms within a minute here while the hash stayed
within 45-56 ms); CPU steal and iowait are the kernel's own counters (/proc/stat) over the
round that follows. The memory task is also taken just before every start, because the
machine's memory speed moves within a round.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

CANARY_BYTES = 64 * 1024 * 1024
GATHER_ARRAY_BYTES = 128 * 1024 * 1024
GATHERS = 2_000_000
PROC_STAT = Path("/proc/stat")
# A round whose canary took longer than this times the run's median is marked as slow.
SLOW_ROUND_FACTOR = 1.5


@dataclass(frozen=True)
class CpuTimes:
    """The aggregate `cpu` line of /proc/stat, in clock ticks."""

    total: int
    steal: int
    iowait: int

    @classmethod
    def read(cls, path: Path = PROC_STAT) -> CpuTimes | None:
        try:
            first = path.read_text().splitlines()[0].split()
        except (OSError, IndexError):
            return None
        # cpu user nice system idle iowait irq softirq steal guest guest_nice; guest time is
        # already counted in user, so the total stops at steal.
        values = [int(v) for v in first[1:9]]
        return cls(sum(values), values[7], values[4])

    def share_since(self, earlier: CpuTimes) -> tuple[float, float]:
        """(steal, iowait) as shares of the CPU time between `earlier` and this reading."""
        elapsed = self.total - earlier.total
        if elapsed <= 0:
            return 0.0, 0.0
        return (self.steal - earlier.steal) / elapsed, (self.iowait - earlier.iowait) / elapsed


@dataclass(frozen=True)
class CanaryReading:
    cpu_s: float
    read_s: float
    memory_s: float
    cpu_times: CpuTimes | None


class Canary:
    """The fixed work, made once per run (the buffer and the file), timed per round."""

    def __init__(self, scratch: Path) -> None:
        self._buffer = os.urandom(CANARY_BYTES)
        scratch.mkdir(parents=True, exist_ok=True)
        self._file = scratch / "canary.bin"
        self._file.write_bytes(self._buffer)
        self._file.read_bytes()  # in the page cache from now on
        import numpy as np  # the harness's own dependency; only the canary needs it here

        rng = np.random.default_rng(0)
        self._array = rng.integers(0, 2**62, GATHER_ARRAY_BYTES // 8, dtype=np.int64)
        self._indices = rng.integers(0, self._array.size, GATHERS)

    def memory(self) -> float:
        """Seconds to gather the fixed random values (memory latency, not bandwidth)."""
        began = time.perf_counter()
        self._array[self._indices].sum()
        return time.perf_counter() - began

    def measure(self) -> CanaryReading:
        began = time.perf_counter()
        hashlib.sha256(self._buffer).digest()
        cpu_s = time.perf_counter() - began
        began = time.perf_counter()
        with self._file.open("rb", buffering=0) as handle:
            while handle.read(8 * 1024 * 1024):
                pass
        read_s = time.perf_counter() - began
        return CanaryReading(cpu_s, read_s, self.memory(), CpuTimes.read())

    def warm(self) -> None:
        """Read the file back after something dropped the page cache."""
        self._file.read_bytes()

    def remove(self) -> None:
        self._file.unlink(missing_ok=True)


def slow_rounds(cpu_s_by_round: dict[int, float],
                factor: float = SLOW_ROUND_FACTOR) -> list[int]:
    """Rounds whose canary took more than `factor` times the run's median canary."""
    if not cpu_s_by_round:
        return []
    values = sorted(cpu_s_by_round.values())
    middle = len(values) // 2
    median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    return sorted(r for r, v in cpu_s_by_round.items() if v > factor * median)
