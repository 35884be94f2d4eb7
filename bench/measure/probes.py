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

# The poll interval grows with the time already waited (pyperf-style restraint: the observer
# must cost a small fraction of what it observes): 5% of the elapsed time, between 50 ms and
# 1 s. A 17 s load is then asked about 30 times instead of 850, and readiness itself is taken
# from the service's own stamps, so the interval only delays when the harness learns of it.
POLL_FRACTION = 0.05
POLL_MIN_S = 0.05
POLL_MAX_S = 1.0
REQUEST_TIMEOUT_S = 600.0  # a lazy first request waits for a multi-GB load


@dataclass(frozen=True)
class PredictOutcome:
    status: int
    seconds: float
    body: dict[str, Any]


class ServiceClient:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        """A service published on `port` of loopback, or of a node's address."""
        self.base = f"http://{host}:{port}"
        self.session = requests.Session()

    def close(self) -> None:
        self.session.close()

    def get(self, path: str, timeout: float = 2.0) -> requests.Response:
        return self.session.get(self.base + path, timeout=timeout)

    def predict(self, rows: Sequence[Sequence[float]], path: str = "/predict"
                ) -> PredictOutcome:
        """POST rows to /predict (or /predict_proba), timed."""
        started = time.perf_counter()
        response = self.session.post(self.base + path, json={"rows": rows},
                                     timeout=REQUEST_TIMEOUT_S)
        seconds = time.perf_counter() - started
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text[:200]}
        return PredictOutcome(response.status_code, seconds, body)


def poll_interval(elapsed_s: float) -> float:
    return min(POLL_MAX_S, max(POLL_MIN_S, POLL_FRACTION * elapsed_s))


def poll_until(
    attempt: Callable[[], bool], *, started: float, deadline: float,
    check_alive: Callable[[], None], what: str,
) -> float:
    """Call ``attempt`` until it returns True; returns the monotonic time it did.

    ``check_alive`` is called before every attempt and must rate-limit itself."""
    while True:
        now = time.monotonic()
        if now > deadline:
            raise StepFailed(f"timed out waiting for {what}")
        check_alive()
        try:
            if attempt():
                return time.monotonic()
        except requests.RequestException:
            pass
        time.sleep(poll_interval(time.monotonic() - started))


def predictions_match(actual: Sequence[Any], expected: Sequence[Any]) -> bool:
    """Numbers equal to float tolerance (the same model on the same rows gives the same
    numbers); a classifier's classes (strings, ints) exactly."""
    return len(actual) == len(expected) and all(
        _same(a, e) for a, e in zip(actual, expected, strict=True))


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, str) or isinstance(actual, str):
        return bool(actual == expected)
    if isinstance(expected, list) and isinstance(actual, list):  # a row of probabilities
        return predictions_match(actual, expected)
    return math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-6)


@dataclass(frozen=True)
class ProcessMemory:
    pss_bytes: int
    uss_bytes: int
    rss_peak_bytes: int
    children: tuple[tuple[int, int], ...] = ()  # (pss, uss) of each child: server workers


def process_tree_memory(root_pid: int, container_id: str) -> ProcessMemory | str:
    """PSS/USS now and peak RSS (VmHWM) of a process and its children, read from the host;
    or, when they cannot be read, the reason (stored as "not measured")."""
    try:
        cgroups = Path(f"/proc/{root_pid}/cgroup").read_text()
    except OSError:
        return ("the host cannot see the container's processes (remote engine or another "
                "PID namespace)")
    if container_id not in cgroups:
        # A PID from the engine that is not in the container's cgroup (reused, or another
        # namespace's number): reading it would measure some other process.
        return f"PID {root_pid} is not in the container's cgroup"
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
    except psutil.AccessDenied:
        return "not root: /proc/<pid>/smaps of the container's processes is not readable"
    except (psutil.Error, OSError) as error:
        return f"the server's processes could not be read ({type(error).__name__})"


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
