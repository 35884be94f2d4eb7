"""One measured start of a strategy's container: start, probe, measure, remove.

Times are taken on the host from just before the engine's start call. A container that
exits, is OOM-killed, or never becomes ready fails the start with the reason and its last
log lines; the container is removed on every path.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import requests

from bench.engine import ContainerSpec, Engine, VolumeMount
from bench.errors import StepFailed
from bench.measure.inprocess import batch_of
from bench.measure.load_test import run_load
from bench.measure.measurement import (
    DiskParts,
    NodeFetch,
    StartMeasurement,
    SustainedLoad,
    Timeline,
    Transfer,
)
from bench.measure.probes import (
    PredictOutcome,
    ProcessMemory,
    ServiceClient,
    poll_until,
    predictions_match,
    process_tree_memory,
)
from bench.model.source import ModelArtifact
from bench.results.metrics import SERVICE_STAMPS
from bench.service_env import check_read_by_service, service_env
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
    load_duration_s: float = 0.0  # --load: a sustained load after the start is measured
    load_concurrency: int = 4
    # Told (bytes received, bytes in all) while the service downloads its model: the
    # progress bar, from what /ready answers (no log reading, no extra request).
    on_download: Callable[[int, int], None] | None = None


def run_start(
    engine: Engine, image: str, name: str, labels: Mapping[str, str], network: str,
    start: StartSpec, model: ModelArtifact, settings: TrialSettings,
    node: NodeFetch | None = None,
) -> StartMeasurement:
    return run_replicas(engine, image, name, labels, network, start, model, settings, 1,
                        node)[0]


def run_replicas(
    engine: Engine, image: str, name: str, labels: Mapping[str, str], network: str,
    start: StartSpec, model: ModelArtifact, settings: TrialSettings, replicas: int,
    node: NodeFetch | None = None,
) -> list[StartMeasurement]:
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

    container_ids: list[str] = []
    model_container: ModelContainer | None = None

    def spec_of(index: int) -> ContainerSpec:
        return container_spec(image, name if replicas == 1 else f"{name}-r{index}", labels,
                              start, settings, network=network, volumes=volumes_of(index),
                              volumes_from=[model_container.id] if model_container else [])

    try:
        if start.model_image is not None:  # one per node: every replica mounts it
            model_container = ModelContainer.create(engine, start.model_image, name, labels)
        for index in range(replicas):
            container_ids.append(engine.create_container(spec_of(index)))
        if replicas == 1:
            measured = [_measure_or_explain(engine, container_ids[0], start, model, settings,
                                            node=node)]
        else:
            barrier = threading.Barrier(replicas)

            def together(container_id: str) -> StartMeasurement:
                barrier.wait()  # every replica starts at the same moment
                return _measure_or_explain(engine, container_id, start, model, settings,
                                           node=node)

            measured = _measure_all(container_ids, together)
        if model_container is not None:
            volume_bytes = model_container.volume_bytes(engine)
            for m in measured:
                m.model_container_create_s = model_container.create_s
                m.disk = dataclasses.replace(m.disk, model_volume_bytes=volume_bytes)
        return measured
    finally:
        for container_id in container_ids:
            engine.remove_container(container_id)
        if model_container is not None:
            engine.remove_container(model_container.id)  # and its volume


@dataclass
class RunningService:
    """A service left running (the version a rollout replaces), with its model container."""

    engine: Engine
    container_id: str
    model_container: ModelContainer | None

    def stop(self) -> None:
        """Remove it (again: a no-op)."""
        if self.container_id:
            self.engine.remove_container(self.container_id)
            self.container_id = ""
        if self.model_container is not None:
            self.engine.remove_container(self.model_container.id)
            self.model_container = None


def start_service(engine: Engine, image: str, name: str, labels: Mapping[str, str],
                  network: str, start: StartSpec, model: ModelArtifact,
                  settings: TrialSettings) -> RunningService:
    """Start one container and return once it serves the model's predictions; it keeps
    running until stopped (on failure it is removed)."""
    model_container = (ModelContainer.create(engine, start.model_image, name, labels)
                       if start.model_image is not None else None)
    service = RunningService(engine, "", model_container)
    try:
        service.container_id = engine.create_container(container_spec(
            image, name, labels, start, settings, network=network,
            volumes_from=[model_container.id] if model_container else []))
        started = time.monotonic()
        engine.start_container(service.container_id)
        watch = ContainerWatch(engine, service.container_id)
        client = ServiceClient(engine.published_port(service.container_id))
        try:
            poll_until(lambda: predictions_match(
                client.predict(model.reference_rows).body.get("predictions", []),
                model.reference_predictions), started=started,
                deadline=started + settings.start_timeout_s, check_alive=watch.check,
                what="the model's predictions")
        finally:
            client.close()
        return service
    except BaseException:
        service.stop()
        raise


@dataclass(frozen=True)
class ModelContainer:
    """A container of a model-only image (modelcar), created and never run: creating it
    fills a new volume with the image's model, which the service mounts read-only."""

    id: str
    create_s: float

    @classmethod
    def create(cls, engine: Engine, image: str, name: str, labels: Mapping[str, str]
               ) -> ModelContainer:
        started = time.perf_counter()
        container_id = engine.create_container(ContainerSpec(
            image=image, name=f"{name}-model", labels=labels, container_port=None,
            command=["never-run"], hardened=False))
        return cls(container_id, time.perf_counter() - started)

    def volume_bytes(self, engine: Engine) -> int:
        mounts = engine.container_inspect(self.id).get("Mounts") or []
        return sum(engine.volume_bytes(str(m["Name"])) for m in mounts
                   if m.get("Type") == "volume")


def run_swarm_service(
    engine: Engine, image: str, name: str, labels: Mapping[str, str], start: StartSpec,
    model: ModelArtifact, settings: TrialSettings, replicas: int, network: str | None = None,
) -> list[StartMeasurement]:
    """Deploy the strategy as a swarm service of `replicas` tasks and measure every task from
    the moment the service was created: all_ready_s is when the last one serves."""
    spec = container_spec(image, name, labels, start, settings, network=network)
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
        measured = _measure_all(running, lambda cid: _measure_or_explain(
            engine, cid, start, model, settings, moment))
        options = engine.container_inspect(running[0]).get("HostConfig", {}).get(
            "SecurityOpt") or []
        if spec.hardened and not any("no-new-privileges" in o for o in options):
            for m in measured:
                m.remarks.append("this engine ignored NoNewPrivileges in the swarm service "
                                 "spec (its API has no such field): the tasks ran without "
                                 "no-new-privileges")
        return measured
    finally:
        engine.remove_service(service_id)


def container_spec(image: str, name: str, labels: Mapping[str, str], start: StartSpec,
                   settings: TrialSettings, *, network: str | None = None,
                   volumes: list[VolumeMount] | None = None,
                   volumes_from: list[str] | None = None) -> ContainerSpec:
    """The one place a measured container's spec is made, for plain containers and swarm
    tasks alike (the swarm copy used to drop --cpus)."""
    check_read_by_service(start.env, f"the start {start.condition!r}")
    command, env = worker_command(settings)
    return ContainerSpec(
        image=image, name=name, labels=labels, env={**start.env, **env},
        binds=[*start.binds, *start.model_binds],
        volumes=list(start.volumes) if volumes is None else volumes, network=network,
        memory_limit_bytes=settings.memory_limit_bytes, cpus=settings.cpus,
        hardened=settings.hardened, command=command, volumes_from=volumes_from or [],
    )


def _measure_all(container_ids: list[str], measure: Callable[[str], StartMeasurement]
                 ) -> list[StartMeasurement]:
    """Measure every container in its own thread; the first failure is raised."""
    results: list[StartMeasurement | BaseException | None] = [None] * len(container_ids)

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
    return [r for r in results if isinstance(r, StartMeasurement)]


def worker_command(settings: TrialSettings) -> tuple[list[str] | None, dict[str, str]]:
    """The server command for --workers N (None: the image's one-process uvicorn)."""
    if settings.workers == 1:
        return None, {}
    if settings.worker_mode == "preload":
        return (["python", "-m", "gunicorn", "backend.app:app", "--preload",
                 "--workers", str(settings.workers), "--worker-class",
                 "uvicorn_worker.UvicornWorker", "--bind", "0.0.0.0:8000",
                 "--worker-tmp-dir", "/tmp", "--timeout", "0"],
                service_env(preload=True))
    return (["python", "-m", "uvicorn", "backend.app:app", "--host", "0.0.0.0", "--port", "8000",
             "--workers", str(settings.workers)], {})


def _measure_or_explain(engine: Engine, container_id: str, start: StartSpec,
                        model: ModelArtifact, settings: TrialSettings,
                        started_by_orchestrator: tuple[float, float] | None = None,
                        node: NodeFetch | None = None) -> StartMeasurement:
    try:
        return _measure(engine, container_id, start, model, settings, started_by_orchestrator,
                        node)
    except StepFailed as failure:
        state = engine.container_state(container_id)
        reason = str(failure)
        if state.oom_killed:
            reason = f"OOM-killed (memory limit {settings.memory_limit_bytes} bytes)"
        raise StepFailed(reason, engine.logs_tail(container_id)) from None


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
    watch = ContainerWatch(engine, container_id)

    client = ServiceClient(engine.published_port(container_id))
    latencies_ms: list[float] = []
    batch_latencies_ms: list[float] = []
    try:
        health_at = poll_until(lambda: client.get("/health").status_code == 200,
                               started=started, deadline=deadline, check_alive=watch.check,
                               what="/health")
        metadata = client.get("/metadata").json()
        lazy = metadata.get("loading") == "lazy"
        if not lazy:  # eager: wait for the load, asking the cheap /ready
            poll_until(lambda: _model_ready(client, settings.on_download),
                       started=started, deadline=deadline,
                       check_alive=watch.check, what="the model to load (/ready)")
        # One correct prediction confirms the model serves; a lazy service loads in it.
        outcome = client.predict(model.reference_rows)
        answered_at = time.monotonic()
        _check_prediction(outcome, model)

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

        metadata = client.get("/metadata").json()
    except requests.RequestException as error:  # it answered before: it died since
        raise StepFailed(f"the service stopped answering ({type(error).__name__})") from None
    finally:
        client.close()

    story = metadata.get("story", {})
    server_up = story.get("server_up")
    # The service's stamp where it has one (a service image of an older harness has not).
    ready_s = server_up - wall_start if server_up is not None else health_at - started
    load_end = story.get("load_end")
    if lazy or load_end is None:
        # A lazy service loads inside the first request: its return is the moment.
        model_ready_s = answered_at - started
    else:
        # Ready when the server is up and the model loaded; then one prediction's latency.
        serving_from = max(load_end, server_up if server_up is not None else load_end)
        model_ready_s = serving_from - wall_start + outcome.seconds
    stamps = {key: value - wall_start for key, value in story.items()
              if key in SERVICE_STAMPS and value is not None}
    if node is not None:
        stamps |= {"pull_end": node.pulled_at - started, "node_fetch_end": node.fetched_at
                   - started, "container_start": container_started - started}
    timeline = Timeline(stamps)

    transfer = None
    if story.get("downloaded"):
        transfer = Transfer(
            seconds=story.get("download_active_s")
            or story["download_end"] - story["download_start"],
            bytes=int(story["download_bytes"]),
            client_setup_s=(None if story.get("client_setup_s") is None
                            else float(story["client_setup_s"])),
            retries=(None if "download_retries" not in story
                     else int(story["download_retries"])))
    container_layer = engine.container_size_rw(container_id)
    cache_bytes = engine.volume_bytes(start.cache_volume) if start.cache_volume else 0
    result = StartMeasurement(
        ready_s=ready_s, model_ready_s=model_ready_s, first_predict_s=outcome.seconds,
        probe_requests=int(story.get("requests_before_loaded", 0)), latencies_ms=latencies_ms,
        batch_latencies_ms=batch_latencies_ms, timeline=timeline,
        disk=DiskParts(container_layer, cache_bytes, start.host_model_bytes),
        load_s=None if metadata.get("load_s") is None else float(metadata["load_s"]),
        node=node,
        remarks=[] if node is None or node.images_absent_before else [
            "the node still held the image after its removal: the pull was not a fresh one"],
        verify_s=None if story.get("verify_s") is None else float(story["verify_s"]),
        transfer=transfer)
    _record_memory(engine, container_id, settings, deadline, result)
    if settings.load_duration_s > 0:
        before = engine.memory_stats(container_id).anon_bytes
        load = run_load(engine.published_port(container_id), model.reference_rows[0],
                        settings.load_duration_s, settings.load_concurrency)
        after = engine.memory_stats(container_id).anon_bytes
        result.load = SustainedLoad(load, before, after)
        if load.errors:
            result.remarks.append(f"{load.errors} of {load.requests} requests under load "
                                  f"failed; the first: {load.first_error}")
    return result


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


def _check_prediction(outcome: PredictOutcome, model: ModelArtifact) -> None:
    if outcome.status == 503:
        raise StepFailed(f"service cannot load the model: {outcome.body.get('detail', '')}")
    if outcome.status != 200:
        raise StepFailed(f"/predict answered {outcome.status}: {outcome.body}")
    if not predictions_match(outcome.body["predictions"], model.reference_predictions):
        raise StepFailed("/predict answered, but not with the model's predictions")


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
