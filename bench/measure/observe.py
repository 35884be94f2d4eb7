"""Measuring a started container without disturbing it: probes at a growing interval, one
correct prediction, latencies, the service's own stamps, memory at rest, an optional load.

Times are taken on the host from just before the engine's start call. A container that
exits, is OOM-killed, or never becomes ready fails the start with the reason and its last
log lines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from bench.engine import ContainerState, Engine
from bench.errors import StepFailed
from bench.measure.load_test import run_load
from bench.measure.measurement import (
    DiskParts,
    NodeFetch,
    PagedFill,
    StartMeasurement,
    SustainedLoad,
    Timeline,
    Transfer,
)
from bench.measure.own_predict import batch_of
from bench.measure.probes import (
    PredictOutcome,
    ProcessMemory,
    ServiceClient,
    poll_until,
    predictions_match,
    process_tree_memory,
)
from bench.measure.spec import StartSpec, TrialSettings
from bench.model.source import ModelArtifact
from bench.results.metrics import SERVICE_STAMPS


def measure_start(engine: Engine, container_id: str, start: StartSpec,
                        model: ModelArtifact, settings: TrialSettings,
                        started_by_orchestrator: tuple[float, float] | None = None,
                        node: NodeFetch | None = None) -> StartMeasurement:
    try:
        return _measure(engine, container_id, start, model, settings, started_by_orchestrator,
                        node)
    except StepFailed as failure:
        # A service that dropped its connection may be exiting: wait for the engine to say so.
        state = (_settled_state(engine, container_id) if isinstance(failure, ServiceGone)
                 else engine.container_state(container_id))
        reason = str(failure)
        if state.oom_killed:
            reason = f"OOM-killed (memory limit {settings.memory_limit_bytes} bytes)"
        raise StepFailed(reason, engine.logs_tail(container_id)) from None


EXIT_GRACE_S = 5.0


class ServiceGone(StepFailed):
    """The service answered before and now drops the connection: it died, or is dying."""


def _settled_state(engine: Engine, container_id: str) -> ContainerState:
    """The container's state once it has exited, if it is exiting: a service killed while
    it answers drops its connection before the engine records the exit (found on the real
    engine: an OOM kill in the latency requests read as "stopped answering")."""
    deadline = time.monotonic() + EXIT_GRACE_S
    state = engine.container_state(container_id)
    while state.exit_code is None and not state.oom_killed and time.monotonic() < deadline:
        time.sleep(0.1)
        state = engine.container_state(container_id)
    return state


def _measure(
    engine: Engine, container_id: str, start: StartSpec, model: ModelArtifact,
    settings: TrialSettings, started_by_orchestrator: tuple[float, float] | None = None,
    node: NodeFetch | None = None,
) -> StartMeasurement:
    """Start the container (or take the (monotonic, wall) moment an orchestrator was asked to
    run it) and measure it without disturbing it.

    Moments come from the service's own epoch stamps (the container shares the host's kernel
    clock): server up, download, load. The harness only polls cheap endpoints at an interval
    that grows with the elapsed time (probes.poll_interval), watches the container with an
    inspect about once a second, and confirms readiness with one correct prediction. Before,
    a 16-row /predict and an inspect every 20 ms made a 5.45 GB load 1.9x slower.
    """
    if started_by_orchestrator is None:
        wall_start = time.time()
        started = time.monotonic()
        engine.start_container(container_id)
    else:
        started, wall_start = started_by_orchestrator
    deadline = started + settings.start_timeout_s
    container_started = started
    if node is not None:  # a fresh node: the clock runs from the moment provisioning began
        started, wall_start = node.started
    probed = _probe(engine, container_id, model, settings, started, deadline)
    metadata = probed.metadata
    story = metadata.get("story", {})
    server_up = story.get("server_up")
    # The service's stamp where it has one (a service image of an older harness has not).
    ready_s = server_up - wall_start if server_up is not None else probed.health_at - started
    load_end = story.get("load_end")
    if probed.lazy or load_end is None:
        # A lazy service loads inside the first request: its return is the moment.
        model_ready_s = probed.answered_at - started
    else:
        # Ready when the server is up and the model loaded; then one prediction's latency.
        serving_from = max(load_end, server_up if server_up is not None else load_end)
        model_ready_s = serving_from - wall_start + probed.first.seconds
    stamps = {key: value - wall_start for key, value in story.items()
              if key in SERVICE_STAMPS and value is not None}
    if node is not None:
        stamps |= {"pull_end": node.pulled_at - started, "node_fetch_end": node.fetched_at
                   - started, "container_start": container_started - started}
    container_layer = engine.container_size_rw(container_id)
    cache_bytes = engine.volume_bytes(start.cache_volume) if start.cache_volume else 0
    result = StartMeasurement(
        ready_s=ready_s, model_ready_s=model_ready_s, first_predict_s=probed.first.seconds,
        probe_requests=int(story.get("requests_before_loaded", 0)),
        latencies_ms=probed.latencies_ms, batch_latencies_ms=probed.batch_latencies_ms,
        timeline=Timeline(stamps),
        disk=DiskParts(container_layer, cache_bytes, start.host_model_bytes),
        load_s=None if metadata.get("load_s") is None else float(metadata["load_s"]),
        node=node,
        remarks=[] if node is None or node.images_absent_before else [
            "the node still held the image after its removal: the pull was not a fresh one"],
        verify_s=None if story.get("verify_s") is None else float(story["verify_s"]),
        transfer=_transfer(story), paged=_paged(metadata, wall_start))
    _record_memory(engine, container_id, settings, deadline, result)
    if settings.load_duration_s > 0:
        _sustain_load(engine, container_id, model, settings, result)
    return result


@dataclass(frozen=True)
class _Probed:
    """What the probes saw: when /health first answered, whether the service loads lazily,
    its first (correct) prediction and when it returned, the latencies, and /metadata."""

    health_at: float
    lazy: bool
    first: PredictOutcome
    answered_at: float
    latencies_ms: list[float]
    batch_latencies_ms: list[float]
    metadata: dict[str, Any]


def _probe(engine: Engine, container_id: str, model: ModelArtifact, settings: TrialSettings,
           started: float, deadline: float) -> _Probed:
    watch = ContainerWatch(engine, container_id)
    client = ServiceClient(engine.published_port(container_id), engine.address)
    latencies_ms: list[float] = []
    batch_latencies_ms: list[float] = []
    try:
        health_at = poll_until(lambda: client.get("/health").status_code == 200,
                               started=started, deadline=deadline, check_alive=watch.check,
                               what="/health")
        lazy = client.get("/metadata").json().get("loading") == "lazy"
        if not lazy:  # eager: wait for the load, asking the cheap /ready
            poll_until(lambda: _model_ready(client, settings.on_download),
                       started=started, deadline=deadline,
                       check_alive=watch.check, what="the model to load (/ready)")
        # The first request is one row, as a client's usually is; a lazy service loads in
        # it, and mmap-lazy fetches only the pages that row's walk touches (one row: 8,580
        # pages of the 5.45 GB forest; the 16 reference rows: 79,279). All 16 are checked
        # right after it.
        first = client.predict(model.reference_rows[:1])
        answered_at = time.monotonic()
        _check_prediction(first, model, rows=1)
        _check_prediction(client.predict(model.reference_rows), model)

        one_row = [model.reference_rows[0]]
        for _ in range(settings.latency_requests):
            latency = client.predict(one_row)
            if latency.status != 200:
                raise StepFailed(f"/predict answered {latency.status} once warm")
            latencies_ms.append(latency.seconds * 1000)
        # Batches: what a 100-row request costs next to one row (a fifth as many requests).
        batch = batch_of(model.reference_rows)
        for _ in range(max(1, settings.latency_requests // 5)):
            answer = client.predict(batch)
            if answer.status != 200:
                raise StepFailed(f"/predict of {len(batch)} rows answered {answer.status}")
            batch_latencies_ms.append(answer.seconds * 1000)
        if model.reference_probabilities is not None:  # a classifier: its probabilities too
            _check_probabilities(client.predict(model.reference_rows, "/predict_proba"), model)
        metadata = client.get("/metadata").json()
        if "paged" in metadata and not metadata["paged"]["whole"]:
            metadata = _until_whole(client, metadata, started, deadline, watch)
    except requests.RequestException as error:  # it answered before: it died since
        raise ServiceGone(f"the service stopped answering ({type(error).__name__})") from None
    finally:
        client.close()
    return _Probed(health_at, lazy, first, answered_at, latencies_ms, batch_latencies_ms,
                   metadata)


def _until_whole(client: ServiceClient, metadata: dict[str, Any], started: float,
                 deadline: float, watch: ContainerWatch) -> dict[str, Any]:
    """flat_lazy: its background fill goes on after the latencies (which it must not slow):
    wait for the file to be whole, asking /metadata at the probes' growing interval."""
    latest = [metadata]

    def whole() -> bool:
        latest[0] = client.get("/metadata").json()
        return bool(latest[0]["paged"]["whole"])

    with contextlib.suppress(StepFailed):  # not whole within the start's time-out: said so
        poll_until(whole, started=started, deadline=deadline, check_alive=watch.check,
                   what="the flat file to be whole (the background fill)")
    return latest[0]


def _paged(metadata: dict[str, Any], wall_start: float) -> PagedFill | None:
    paged = metadata.get("paged")
    if paged is None:
        return None
    first = paged.get("at_first_prediction") or {}
    return PagedFill(first_bytes=int(first.get("demand_bytes", 0)),
                     first_requests=int(first.get("demand_requests", 0)),
                     whole_s=None if paged.get("whole_at") is None
                     else float(paged["whole_at"]) - wall_start,
                     demand_bytes=int(paged["demand_bytes"]),
                     fill_bytes=int(paged["fill_bytes"]),
                     range_retries=int(paged.get("range_retries", 0)),
                     fill_active_s=float(paged.get("fill_active_s", 0.0)))


def _transfer(story: dict[str, Any]) -> Transfer | None:
    """The service's own account of its download, if it downloaded."""
    if not story.get("downloaded"):
        return None
    return Transfer(
        seconds=story.get("download_active_s") or story["download_end"] - story["download_start"],
        bytes=int(story["download_bytes"]),
        client_setup_s=(None if story.get("client_setup_s") is None
                        else float(story["client_setup_s"])),
        retries=None if "download_retries" not in story else int(story["download_retries"]))


def _sustain_load(engine: Engine, container_id: str, model: ModelArtifact,
                  settings: TrialSettings, result: StartMeasurement) -> None:
    """--load: a closed-loop load once the start is measured, and the memory it grew."""
    before = engine.memory_stats(container_id).anon_bytes
    load = run_load(engine.published_port(container_id), model.reference_rows[0],
                    settings.load_duration_s, settings.load_concurrency, engine.address)
    after = engine.memory_stats(container_id).anon_bytes
    result.load = SustainedLoad(load, before, after)
    if load.errors:
        result.remarks.append(f"{load.errors} of {load.requests} requests under load "
                              f"failed; the first: {load.first_error}")


class ContainerWatch:
    """Is the container still alive? An inspect at most once a second: the engine's work on
    each inspect competes with the service for the same 2 cores."""

    EVERY_S = 1.0

    def __init__(self, engine: Engine, container_id: str) -> None:
        self._engine, self._id = engine, container_id
        self._last = -math.inf

    def check(self) -> None:
        now = time.monotonic()
        if now - self._last < self.EVERY_S:
            return
        self._last = now
        state = self._engine.container_state(self._id)
        if state.oom_killed:
            raise StepFailed("container was OOM-killed")
        if state.exit_code is not None:
            raise StepFailed(f"container exited with code {state.exit_code}")


def _model_ready(client: ServiceClient,
                 on_download: Callable[[int, int], None] | None = None) -> bool:
    response = client.get("/ready")
    if response.status_code == 200:
        return True
    body = response.json()
    if body.get("error"):
        raise StepFailed(f"service cannot load the model: {body['error']}")
    download = body.get("download")
    if on_download is not None and download:
        total = int(download["total_bytes"])
        on_download(min(int(download["received_bytes"]), total), total)
    return False


def _check_prediction(outcome: PredictOutcome, model: ModelArtifact,
                      rows: int | None = None) -> None:
    """The answer to the first `rows` reference rows (all of them: None) is the model's."""
    if outcome.status == 503:
        raise StepFailed(f"service cannot load the model: {outcome.body.get('detail', '')}")
    if outcome.status != 200:
        raise StepFailed(f"/predict answered {outcome.status}: {outcome.body}")
    if not predictions_match(outcome.body["predictions"], model.reference_predictions[:rows]):
        raise StepFailed("/predict answered, but not with the model's predictions")


def _check_probabilities(outcome: PredictOutcome, model: ModelArtifact) -> None:
    if outcome.status != 200:
        raise StepFailed(f"/predict_proba answered {outcome.status}: {outcome.body}")
    if not predictions_match(outcome.body["probabilities"], model.reference_probabilities or []):
        raise StepFailed("/predict_proba answered, but not with the model's probabilities")


def _record_memory(engine: Engine, container_id: str, settings: TrialSettings, deadline: float,
                   result: StartMeasurement) -> None:
    """Memory at rest: the cgroup's anonymous memory apart from its page cache, and the
    server processes' PSS/USS/peak RSS from the host; what cannot be read is recorded as not
    measured, with the reason."""
    pid = engine.container_pid(container_id)
    processes = process_tree_memory(pid, container_id)
    # A pre-forking server (gunicorn) starts its workers one after another: the first can
    # answer before the last exists. Per-worker memory is read once every worker runs.
    while (settings.workers > 1 and isinstance(processes, ProcessMemory)
           and len(processes.children) < settings.workers and time.monotonic() < deadline):
        time.sleep(0.2)
        processes = process_tree_memory(pid, container_id)
    result.memory = engine.memory_stats(container_id)
    if result.memory.peak_bytes is None:
        result.unmeasured["mem_cgroup_peak_bytes"] = (
            "cgroup v2: the engine's stats have no peak (memory.peak is not reported)")
    if isinstance(processes, ProcessMemory):
        # Per-worker memory only where there are workers (a single server's children are
        # not workers).
        result.processes = (processes if settings.workers > 1
                            else dataclasses.replace(processes, children=()))
    else:
        for metric in ("server_pss_bytes", "server_uss_bytes", "server_rss_peak_bytes"):
            result.unmeasured[metric] = processes
