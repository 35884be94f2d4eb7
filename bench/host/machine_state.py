"""The same machine state before every start.

Measured here before this module: at 1 GB, the first start of a strategy right after another
strategy built and removed a 1 GB layer loaded in 2.80 s against 1.00-1.12 s for every other
start of the same work; at 5.45 GB, starts that followed two 5.4 GB layer builds loaded 2x
slower with the model fully resident, because 12-22 GB of page cache (the layers) had to be
reclaimed by the unpickler's allocations as it went. So before every start:

1. wait until the engine is idle: dockerd and containerd below IDLE_CPU_SHARE of one core over
   a second, and Dirty + Writeback under DIRTY_LIMIT_BYTES (with a time-out);
2. for a warm start, read the start's model files back, so that "warm" means the model
   resident; where free memory is short of what the load may need (load_needs), first drop
   the page cache (root only), so that little else is cached; for a cold start
   (--drop-caches) drop it and read nothing back;
3. record MemFree, MemAvailable, the share of the model files' pages resident (mincore, as
   util-linux `fincore` shows) and the wait.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.host import page_cache

ENGINE_PROCESSES = ("dockerd", "containerd")
IDLE_CPU_SHARE = 0.05  # of one core, over IDLE_WINDOW_S
# 20 clock ticks: at most one tick of engine CPU passes as idle; every start waits at least
# this long, so it is short (the 64 MB default run makes 72 starts).
IDLE_WINDOW_S = 0.2
DIRTY_LIMIT_BYTES = 64 * 1024 * 1024
IDLE_TIMEOUT_S = 120.0
READ_CHUNK = 8 * 1024 * 1024
PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class MachineState:
    """What a start found: the wait before it, memory, and the model's resident share."""

    settle_wait_s: float
    idle: bool  # False: the time-out ended the wait
    mem_free_bytes: int
    mem_available_bytes: int
    model_resident_fraction: float | None  # None: no model file the host can read
    page_cache_dropped: bool
    memory_canary_s: float | None = None  # bench.run.canary's memory task, just before the start


# A load's peak is about twice the model file (measured on every load path, DESIGN.md 5),
# plus the service's own memory and room for the harness.
LOAD_MEMORY_FACTOR = 2.0
LOAD_MEMORY_MARGIN_BYTES = 2 * 1024**3


def load_needs(model_bytes: int) -> int:
    """Free memory a start may need while its model loads."""
    return int(LOAD_MEMORY_FACTOR * model_bytes + LOAD_MEMORY_MARGIN_BYTES)


def meminfo() -> dict[str, int]:
    values = {}
    for line in page_cache.MEMINFO.read_text().splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts:
            values[key] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
    return values


def _engine_processes() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["name"]):
        if process.info["name"] in ENGINE_PROCESSES:
            found.append(process)
    return found


def _engine_cpu_share(processes: Sequence[psutil.Process], window_s: float) -> float:
    """CPU seconds the engine's processes used per second of the window, summed."""
    def cpu(process: psutil.Process) -> float:
        try:
            times = process.cpu_times()
            return float(times.user + times.system)
        except psutil.Error:
            return 0.0

    before = sum(cpu(p) for p in processes)
    time.sleep(window_s)
    return (sum(cpu(p) for p in processes) - before) / window_s


def wait_idle(timeout_s: float = IDLE_TIMEOUT_S, window_s: float = IDLE_WINDOW_S
              ) -> tuple[float, bool]:
    """Wait until the engine is idle and dirty pages are written back: (seconds, idle)."""
    began = time.monotonic()
    processes = _engine_processes()
    while True:
        info = meminfo()
        dirty = info.get("Dirty", 0) + info.get("Writeback", 0)
        busy = _engine_cpu_share(processes, window_s) if processes else 0.0
        if busy < IDLE_CPU_SHARE and dirty < DIRTY_LIMIT_BYTES:
            return time.monotonic() - began, True
        if time.monotonic() - began > timeout_s:
            return time.monotonic() - began, False
        if dirty >= DIRTY_LIMIT_BYTES:
            os.sync()


def files_under(paths: Iterable[Path]) -> list[Path]:
    """Every regular file under the given files and folders (links not followed)."""
    found: list[Path] = []
    for path in paths:
        if path.is_file():
            found.append(path)
        elif path.is_dir():
            for folder, _dirs, names in os.walk(path):
                found += [Path(folder) / n for n in sorted(names)
                          if (Path(folder) / n).is_file()]
    return found


def read_back(files: Iterable[Path]) -> None:
    """Read the files whole, so that every page is resident (WILLNEED alone is a hint)."""
    for path in files:
        try:
            with path.open("rb", buffering=0) as handle:
                while handle.read(READ_CHUNK):
                    pass
        except OSError:
            continue  # unreadable here (another user's volume): mincore says what it got


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def resident_pages(path: Path) -> tuple[int, int]:
    """(resident pages, pages) of one file, from mincore(2) over a read-only mapping."""
    size = path.stat().st_size
    pages = (size + PAGE - 1) // PAGE
    if size == 0:
        return 0, 0
    vector = (ctypes.c_ubyte * pages)()
    with path.open("rb") as handle:
        # A private writable mapping: ctypes needs a writable buffer for the address; nothing
        # is written, so every page mincore sees is the page cache's own.
        mapped = mmap.mmap(handle.fileno(), size, flags=mmap.MAP_PRIVATE,
                           prot=mmap.PROT_READ | mmap.PROT_WRITE)
        try:
            anchor = ctypes.c_char.from_buffer(mapped)
            code = _libc.mincore(ctypes.c_void_p(ctypes.addressof(anchor)),
                                 ctypes.c_size_t(size), vector)
            del anchor  # the mapping closes only once no pointer into it is left
        finally:
            mapped.close()
    if code != 0:
        raise OSError(ctypes.get_errno(), f"mincore {path}")
    return sum(1 for v in vector if v & 1), pages


def resident_fraction(files: Sequence[Path]) -> float | None:
    resident = total = 0
    for path in files:
        try:
            r, t = resident_pages(path)
        except (OSError, ValueError, TypeError):
            continue
        resident, total = resident + r, total + t
    return resident / total if total else None


def settle(model_files: Sequence[Path], *, cold: bool, can_drop: bool,
           timeout_s: float = IDLE_TIMEOUT_S) -> MachineState:
    """Bring the machine to the start's state (see the module's docstring) and read it.
    `can_drop` False (not root, or --no-cache-reset on a warm run): the page cache stays as
    the last start left it and the model files are read back on top of it."""
    waited, idle = wait_idle(timeout_s)
    files = files_under(model_files)
    dropped = False
    if can_drop:
        page_cache.drop()
        dropped = True
    if not cold:
        read_back(files)
    info = meminfo()
    return MachineState(waited, idle, info.get("MemFree", 0), info.get("MemAvailable", 0),
                        resident_fraction(files), dropped)
