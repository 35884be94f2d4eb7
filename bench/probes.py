"""Probes of a running service: HTTP from the host, and memory of its processes.

HTTP goes to the port the container published on 127.0.0.1; memory is read from the host's
/proc (psutil), so the service needs no tooling of its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import requests

from bench.errors import StepFailed

POLL_INTERVAL_S = 0.02
REQUEST_TIMEOUT_S = 600.0  # a lazy first request waits for a multi-GB load


@dataclass(frozen=True)
class PredictOutcome:
    status: int
    seconds: float
    body: dict[str, Any]


class ServiceClient:
    def __init__(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def get(self, path: str, timeout: float = 2.0) -> requests.Response:
        return self.session.get(self.base + path, timeout=timeout)

    def predict(self, rows: Sequence[Sequence[float]]) -> PredictOutcome:
        started = time.perf_counter()
        response = self.session.post(self.base + "/predict", json={"rows": rows},
                                     timeout=REQUEST_TIMEOUT_S)
        seconds = time.perf_counter() - started
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text[:200]}
        return PredictOutcome(response.status_code, seconds, body)


def poll_until(
    attempt: Callable[[], bool], *, deadline: float, check_alive: Callable[[], None], what: str
) -> float:
    """Call ``attempt`` until it returns True; returns the monotonic time it did."""
    last_alive_check = 0.0
    while True:
        now = time.monotonic()
        if now > deadline:
            raise StepFailed(f"timed out waiting for {what}")
        if now - last_alive_check > 0.25:
            check_alive()
            last_alive_check = now
        try:
            if attempt():
                return time.monotonic()
        except requests.RequestException:
            pass
        time.sleep(POLL_INTERVAL_S)


def predictions_match(actual: Sequence[float], expected: Sequence[float]) -> bool:
    """Equal to float tolerance: the same model on the same rows gives the same numbers."""
    return len(actual) == len(expected) and all(
        math.isclose(a, e, rel_tol=1e-9, abs_tol=1e-6) for a, e in zip(actual, expected, strict=True)
    )


@dataclass(frozen=True)
class ProcessMemory:
    pss_bytes: int
    uss_bytes: int
    rss_peak_bytes: int
    children: tuple[tuple[int, int], ...] = ()  # (pss, uss) of each child: server workers


def process_tree_memory(root_pid: int) -> ProcessMemory | None:
    """PSS/USS now and peak RSS (VmHWM) of a process and its children, read from the host.
    None when the host cannot see the processes (another PID namespace, not root)."""
    try:
        root = psutil.Process(root_pid)
        processes = [root, *root.children(recursive=True)]
        pss = uss = peak = 0
        children = []
        for process in processes:
            full = process.memory_full_info()
            pss += int(getattr(full, "pss", 0))
            uss += int(getattr(full, "uss", 0))
            peak += _vm_hwm(process.pid)
            # Workers only: multiprocessing's resource tracker is a helper, not a server.
            if process.pid != root_pid and not any("resource_tracker" in part
                                                   for part in process.cmdline()):
                children.append((int(getattr(full, "pss", 0)), int(getattr(full, "uss", 0))))
        return ProcessMemory(pss, uss, peak, tuple(children))
    except (psutil.Error, OSError):
        return None


def _vm_hwm(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    index = fraction * (len(ordered) - 1)
    low, high = math.floor(index), math.ceil(index)
    return ordered[low] + (ordered[high] - ordered[low]) * (index - low)
