"""One measured start of a strategy's container: start, probe, measure, remove.

Times are taken on the host from just before the engine's start call. A container that
exits, is OOM-killed, or never becomes ready fails the start with the reason and its last
log lines; the container is removed on every path.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.engine import ContainerSpec, Engine
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
    hardened: bool = True


@dataclass
class StartResult:
    values: dict[str, float] = field(default_factory=dict)  # metric -> value
    latencies_ms: list[float] = field(default_factory=list)
    story: dict[str, Any] = field(default_factory=dict)  # phases relative to container start


def run_start(
    engine: Engine, image: str, name: str, labels: Mapping[str, str], network: str,
    start: StartSpec, model: ModelArtifact, settings: TrialSettings,
) -> StartResult:
    spec = ContainerSpec(
        image=image, name=name, labels=labels, env=start.env, binds=start.binds,
        volumes=start.volumes, network=network, memory_limit_bytes=settings.memory_limit_bytes,
        cpus=settings.cpus, hardened=settings.hardened,
    )
    container_id = engine.create_container(spec)
    try:
        return _measure(engine, container_id, start, model, settings)
    except StepFailed as failure:
        state = engine.container_state(container_id)
        reason = str(failure)
        if state.oom_killed:
            reason = f"OOM-killed (memory limit {settings.memory_limit_bytes} bytes)"
        raise StepFailed(reason, engine.logs_tail(container_id)) from None
    finally:
        engine.remove_container(container_id)


def _measure(
    engine: Engine, container_id: str, start: StartSpec, model: ModelArtifact,
    settings: TrialSettings,
) -> StartResult:
    result = StartResult()
    wall_start = time.time()
    started = time.monotonic()
    engine.start_container(container_id)
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

    memory = engine.memory_stats(container_id)
    result.values["mem_working_set_bytes"] = memory.working_set_bytes
    if memory.peak_bytes is not None:
        result.values["mem_cgroup_peak_bytes"] = memory.peak_bytes
    processes = process_tree_memory(engine.container_pid(container_id))
    if processes is not None:
        result.values["server_pss_bytes"] = processes.pss_bytes
        result.values["server_uss_bytes"] = processes.uss_bytes
        result.values["server_rss_peak_bytes"] = processes.rss_peak_bytes

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
