"""The runner's and the trial's logic against the fake engine (tests/fake_engine.py): what is
recorded, in which order builds run, what happens when a start or a build fails. The same
paths against the real engine are in tests/integration."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from bench.errors import StepFailed
from bench.host.machine_state import MachineState
from bench.measure import spec, trial
from bench.measure.recorder import StrategyRecorder, start_condition
from bench.measure.spec import StartSpec
from bench.model.source import ModelArtifact
from bench.prepare.runtime_image import RuntimeImage
from bench.progress import Progress
from bench.results.store import ResultsStore, load_run
from bench.run.config import RunConfig
from bench.run.runner import BenchmarkRun
from tests.fake_engine import FakeEngine, ServiceBehaviour

SETTINGS = spec.TrialSettings(start_timeout_s=10, latency_requests=5)


def fake_engine(model: ModelArtifact, **behaviour: object) -> FakeEngine:
    return FakeEngine(ServiceBehaviour(list(model.reference_predictions), **behaviour))  # type: ignore[arg-type]


def test_a_start_is_measured_from_the_service_stamps_and_its_container_removed(
        tiny_model: ModelArtifact) -> None:
    engine = fake_engine(tiny_model, load_s=0.3, downloaded_bytes=50_000_000)
    start = StartSpec("-", host_model_bytes=1000)
    told: list[tuple[int, int]] = []
    settings = dataclasses.replace(SETTINGS, on_download=lambda r, t: told.append((r, t)))
    measured = trial.run_start(engine, "img", "c", {}, "net", start, tiny_model, settings)

    assert 0.3 <= measured.model_ready_s < 5
    assert measured.ready_s < measured.model_ready_s
    assert measured.timeline.at("load_end") is not None
    assert measured.timeline.at("load_start") < measured.timeline.at("load_end")  # type: ignore[operator]
    assert len(measured.latencies_ms) == SETTINGS.latency_requests
    assert measured.transfer is not None and measured.transfer.bytes == 50_000_000
    # The fake container has no host process: recorded as not measured, with the reason.
    assert set(measured.unmeasured) == {"server_pss_bytes", "server_uss_bytes",
                                        "server_rss_peak_bytes"}
    assert engine.containers == {} and len(engine.removed_containers) == 1
    assert told and told[0] == (25_000_000, 50_000_000)  # the download's progress, as told


def test_the_recorder_names_every_value_and_adds_the_image_to_the_disk(
        tiny_model: ModelArtifact) -> None:
    engine = fake_engine(tiny_model, load_s=0.1)
    start = StartSpec("-", host_model_bytes=1000)
    measured = trial.run_start(engine, "img", "c", {}, "net", start, tiny_model, SETTINGS)
    assert measured.memory is not None
    # A second replica that was ready later and holds more: the totals must be the last
    # one ready and the sum (identical replicas could not tell max from min, first or n x).
    later = dataclasses.replace(
        measured, model_ready_s=measured.model_ready_s + 2.5,
        memory=dataclasses.replace(measured.memory,
                                   usage_bytes=measured.memory.usage_bytes + 7_000_000))
    recorder = StrategyRecorder("volume")
    recorder.started("-", 1, [measured, later], image_added_bytes=5000, together=True)
    values = {s.metric: s.value for s in recorder.samples}
    per_container = [s.value for s in recorder.samples if s.metric == "mem_working_set_bytes"]

    assert values["disk_bytes"] == 4096 + 1000 + 5000  # container layer + host file + image
    assert values["at_load_end_s"] == measured.timeline.at("load_end")
    assert values["all_ready_s"] == later.model_ready_s
    assert per_container == [measured.memory.working_set_bytes,
                             measured.memory.working_set_bytes + 7_000_000]
    assert values["replicas_mem_total_bytes"] == sum(per_container)
    assert [s.metric for s in recorder.samples].count("predict_latency_ms") == 2 * 5
    assert {row["metric"] for row in recorder.not_measured} == set(measured.unmeasured)


@pytest.mark.parametrize(("behaviour", "reason"), [
    ({"exit_code": 3}, "exited with code 3"),
    ({"oom_killed": True}, "OOM-killed"),
    ({"wrong_predictions": True}, "not with the model's predictions"),
    # Found at 1 GB by the memory search: the connection dropped by a kill during the batch
    # requests escaped as a requests error and ended the whole run.
    ({"killed_by_batch": True}, "OOM-killed"),
])
def test_a_start_that_fails_says_why_and_leaves_no_container(
        tiny_model: ModelArtifact, behaviour: dict[str, object], reason: str) -> None:
    engine = fake_engine(tiny_model, **behaviour)
    with pytest.raises(StepFailed, match=reason) as failure:
        trial.run_replicas(engine, "img", "c", {}, "net", StartSpec("-"), tiny_model, SETTINGS,
                           replicas=2)
    assert failure.value.log_tail == "fake service log"
    assert engine.containers == {} and len(engine.removed_containers) == 2


def test_every_start_path_gets_the_same_spec() -> None:
    settings = spec.TrialSettings(cpus=0.5, memory_limit_bytes=2**30, workers=2,
                                   worker_mode="preload")
    made = spec.container_spec("img", "c", {}, StartSpec("-", env={"MODEL_PATH": "/m"}),
                               settings)
    assert (made.cpus, made.memory_limit_bytes, made.hardened) == (0.5, 2**30, True)
    assert made.env["MODEL_PRELOAD"] == "1" and made.env["MODEL_PATH"] == "/m"
    assert made.command is not None and "--preload" in made.command


def test_conditions_name_replicas_workers_swarm_and_private_caches() -> None:
    assert start_condition("-", 1, 1, "copy") == "-"
    assert (start_condition("warm cache volume", 3, 2, "preload", "swarm", private_caches=True)
            == "warm cache volume, swarm, 3 replicas, 2 workers (preload), private caches")


def run_with(engine: FakeEngine, tmp_path: Path, model: ModelArtifact,
             strategies: tuple[str, ...], **options: object) -> BenchmarkRun:
    """A BenchmarkRun past its setup (no base image, wheels or model training): the
    strategies run against the fake engine and their results are stored."""
    config = RunConfig(strategies=strategies, model_path=None, model_size_bytes=model.bytes,
                       trials=2, builders=("legacy", "buildkit"),
                       start_timeout_s=10, latency_requests=2, results_root=tmp_path,
                       **options)  # type: ignore[arg-type]
    run = BenchmarkRun(config, engine, Progress(quiet=True))
    run.settle_machine = settled_at_once
    run.model, run.network = model, "net"
    run.runtime = RuntimeImage("runtime:x", "sha256:r", 600_000_000, 1.0, True)
    store = ResultsStore.create(tmp_path, run.run_id, {"builders": list(config.builders),
                                                       "plan": run.plan_record()})
    run.store = store
    try:
        run._dispatch(store)
    finally:
        release_scratch(run)
    store.flush()
    return run


def release_scratch(run: BenchmarkRun) -> None:
    """What `execute` removes at its end and `_dispatch` alone does not: the run's canary
    file (64 MB) and scratch folder. Found: five of them left in the cache by every suite."""
    if run._canary is not None:
        run._canary.remove()
    shutil.rmtree(run.cache / "scratch" / run.run_id, ignore_errors=True)
    assert not (run.cache / "scratch" / run.run_id).exists()


def settled_at_once(files: object, *, cold: bool, can_drop: bool) -> MachineState:
    """The fake engine's starts need no idle engine and no page cache dropped."""
    return MachineState(0.0, True, 1, 1, None, False)


@pytest.fixture
def buildkit_available(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake engine builds with any builder; do not ask the machine for BuildKit."""
    monkeypatch.setattr("bench.engine.build.buildkit_available", lambda: True)
    monkeypatch.setattr("bench.engine.buildkit_available", lambda: True)


@pytest.mark.usefixtures("buildkit_available")
def test_the_builder_that_builds_first_alternates_and_cold_images_are_removed(
        tiny_model: ModelArtifact, tmp_path: Path) -> None:
    engine = fake_engine(tiny_model)
    run = run_with(engine, tmp_path, tiny_model, ("baked", "volume"))

    cold_builders = [builder for _tag, builder, cold in engine.builds if cold]
    assert cold_builders == ["legacy", "buildkit", "buildkit", "legacy"]
    # Every build gives a new image id here, so each superseded cold image is removed.
    assert len(engine.removed_images) == 4
    stored = load_run(run.store.folder)  # type: ignore[union-attr]
    by_metric = {(s.strategy, s.builder, s.metric) for s in stored.samples}
    assert ("volume", "buildkit", "build_cold_s") in by_metric
    assert ("baked", "-", "model_ready_s") in by_metric
    assert stored.document["strategies"]["volume"]["status"] == "ok"


@pytest.mark.usefixtures("buildkit_available")
def test_a_failed_build_is_recorded_and_the_next_strategy_still_runs(
        tiny_model: ModelArtifact, tmp_path: Path) -> None:
    engine = fake_engine(tiny_model)
    engine.failing_builds = {"mlbench-baked-legacy"}
    run = run_with(engine, tmp_path, tiny_model, ("baked", "volume"))

    document = load_run(run.store.folder).document  # type: ignore[union-attr]
    baked = document["strategies"]["baked"]
    assert baked["status"] == "failed" and "fake failure" in baked["failures"][0]["reason"]
    assert document["strategies"]["volume"]["status"] == "ok"
    assert run.failed


@pytest.mark.usefixtures("buildkit_available")
def test_a_start_that_fails_stops_that_strategy_after_one_trial(
        tiny_model: ModelArtifact, tmp_path: Path) -> None:
    engine = fake_engine(tiny_model, exit_code=1)
    run = run_with(engine, tmp_path, tiny_model, ("volume",))

    outcome = load_run(run.store.folder).document["strategies"]["volume"]  # type: ignore[union-attr]
    assert outcome["status"] == "partial"
    assert [f["phase"] for f in outcome["failures"]] == ["warm-up"]  # not tried again


def test_a_modelcar_start_mounts_a_created_model_container_and_removes_it(
        tiny_model: ModelArtifact) -> None:
    engine = fake_engine(tiny_model)
    created: list[tuple[str, object]] = []
    create = engine.create_container

    def recording_create(spec: object) -> str:
        container_id = create(spec)  # type: ignore[arg-type]
        created.append((container_id, spec))
        return container_id

    engine.create_container = recording_create  # type: ignore[method-assign]
    start = StartSpec("-", model_image="model:1")
    measured = trial.run_replicas(engine, "img", "c", {}, "net", start, tiny_model, SETTINGS,
                                  replicas=2)
    (model_id, model_spec), *services = created
    assert model_spec.image == "model:1" and model_spec.command == ["never-run"]  # type: ignore[attr-defined]
    assert all(spec.volumes_from == [model_id] for _, spec in services)  # type: ignore[attr-defined]
    assert all(m.model_container_create_s is not None for m in measured)
    assert model_id in engine.removed_containers and engine.containers == {}


def test_each_registry_strategy_has_a_cold_cache_of_its_own_in_every_round(
        tiny_model: ModelArtifact, tmp_path: Path) -> None:
    """Found: the cache volume was named `mlbench-<run>-cache-t<trial>`: interleaved, the
    registry strategies of one round would have shared it, one's "cold" cache being the warm
    cache another just filled."""
    from strategies.base import PreparedModel, StrategyContext, StrategyOptions
    from strategies.mmap import MmapRegistry
    from strategies.registry import Registry

    engine = fake_engine(tiny_model)
    ctx = StrategyContext("RUN", tiny_model, tmp_path, {}, "net", "rt", engine,
                          Progress(quiet=True), StrategyOptions())
    prepared = PreparedModel({}, {"MODEL_PATH": "/cache/m"}, 1)
    seen: set[str] = set()
    for strategy in (Registry(), Registry("ranged"), MmapRegistry()):
        strategy._credentials = tmp_path / "credentials"
        for round_ in (1, 2):
            cold, warm = strategy.starts(ctx, prepared, round_)
            assert cold.cache_volume == warm.cache_volume and cold.cache_volume is not None
            assert cold.cache_volume not in seen  # new, so empty: cold
            assert not cold.reuses_node_state and warm.reuses_node_state
            seen.add(cold.cache_volume)
    assert len(seen) == 6


@pytest.mark.usefixtures("buildkit_available")
def test_an_interleaved_run_stores_its_plan_warm_ups_rounds_and_canary(
        tiny_model: ModelArtifact, tmp_path: Path) -> None:
    engine = fake_engine(tiny_model)
    run = run_with(engine, tmp_path, tiny_model, ("baked", "volume", "volume-aa"),
                   order_seed=3)
    stored = load_run(run.store.folder)  # type: ignore[union-attr]
    plan = stored.document["metadata"]["plan"]
    assert plan["order"] == "interleaved" and plan["seed"] == 3
    assert sorted(plan["rounds"]) == ["0", "1", "2"]
    starts = [s for s in stored.samples if s.metric == "model_ready_s"]
    # One warm-up and two trials per strategy; trial r ran in round r, its start stamped.
    assert sorted((s.strategy, s.round, s.warmup) for s in starts) == sorted(
        (name, r, r == 0) for name in ("baked", "volume", "volume-aa") for r in (0, 1, 2))
    assert all(s.round == s.trial and s.started_at for s in starts)
    # In the stored order: the rounds' starts follow the plan, round after round.
    by_time = [(s.round, s.strategy) for s in sorted(starts, key=lambda s: s.started_at)]
    assert by_time == [(int(r), name) for r, names in plan["rounds"].items() for name in names]
    canary = [s for s in stored.samples if s.strategy == "machine"]
    assert {s.round for s in canary if s.metric == "canary_cpu_s"} == {1, 2}
    outcomes = stored.document["strategies"]
    assert outcomes["volume"]["start_key"] == outcomes["volume-aa"]["start_key"] is not None
    assert outcomes["volume-aa"]["notes"]["aa_of"] == "volume"
    assert outcomes["baked"]["start_key"] is None


@pytest.mark.usefixtures("buildkit_available")
def test_an_interrupted_round_keeps_every_finished_start(
        tiny_model: ModelArtifact, tmp_path: Path) -> None:
    """Results are flushed after every start: a run cut short in round 2 keeps round 1."""
    engine = fake_engine(tiny_model)
    config = RunConfig(strategies=("volume", "volume-aa"), model_path=None,
                       model_size_bytes=tiny_model.bytes, trials=3, builders=("legacy",),
                       start_timeout_s=10, latency_requests=2, results_root=tmp_path)
    run = BenchmarkRun(config, engine, Progress(quiet=True))
    run.model, run.network = tiny_model, "net"
    run.runtime = RuntimeImage("runtime:x", "sha256:r", 600_000_000, 1.0, True)
    starts = 0

    def settle_then_stop(files: object, *, cold: bool, can_drop: bool) -> MachineState:
        nonlocal starts
        starts += 1
        if starts == 5:  # two warm-ups, round 1, then the first start of round 2
            raise KeyboardInterrupt
        return settled_at_once(files, cold=cold, can_drop=can_drop)

    run.settle_machine = settle_then_stop
    store = ResultsStore.create(tmp_path, run.run_id, {"builders": ["legacy"]})
    run.store = store
    with pytest.raises(KeyboardInterrupt):
        try:
            run._dispatch(store)
        finally:
            release_scratch(run)
    on_disk = load_run(store.folder)
    rounds = {(s.strategy, s.round) for s in on_disk.samples if s.metric == "model_ready_s"}
    assert rounds == {("volume", 0), ("volume-aa", 0), ("volume", 1), ("volume-aa", 1)}
