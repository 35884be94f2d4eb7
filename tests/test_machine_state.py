"""The machine's state before a start (bench.host.machine_state) and the canary (bench.run.canary),
on real files and the real kernel counters."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.host import machine_state, page_cache
from bench.run.canary import Canary, CpuTimes, slow_rounds

# The page cache is the host's: dropped here, it would be dropped under the engine's tests.
pytestmark = pytest.mark.page_cache


def _file(tmp_path: Path, size: int = 8 * 1024 * 1024) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(os.urandom(size))
    return path


def test_mincore_counts_the_pages_a_read_brought_in(tmp_path: Path) -> None:
    path = _file(tmp_path)
    with path.open("rb") as handle:  # evict this file alone, without root
        os.fsync(handle.fileno())
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    resident, pages = machine_state.resident_pages(path)
    assert pages == 8 * 1024 * 1024 // machine_state.PAGE
    assert resident < pages / 2
    machine_state.read_back([path])
    assert machine_state.resident_pages(path) == (pages, pages)


@pytest.mark.skipif(not page_cache.can_drop(), reason="dropping the page cache needs root")
def test_a_warm_start_finds_its_model_resident_and_a_cold_one_does_not(
        tmp_path: Path) -> None:
    path = _file(tmp_path)
    warm = machine_state.settle([tmp_path], cold=False, can_drop=True, timeout_s=30)
    assert warm.page_cache_dropped and warm.model_resident_fraction == 1.0
    cold = machine_state.settle([path], cold=True, can_drop=True, timeout_s=30)
    assert cold.model_resident_fraction is not None and cold.model_resident_fraction < 0.1
    assert cold.mem_free_bytes > 0 and cold.mem_available_bytes > 0


def test_no_readable_model_file_is_no_fraction(tmp_path: Path) -> None:
    state = machine_state.settle([tmp_path / "absent"], cold=False, can_drop=False,
                                 timeout_s=5)
    assert state.model_resident_fraction is None and not state.page_cache_dropped


def test_the_canary_times_fixed_work_and_reads_the_kernel_counters(tmp_path: Path) -> None:
    canary = Canary(tmp_path)
    first = canary.measure()
    assert first.cpu_s > 0 and first.read_s > 0 and first.memory_s > 0
    assert first.cpu_times is not None
    busy = sum(range(3_000_000))  # some CPU time between the two readings
    later = CpuTimes.read()
    assert later is not None and busy > 0
    steal, iowait = later.share_since(first.cpu_times)
    assert 0 <= steal <= 1 and 0 <= iowait <= 1
    canary.remove()
    assert not (tmp_path / "canary.bin").exists()


def test_proc_stat_is_read_as_the_kernel_writes_it(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 800 30 0 0 20 0 0\ncpu0 1 2 3\n")
    times = CpuTimes.read(stat)
    assert times == CpuTimes(1000, 20, 30)
    later = CpuTimes(2000, 120, 30)
    assert later.share_since(times) == (0.1, 0.0)


def test_a_round_is_slow_beyond_one_and_a_half_times_the_median() -> None:
    assert slow_rounds({1: 0.040, 2: 0.042, 3: 0.070, 4: 0.041}) == [3]
    assert slow_rounds({1: 0.040, 2: 0.059}) == []
    assert slow_rounds({}) == []
