"""A sustained, closed-loop load on a ready service: C clients, each sending its next /predict
as soon as the last one answered, for a fixed time. Every tenth request of a client carries
100 rows, the others one row (a serving mix: mostly single lookups, some batches).

Real HTTP over loopback with one keep-alive session per client (requests); bounded in time
and in requests, so a service that answers nothing cannot hang the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import requests

BATCH_EVERY = 10  # every tenth request of a client is a batch
BATCH_ROWS = 100
REQUEST_TIMEOUT_S = 30.0
MAX_REQUESTS = 1_000_000


@dataclass
class LoadResult:
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""

    @property
    def requests(self) -> int:
        return len(self.latencies_ms) + self.errors


def run_load(port: int, row: Sequence[float], duration_s: float, concurrency: int,
             host: str = "127.0.0.1") -> LoadResult:
    """Run the load; every answer must be a 200 with one prediction per row sent."""
    url = f"http://{host}:{port}/predict"
    single = {"rows": [list(row)]}
    batch = {"rows": [list(row)] * BATCH_ROWS}
    result = LoadResult()
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + duration_s
    budget = [MAX_REQUESTS]

    def client() -> None:
        latencies: list[float] = []
        errors, first_error = 0, ""
        with requests.Session() as session:
            sent = 0
            while time.monotonic() < deadline:
                with lock:
                    if budget[0] <= 0:
                        break
                    budget[0] -= 1
                body = batch if sent % BATCH_EVERY == BATCH_EVERY - 1 else single
                sent += 1
                began = time.perf_counter()
                try:
                    response = session.post(url, json=body, timeout=REQUEST_TIMEOUT_S)
                    answered = (response.status_code == 200 and len(
                        response.json().get("predictions", [])) == len(body["rows"]))
                    reason = f"HTTP {response.status_code}"
                except (requests.RequestException, ValueError) as error:
                    answered, reason = False, type(error).__name__
                if answered:
                    latencies.append((time.perf_counter() - began) * 1000)
                else:
                    errors += 1
                    first_error = first_error or reason
        with lock:
            result.latencies_ms += latencies
            result.errors += errors
            result.first_error = result.first_error or first_error

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration_s + REQUEST_TIMEOUT_S + 5)
    result.seconds = time.monotonic() - started
    return result
