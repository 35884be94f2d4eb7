"""One measured start of a strategy's container: start, probe, measure, remove.

Times are taken on the host from just before the engine's start call. A container that
exits, is OOM-killed, or never becomes ready fails the start with the reason and its last
log lines; the container is removed on every path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.engine import ContainerSpec, Engine, VolumeMount
from bench.errors import StepFailed
from bench.model_source import ModelArtifact
from bench.probes import (
    ServiceClient,
    percentile,
    poll_until,
    predictions_match,
    process_tree_memory,
)
from strategies.base import StartSpec


@dataclass(frozen=True)
class TrialSettings:
    start_timeout_s: float = 600.0
    latency_requests: int = 50
    memory_limit_bytes: int | None = None
    cpus: float | None = None
    workers: int = 1
    worker_mode: str = "copy"  # copy: each worker loads the model; preload: load, then fork
    shared_cache: bool = True  # replicas share the start's cache volume (else one each)
    hardened: bool = True


@dataclass
class StartResult:
    values: dict[str, float] = field(default_factory=dict)  # metric -> value
    latencies_ms: list[float] = field(default_factory=list)
    workers: list[tuple[int, int]] = field(default_factory=list)  # (pss, uss) per worker
    story: dict[str, Any] = field(default_factory=dict)  # phases relative to container start


def run_start(
    engine: Engine, image: str, name: str, labels: Mapping[str, str], network: str,
    start: StartSpec, model: ModelArtifact, settings: TrialSettings,
) -> StartResult:
    return run_replicas(engine, image, name, labels, network, start, model, settings, 1)[0]


def run_replicas(
    engine: Engine, image: str, name: str, labels: Mapping[str, str], network: str,
    start: StartSpec, model: ModelArtifact, settings: TrialSettings, replicas: int,
) -> list[StartResult]:
    """Start `replicas` containers of one image at the same moment and measure each.

    All containers are created first, then released together from a barrier, so the start
    times are as close as the engine allows; each is probed in its own thread. Any replica
    that fails fails the start (with its reason and log tail); all are removed on every path.
    """
    private_volumes: list[str] = []

    def volumes_of(index: int) -> list[VolumeMount]:
        """The start's volumes; with private caches, replica i > 0 gets its own cache."""
        if settings.shared_cache or index == 0 or start.cache_volume is None:
            return list(start.volumes)
        private = engine.create_volume(f"{start.cache_volume}-r{index}", labels)
        private_volumes.append(private)
        return [VolumeMount(private, v.target, v.read_only) if v.volume == start.cache_volume
                else v for v in start.volumes]

    def spec_of(index: int) -> ContainerSpec:
        command, env = worker_command(settings)
        return ContainerSpec(
            image=image, name=name if replicas == 1 else f"{name}-r{index}", labels=labels,
            env={**start.env, **env}, binds=start.binds, volumes=volumes_of(index),
            network=network, memory_limit_bytes=settings.memory_limit_bytes, cpus=settings.cpus,
            hardened=settings.hardened, command=command,
        )

    container_ids: list[str] = []
    try:
        for index in range(replicas):
            container_ids.append(engine.create_container(spec_of(index)))
        if replicas == 1:
            return [_measure_or_explain(engine, container_ids[0], start, model, settings)]
        barrier = threading.Barrier(replicas)

        def together(container_id: str) -> StartResult:
            barrier.wait()  # every replica starts at the same moment
            return _measure_or_explain(engine, container_id, start, model, settings)

        return _measure_all(container_ids, together)
    finally:
        for container_id in container_ids:
            engine.remove_container(container_id)


def run_swarm_service(
    engine: Engine, image: str, name: str, labels: Mapping[str, str], start: StartSpec,
    model: ModelArtifact, settings: TrialSettings, replicas: int,
) -> list[StartResult]:
    """Deploy the strategy as a swarm service of `replicas` tasks and measure every task from
    the moment the service was created: all_ready_s is when the last one serves."""
    command, env = worker_command(settings)
    spec = ContainerSpec(image=image, name=name, labels=labels, env={**start.env, **env},
                         binds=start.binds, volumes=start.volumes,
                         memory_limit_bytes=settings.memory_limit_bytes,
                         hardened=settings.hardened, command=command)
    moment = (time.monotonic(), time.time())
    service_id = engine.create_service(spec, replicas)
    try:
        deadline = moment[0] + settings.start_timeout_s
        while True:
            tasks = engine.service_tasks(service_id)
            dead = [cid for state, cid in tasks if state in ("failed", "rejected", "complete",
                                                             "shutdown", "orphaned")]
            if dead:
                raise StepFailed(f"a swarm task ended ({len(dead)} of {replicas})",
                                 engine.logs_tail(dead[0]) if dead[0] else "")
            running = [cid for state, cid in tasks if state == "running" and cid]
            if len(running) == replicas:
                break
            if time.monotonic() > deadline:
                raise StepFailed(f"timed out waiting for {replicas} swarm tasks to run")
            time.sleep(0.2)
        return _measure_all(running, lambda cid: _measure_or_explain(
            engine, cid, start, model, settings, moment))
    finally:
        engine.remove_service(service_id)


def _measure_all(container_ids: list[str], measure: Callable[[str], StartResult]
                 ) -> list[StartResult]:
    """Measure every container in its own thread; the first failure is raised."""
    results: list[StartResult | BaseException | None] = [None] * len(container_ids)

    def one(index: int) -> None:
        try:
            results[index] = measure(container_ids[index])
        except BaseException as error:  # handed to the caller below
            results[index] = error

    threads = [threading.Thread(target=one, args=(i,), daemon=True)
               for i in range(len(container_ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [r for r in results if isinstance(r, StartResult)]


def worker_command(settings: TrialSettings) -> tuple[list[str] | None, dict[str, str]]:
    """The server command for --workers N (None: the image's one-process uvicorn)."""
    if settings.workers == 1:
        return None, {}
    if settings.worker_mode == "preload":
        return (["python", "-m", "gunicorn", "backend.app:app", "--preload",
                 "--workers", str(settings.workers), "--worker-class",
                 "uvicorn_worker.UvicornWorker", "--bind", "0.0.0.0:8000",
                 "--worker-tmp-dir", "/tmp", "--timeout", "0"],
                {"MODEL_PRELOAD": "1"})
    return (["python", "-m", "uvicorn", "backend.app:app", "--host", "0.0.0.0", "--port", "8000",
             "--workers", str(settings.workers)], {})


def _measure_or_explain(engine: Engine, container_id: str, start: StartSpec,
                        model: ModelArtifact, settings: TrialSettings,
                        started_by_orchestrator: tuple[float, float] | None = None
                        ) -> StartResult:
    try:
        return _measure(engine, container_id, start, model, settings, started_by_orchestrator)
    except StepFailed as failure:
        state = engine.container_state(container_id)
        reason = str(failure)
        if state.oom_killed:
            reason = f"OOM-killed (memory limit {settings.memory_limit_bytes} bytes)"
        raise StepFailed(reason, engine.logs_tail(container_id)) from None


def _measure(
    engine: Engine, container_id: str, start: StartSpec, model: ModelArtifact,
    settings: TrialSettings, started_by_orchestrator: tuple[float, float] | None = None,
) -> StartResult:
    """Start the container (or take the (monotonic, wall) moment an orchestrator was asked to
    run it) and measure it."""
    result = StartResult()
    if started_by_orchestrator is None:
        wall_start = time.time()
        started = time.monotonic()
        engine.start_container(container_id)
    else:
        started, wall_start = started_by_orchestrator
    deadline = started + settings.start_timeout_s

    def check_alive() -> None:
        state = engine.container_state(container_id)
        if state.oom_killed:
            raise StepFailed("container was OOM-killed")
        if state.exit_code is not None:
            raise StepFailed(f"container exited with code {state.exit_code}")

    client = ServiceClient(engine.published_port(container_id))
    try:
        health_at = poll_until(lambda: client.get("/health").status_code == 200,
                               deadline=deadline, check_alive=check_alive, what="/health")
        result.values["ready_s"] = health_at - started

        first: dict[str, float] = {}

        def correct_prediction() -> bool:
            outcome = client.predict(model.reference_rows)
            if outcome.status == 503:
                detail = str(outcome.body.get("detail", ""))
                if "loading" not in detail:
                    raise StepFailed(f"service cannot load the model: {detail}")
                return False
            if outcome.status != 200:
                raise StepFailed(f"/predict answered {outcome.status}: {outcome.body}")
            if not predictions_match(outcome.body["predictions"], model.reference_predictions):
                raise StepFailed("/predict answered, but not with the model's predictions")
            first["seconds"] = outcome.seconds
            return True

        ready_at = poll_until(correct_prediction, deadline=deadline, check_alive=check_alive,
                              what="the first correct prediction")
        result.values["model_ready_s"] = ready_at - started
        result.values["first_predict_s"] = first["seconds"]

        one_row = [model.reference_rows[0]]
        for _ in range(settings.latency_requests):
            outcome = client.predict(one_row)
            if outcome.status != 200:
                raise StepFailed(f"/predict answered {outcome.status} once warm")
            result.latencies_ms.append(outcome.seconds * 1000)
        result.values["predict_p50_ms"] = percentile(result.latencies_ms, 0.50)
        result.values["predict_p95_ms"] = percentile(result.latencies_ms, 0.95)

        metadata = client.get("/metadata").json()
    finally:
        client.close()

    processes = process_tree_memory(engine.container_pid(container_id))
    # A pre-forking server (gunicorn) starts its workers one after another: the first can
    # answer before the last exists. Per-worker memory is read once every worker runs.
    while (settings.workers > 1 and processes is not None
           and len(processes.children) < settings.workers and time.monotonic() < deadline):
        time.sleep(0.2)
        processes = process_tree_memory(engine.container_pid(container_id))
    memory = engine.memory_stats(container_id)
    result.values["mem_working_set_bytes"] = memory.working_set_bytes
    if memory.peak_bytes is not None:
        result.values["mem_cgroup_peak_bytes"] = memory.peak_bytes
    if processes is not None:
        result.values["server_pss_bytes"] = processes.pss_bytes
        result.values["server_uss_bytes"] = processes.uss_bytes
        result.values["server_rss_peak_bytes"] = processes.rss_peak_bytes
        if settings.workers > 1:
            result.workers = list(processes.children)

    story = metadata.get("story", {})
    if metadata.get("load_s") is not None:
        result.values["load_s"] = float(metadata["load_s"])
    if story.get("downloaded"):
        download_s = story["download_end"] - story["download_start"]
        result.values["download_s"] = download_s
        result.values["download_mb_per_s"] = story["download_bytes"] / 1e6 / max(download_s, 1e-9)
    if story.get("verify_s") is not None:
        result.values["verify_s"] = float(story["verify_s"])
    result.story = {
        key: value - wall_start
        for key, value in story.items()
        if key in ("process_start", "download_start", "download_end", "load_start", "load_end")
        and value is not None
    }
    result.story["ready"] = result.values["ready_s"]
    result.story["model_ready"] = result.values["model_ready_s"]
    container_layer = engine.container_size_rw(container_id)
    cache_bytes = engine.volume_bytes(start.cache_volume) if start.cache_volume else 0
    result.values["disk_bytes"] = container_layer + cache_bytes + start.host_model_bytes
    return result
