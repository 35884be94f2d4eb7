"""Replicas started together, the thundering herd on a shared cache, the memory-limit search."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import docker
import pytest

from bench.engine import RUN_LABEL, Engine
from bench.model.source import ModelArtifact
from bench.results.store import load_run
from tests.integration.test_end_to_end import assert_nothing_labelled, failures_of, run_bench

pytestmark = pytest.mark.engine

# Not the default (none) and not a whole core, yet above one: a 0.5 limit made every start
# of the swarm test twice as slow (CI time); 1.5 cores checks the translation as well.
LIMIT_CPUS = 1.5
LIMIT_MEMORY = 512_000_000


class InspectingEngine:
    """The real engine, which also reads `docker inspect` of every measured container the
    moment it runs (plain starts and swarm tasks alike): what the engine was really asked
    for, not what the harness meant to ask."""

    def __init__(self, engine: Engine, strategies: tuple[str, ...]) -> None:
        self._engine = engine
        # A service's image is mlbench-<strategy>-<builder>; the S3 server's is mlbench-s3server.
        self._services = tuple(f"mlbench-{name}-" for name in strategies)
        self._client = docker.from_env()
        self.host_configs: dict[str, dict[str, Any]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def _inspect(self, container_id: str) -> None:
        if container_id and container_id not in self.host_configs:
            attrs = self._client.api.inspect_container(container_id)
            if str(attrs["Config"]["Image"]).startswith(self._services):
                self.host_configs[container_id] = attrs["HostConfig"]

    def start_container(self, container_id: str) -> None:
        self._engine.start_container(container_id)
        self._inspect(container_id)

    def service_tasks(self, service_id: str) -> list[tuple[str, str]]:
        tasks = self._engine.service_tasks(service_id)
        for _state, container_id in tasks:
            self._inspect(container_id)
        return tasks


def assert_limits(engine: InspectingEngine, starts: int) -> None:
    """Each measured container ran with --cpus and --memory-limit as the engine reads them."""
    assert len(engine.host_configs) >= starts
    for config in engine.host_configs.values():
        assert config["NanoCpus"] == int(LIMIT_CPUS * 1e9)
        assert config["Memory"] == LIMIT_MEMORY


@pytest.mark.beside
def test_replicas_start_together_and_registry_replicas_download_once(
        engine: Engine, tiny_model: ModelArtifact, tmp_path: Path) -> None:
    run = run_bench(engine, ("volume", "registry"), tmp_path, builders=("legacy",), replicas=3)
    stored = load_run(tmp_path / run.run_id)
    assert stored.document["status"] == "complete", failures_of(stored)
    for strategy, condition in (("volume", "3 replicas"),
                                ("registry", "cold cache volume, 3 replicas")):
        mine = [s for s in stored.samples if s.strategy == strategy and s.condition == condition]
        # Every replica served a correct prediction and was measured on its own; the totals
        # exist once per start (their arithmetic is the runner's, not re-checked here).
        assert len([s for s in mine if s.metric == "model_ready_s"]) == 3
        assert len([s for s in mine if s.metric == "server_pss_bytes"]) == 3
        assert {s.metric for s in mine} >= {"all_ready_s", "replicas_pss_total_bytes"}
    # Three replicas on one empty cache volume: one downloaded, two waited and reused it.
    downloads = [s for s in stored.samples if s.strategy == "registry"
                 and s.condition == "cold cache volume, 3 replicas" and s.metric == "download_s"]
    assert len(downloads) == 1
    assert_nothing_labelled(engine)


def test_memory_limit_search_finds_a_limit_and_records_oom_kills(
        engine: Engine, tiny_model: ModelArtifact, tmp_path: Path) -> None:
    run = run_bench(engine, ("volume",), tmp_path, builders=("legacy",), find_memory_limit=True,
                    memory_search_starts=4, start_timeout_s=60)
    stored = load_run(tmp_path / run.run_id)
    (limit,) = [s.value for s in stored.samples if s.metric == "min_memory_limit_bytes"]
    attempts = stored.document["strategies"]["volume"]["notes"]["memory_search"]
    assert len(attempts) <= 4 and attempts[0]["outcome"] == "ok"
    assert any(a["outcome"] == "OOM-killed" for a in attempts)
    assert min(a["limit_bytes"] for a in attempts if a["outcome"] == "ok") == limit
    peak = max(s.value for s in stored.samples if s.metric == "server_rss_peak_bytes")
    assert limit >= peak * 0.5  # a limit far below what the server used cannot have worked
    assert_nothing_labelled(engine)


@pytest.mark.beside
def test_preloaded_workers_share_the_model_and_copies_do_not(
        engine: Engine, tiny_model: ModelArtifact, tmp_path: Path) -> None:
    uss: dict[str, list[float]] = {}
    for mode in ("copy", "preload"):
        run = run_bench(engine, ("volume",), tmp_path / mode, builders=("legacy",), workers=2,
                        worker_mode=mode)
        stored = load_run(tmp_path / mode / run.run_id)
        assert stored.document["status"] == "complete", failures_of(stored)
        uss[mode] = [s.value for s in stored.samples if s.metric == "worker_uss_bytes"
                     and s.condition == f"2 workers ({mode})"]
        assert len(uss[mode]) == 2  # two workers, the resource tracker not counted
    # Forked after the load, a worker's unique memory is a fraction of a worker that loaded
    # (and imported scikit-learn) itself.
    assert max(uss["preload"]) < min(uss["copy"]) / 2
    assert_nothing_labelled(engine)


@pytest.mark.swarm_maker
def test_swarm_service_replicas_are_measured_and_the_swarm_is_left_as_found(
        engine: Engine, tiny_model: ModelArtifact, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The removal waits for the services' task containers, and only for them: it once
    # waited for every labelled container, the run's S3 server too, for the whole time-out.
    waits: list[bool] = []
    real_wait = engine._wait_for_no_containers  # type: ignore[attr-defined]

    def wait(*args: Any, **kwargs: Any) -> bool:
        waits.append(real_wait(*args, **kwargs))
        return waits[-1]

    monkeypatch.setattr(engine, "_wait_for_no_containers", wait)
    was_active = engine.swarm_active()
    if not was_active:  # a gateway bridge left by an earlier swarm (not ours) would hide ours
        subprocess.run(["docker", "network", "rm", "docker_gwbridge"], capture_output=True)
    networks = _networks_of_no_run()
    # The registry's tasks reach its S3 server on the run's attachable overlay network. The
    # tasks run with --cpus and a memory limit: swarm's own resource fields (NanoCPUs and
    # MemoryBytes) must reach every task's container (the swarm copy once dropped --cpus).
    inspecting = InspectingEngine(engine, ("volume", "registry"))
    run = run_bench(inspecting, ("volume", "registry"), tmp_path,  # type: ignore[arg-type]
                    builders=("legacy",), replicas=2, orchestrator="swarm",
                    cpus=LIMIT_CPUS, memory_limit_bytes=LIMIT_MEMORY)
    assert_limits(inspecting, starts=2 * 3)  # volume, registry cold and warm: 2 tasks each
    stored = load_run(tmp_path / run.run_id)
    assert stored.document["status"] == "complete", failures_of(stored)
    mine = [s for s in stored.samples if s.condition == "swarm, 2 replicas"]
    ready = [s.value for s in mine if s.metric == "model_ready_s"]
    (all_ready,) = [s.value for s in mine if s.metric == "all_ready_s"]
    assert len(ready) == 2 and all_ready == max(ready)
    cold = {s.metric for s in stored.samples if s.strategy == "registry"
            and s.condition == "cold cache volume, swarm, 2 replicas"}
    assert {"download_s", "model_ready_s", "all_ready_s"} <= cold
    assert waits and all(waits), waits
    assert engine.swarm_active() == was_active
    assert_nothing_labelled(engine)
    # docker_gwbridge and ingress too, when the run made them (they carry no run label).
    assert sorted(_networks_of_no_run()) == sorted(networks)


def _networks_of_no_run() -> list[str]:
    """The engine's networks that carry no run label (the other engine lane's runs come and
    go meanwhile, and this run's own are checked by label)."""
    rows = subprocess.run(["docker", "network", "ls", "--format",
                           '{{.Name}}|{{.Label "' + RUN_LABEL + '"}}'],
                          capture_output=True, text=True, check=True).stdout.split()
    return [name for name, _, run in (row.partition("|") for row in rows) if not run]


# In the first engine lane though it could run beside: it balances the lanes (CI time:
# the second lane was the suite's critical path, 494 s of tests against 410 s).
def test_registry_replicas_with_private_caches_each_download(
        engine: Engine, tiny_model: ModelArtifact, tmp_path: Path) -> None:
    run = run_bench(engine, ("registry",), tmp_path, builders=("legacy",), replicas=2,
                    shared_cache=False)
    stored = load_run(tmp_path / run.run_id)
    assert stored.document["status"] == "complete", failures_of(stored)
    downloads = [s for s in stored.samples if s.metric == "download_s"
                 and s.condition == "cold cache volume, 2 replicas, private caches"]
    assert len(downloads) == 2  # the thundering herd: every replica fetched the model
    assert_nothing_labelled(engine)


# In the first engine lane though it could run beside: it balances the lanes (CI time:
# the second lane was the suite's critical path, 494 s of tests against 410 s).
def test_a_sustained_load_is_measured_and_a_healthy_service_answers_every_request(
        engine: Engine, tiny_model: ModelArtifact, tmp_path: Path) -> None:
    """Also the plain start path's limits: --cpus 0.5 and a memory limit reach the engine
    (docker inspect's NanoCpus and Memory)."""
    inspecting = InspectingEngine(engine, ("volume",))
    run = run_bench(inspecting, ("volume",), tmp_path,  # type: ignore[arg-type]
                    builders=("legacy",), load_duration_s=3.0, load_concurrency=2,
                    cpus=LIMIT_CPUS, memory_limit_bytes=LIMIT_MEMORY)
    assert_limits(inspecting, starts=1)
    stored = load_run(tmp_path / run.run_id)
    assert stored.document["status"] == "complete", failures_of(stored)
    values = {s.metric: s.value for s in stored.samples if s.trial == 1}
    # Closed loop for 3 s: requests were answered, every one of them correctly.
    assert values["load_rps"] > 0 and values["load_errors"] == 0
    assert {"load_p50_ms", "load_p99_ms", "load_anon_growth_bytes"} <= set(values)
    assert_nothing_labelled(engine)
