"""One measured start of a strategy's container: start, probe, measure, remove.

Times are taken on the host from just before the engine's start call. A container that
exits, is OOM-killed, or never becomes ready fails the start with the reason and its last
log lines; the container is removed on every path.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bench.engine import ContainerSpec, Engine, VolumeMount
from bench.errors import StepFailed
from bench.measure.measurement import (
    NodeFetch,
    StartMeasurement,
)
from bench.measure.observe import ContainerWatch, measure_start
from bench.measure.probes import (
    ServiceClient,
    poll_until,
    predictions_match,
)
from bench.measure.spec import StartSpec, TrialSettings, container_spec
from bench.model.source import ModelArtifact


def run_start(
    engine: Engine, image: str, name: str, labels: Mapping[str, str], network: str | None,
    start: StartSpec, model: ModelArtifact, settings: TrialSettings,
    node: NodeFetch | None = None,
) -> StartMeasurement:
    return run_replicas(engine, image, name, labels, network, start, model, settings, 1,
                        node)[0]


def run_replicas(
    engine: Engine, image: str, name: str, labels: Mapping[str, str], network: str | None,
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
            measured = [measure_start(engine, container_ids[0], start, model, settings,
                                            node=node)]
        else:
            barrier = threading.Barrier(replicas)

            def together(container_id: str) -> StartMeasurement:
                barrier.wait()  # every replica starts at the same moment
                return measure_start(engine, container_id, start, model, settings,
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
                  network: str | None, start: StartSpec, model: ModelArtifact,
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
        client = ServiceClient(engine.published_port(service.container_id), engine.address)
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
        inspected = engine.image_inspect(image) or {}
        declared = sorted((inspected.get("Config") or {}).get("Volumes") or {})
        started = time.perf_counter()
        container_id = engine.create_container(ContainerSpec(
            image=image, name=f"{name}-model", labels=labels, container_port=None,
            command=["never-run"], hardened=False,
            # At each of the image's VOLUMEs, in its place: filled from the image all the
            # same, and labelled with the run, so that `clean` and a test find it by its run.
            volumes=[VolumeMount("", target) for target in declared]))
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
        measured = _measure_all(running, lambda cid: measure_start(
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


