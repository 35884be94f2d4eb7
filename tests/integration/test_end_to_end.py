"""Both core strategies end to end on the real engine, with a tiny model."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from bench.engine import CACHE_LABEL, OWNER_PID_LABEL, RUN_LABEL, DockerEngine, Engine
from bench.host import machine_state
from bench.host.paths import cache_dir
from bench.model.source import ModelArtifact
from bench.prepare.context import materialize, raw_data_csv
from bench.progress import Progress
from bench.results.store import StoredRun, load_run
from bench.run import liveness
from bench.run.cleanup import run_labels, sweep_stale_runs
from bench.run.config import RunConfig, builders_of
from bench.run.runner import BenchmarkRun
from tests.conftest import TINY_MODEL_BYTES, project_path, require_both_builders
from tests.integration.socket_proxy import BuildBodyRecorder

pytestmark = pytest.mark.engine
PLUGINS = {"MLBENCH_EXTRA_STRATEGIES": "tests.plugin_strategies"}
CORE_METRICS = {"ready_s", "model_ready_s", "first_predict_s", "predict_p50_ms",
                "predict_p95_ms", "predict_latency_ms", "mem_working_set_bytes",
                "server_pss_bytes", "server_uss_bytes", "server_rss_peak_bytes", "disk_bytes",
                "load_s"}
BUILD_METRICS = {"context_bytes", "build_cold_s", "build_warm_s", "image_bytes",
                 "image_added_bytes"}


def run_bench(engine: Engine, strategies: tuple[str, ...], results: Path, *, keep: bool = False,
              trials: int = 1, start_timeout_s: float = 120,
              builders: tuple[str, ...] | None = None, progress: Progress | None = None,
              **overrides: Any) -> BenchmarkRun:
    # Warm-ups cost a start per strategy: on where a test checks them (CI time).
    overrides.setdefault("warmup", False)
    config = RunConfig(strategies=strategies, model_path=None, model_size_bytes=TINY_MODEL_BYTES,
                       trials=trials, builders=builders or builders_of("auto"), keep=keep,
                       latency_requests=5, start_timeout_s=start_timeout_s,
                       results_root=results, **overrides)
    run = BenchmarkRun(config, engine, progress or Progress(quiet=True))
    short_settle(run)
    run.execute()
    return run


# How long a test run's start waits for an idle engine. A benchmark waits up to two minutes
# (bench.host.machine_state) so that every start finds the same machine; beside the other
# engine lane, whose builds and pushes keep the engine busy, that cost the suite 187 s of
# waiting, and a test asserts what a start did, not how fast. tests/test_machine_state.py
# tests the wait itself.
TEST_SETTLE_TIMEOUT_S = 2.0


def short_settle(run: BenchmarkRun) -> None:
    run.settle_machine = functools.partial(machine_state.settle,
                                           timeout_s=TEST_SETTLE_TIMEOUT_S)


def failures_of(stored: StoredRun) -> dict[str, list[str]]:
    """Each strategy's failure reasons: what an assertion on a run's status prints (the
    whole strategies dict is cut short by pytest before the reason)."""
    return {name: [f["reason"] for f in outcome["failures"]]
            for name, outcome in stored.document["strategies"].items() if outcome["failures"]}


def assert_nothing_labelled(engine: Engine, run_id: str | None = None) -> None:
    """Nothing of the run `run_id` is left; without one, nothing of any run this process
    made (its owner label). Not engine-wide: the engine tests run in two lanes, and the other
    lane's runs are alive meanwhile; the suite's end checks the engine as a whole
    (tests/conftest.py, pytest_sessionfinish)."""
    label = (f"{OWNER_PID_LABEL}={os.getpid()}" if run_id is None
             else f"{RUN_LABEL}={run_id}")
    assert engine.labelled(label) == {"containers": [], "images": [], "volumes": [],
                                      "networks": []}


def test_baked_and_volume_measure_every_metric(
        engine: Engine, tiny_model: ModelArtifact, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    run = run_bench(engine, ("baked", "volume"), tmp_path, keep=True, trials=2, warmup=True)
    # The kept images go whatever the assertions below find (found: a failed assertion left
    # them, and the worker's next test failed on them too).
    request.addfinalizer(lambda: engine.remove_labelled(f"{RUN_LABEL}={run.run_id}"))
    stored = load_run(tmp_path / run.run_id)
    assert stored.document["status"] == "complete"
    assert stored.document["metadata"]["model"]["sha256"] == tiny_model.sha256
    builders = stored.document["metadata"]["builders"]
    by = {(s.strategy, s.builder, s.metric): s.value for s in stored.samples}
    for strategy in ("baked", "volume"):
        measured = {s.metric for s in stored.samples if s.strategy == strategy}
        assert measured >= CORE_METRICS | BUILD_METRICS
        # A warm-up (trial 0, stored, flagged) and the two trials, each in its own round.
        assert {(s.trial, s.round, s.warmup) for s in stored.samples
                if s.strategy == strategy and s.metric == "ready_s"} == {
            (0, 0, True), (1, 1, False), (2, 2, False)}
        for builder in builders:
            # The image size the harness stored is the sum of its layers, read layer by
            # layer from the image's history (not the same Size field again).
            tag = f"mlbench-{strategy}-{builder}:{run.run_id.lower()}"
            history = subprocess.run(["docker", "history", "--no-trunc", "--human=false",
                                      "--format", "{{.Size}}", tag],
                                     capture_output=True, text=True, check=True)
            layers = [int(size) for size in history.stdout.split()]
            assert len(layers) > 1
            assert by[(strategy, builder, "image_bytes")] == sum(layers)
    model_bytes = tiny_model.bytes
    for builder in builders:
        assert by[("baked", builder, "context_bytes")] >= model_bytes
        assert by[("baked", builder, "image_added_bytes")] >= model_bytes
        # Both add the service's code; baked adds the model on top, volume none of it (a
        # bound of a tenth of the tiny model broke as the service's code grew past 105 KB;
        # the two code layers differ by a few bytes of file metadata).
        assert by[("baked", builder, "image_added_bytes")] - by[
            ("volume", builder, "image_added_bytes")] >= 0.99 * model_bytes
        assert by[("volume", builder, "image_added_bytes")] < model_bytes
    assert by[("volume", "legacy", "context_bytes")] >= model_bytes  # legacy sends it all
    ready = [s for s in stored.samples if s.metric in ("ready_s", "model_ready_s")]
    assert all(s.value > 0 for s in ready)

    # The report renders from these real results, with a timeline row per strategy.
    report = subprocess.run([sys.executable, "-m", "bench", "report", str(stored.folder),
                             "--format", "svg", "--quiet"], capture_output=True, text=True,
                            timeout=300)
    assert report.returncode == 0, report.stderr
    timeline = (stored.folder / "report-en" / "charts" / "timeline.svg").read_text()
    assert "baked" in timeline and "volume" in timeline

    # --keep left the images for inspection; `clean` removes them.
    assert engine.labelled(f"{RUN_LABEL}={run.run_id}")["images"]
    cleaned = subprocess.run([sys.executable, "-m", "bench", "clean"], capture_output=True,
                             text=True, timeout=300)
    assert cleaned.returncode == 0, cleaned.stderr
    assert_nothing_labelled(engine)

    # BuildKit's part (skipped, never silently left out, where it is missing).
    require_both_builders(builders)
    # The builder that builds first (and so reads a cold page cache) alternates.
    orders = [stored.document["strategies"][name]["notes"]["build_order"]
              for name in ("baked", "volume")]
    assert orders[0] == list(reversed(orders[1]))
    # Not the model, but the Dockerfile and the service code (a parser that read nothing
    # would give 0).
    assert 1_000 < by[("volume", "buildkit", "context_bytes")] < model_bytes


def test_context_bytes_equal_the_bytes_the_engine_received(
        engine: Engine, tiny_model: ModelArtifact, tmp_path: Path) -> None:
    context = materialize(tmp_path / "repo", "Dockerfile.volume", None,
                          {"datos/modelos/modelo_fifa.joblib": tiny_model.path},
                          raw_data_csv(cache_dir()))
    recorder = BuildBodyRecorder(tmp_path / "docker.sock")
    proxied = DockerEngine(docker.DockerClient(base_url=f"unix://{tmp_path / 'docker.sock'}",
                                         timeout=600))
    labels = run_labels("proxy-test", keep=False)
    try:
        from bench.prepare.base_image import ensure_base_image
        from bench.prepare.runtime_image import runtime_tag

        runtime = runtime_tag(ensure_base_image(engine, Progress(quiet=True)))
        result = proxied.build(context, "docker/Dockerfile", "mlbench-proxy-test:1", labels,
                               builder="legacy", no_cache=True,
                               build_args={"RUNTIME_IMAGE": runtime})
    finally:
        engine.remove_labelled(f"{RUN_LABEL}=proxy-test")
        recorder.close()
    # Streamed as it is packed (no temp file first), as the docker CLI does: a chunked upload
    # whose payload is the figure the harness stored.
    assert recorder.chunked_builds == 1
    assert recorder.build_body_bytes == [result.context_bytes]
    assert result.context_bytes > tiny_model.bytes


@pytest.mark.beside
def test_the_probe_does_not_flood_a_loading_service(
        engine: Engine, tiny_model: ModelArtifact, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """While the model loads, the harness asks rarely (before: a 16-row /predict and an
    inspect every 20 ms, 300 requests in a 6 s load, which made a 5.45 GB load 1.9x slower)
    and takes the moments from the service's own stamps."""
    from tests.plugin_strategies import SlowLoad

    monkeypatch.setenv(*next(iter(PLUGINS.items())))
    run = run_bench(engine, ("slow-load",), tmp_path, trials=1, builders=("legacy",))
    stored = load_run(tmp_path / run.run_id)
    values = {s.metric: s.value for s in stored.samples if s.trial == 1}
    assert values["load_s"] >= SlowLoad.LOAD_DELAY_S
    # Counted by the service itself: every request it received before it could serve.
    assert values["probe_requests"] <= 5 * values["load_s"] + 10


def _introduce_the_runtime_to_buildkit(engine: Engine, runtime_ref: str, tmp_path: Path) -> None:
    """The first BuildKit build FROM the runtime image adds cache entries for the runtime's
    own layers, which stay while the runtime image does (a fresh engine's first such build in
    the suite failed this test's count: two entries nobody could prune). One build FROM it,
    before the count, so that the count sees only what the run adds."""
    if "buildkit" not in builders_of("auto"):
        return  # the run builds with the legacy builder alone; the test skips its BuildKit part
    context = tmp_path / "introduce-runtime"
    context.mkdir()
    (context / "Dockerfile").write_text(f"FROM {runtime_ref}\n")
    tag = "mlbench-test-buildkit-runtime:introduce"
    # Labelled as a cached image: should the test stop before the removal, `clean --all`
    # finds it.
    engine.build(context, "Dockerfile", tag, {CACHE_LABEL: "test"}, builder="buildkit",
                 no_cache=False)
    engine.remove_image(tag)


def test_failing_strategies_are_recorded_and_the_run_goes_on(
        engine: Engine, tiny_model: ModelArtifact, runtime_ref: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way a strategy fails, in one run (CI time: one run instead of three, each of
    which rebuilt volume): a build that fails, a service that cannot load, a start that never
    answers (bounded by the start time-out) and a model missing from the registry (the
    service says why in /ready: recorded at once, not as a time-out); volume, measured
    between them, is ok."""
    monkeypatch.setenv(*next(iter(PLUGINS.items())))
    _introduce_the_runtime_to_buildkit(engine, runtime_ref, tmp_path)
    cache_before = set(engine.build_cache())
    timeout_s = 20.0
    started = time.monotonic()
    run = run_bench(engine, ("broken-build", "crashing-service", "never-ready",
                             "registry-missing-object", "volume"), tmp_path,
                    start_timeout_s=timeout_s)
    assert time.monotonic() - started < 300
    assert run.failed
    stored = load_run(tmp_path / run.run_id)
    outcomes = stored.document["strategies"]
    assert stored.document["status"] == "incomplete"
    assert outcomes["broken-build"]["status"] == "failed"
    assert "fails on purpose" in outcomes["broken-build"]["failures"][0]["log_tail"]
    assert outcomes["crashing-service"]["status"] == "partial"
    assert "cannot load the model" in outcomes["crashing-service"]["failures"][0]["reason"]
    never = outcomes["never-ready"]["failures"][0]
    assert "timed out waiting for /health" in never["reason"]
    missing = outcomes["registry-missing-object"]["failures"][0]["reason"]
    assert "cannot load the model" in missing and "404" in missing
    assert "\n" not in missing and "timed out" not in missing
    assert outcomes["volume"]["status"] == "ok"
    assert any(s.strategy == "volume" and s.metric == "model_ready_s" for s in stored.samples)
    assert_nothing_labelled(engine)
    require_both_builders(stored.document["metadata"]["builders"])
    # The BuildKit cache entries this run added were counted and removed again.
    assert stored.document["metadata"]["build_cache"]["entries"] > 0
    assert set(engine.build_cache()) - cache_before == set()


def start_cli(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """`python -m bench ARGS` with the failing plugins and results under tmp_path."""
    env = {**os.environ, **PLUGINS, "MLBENCH_RESULTS": str(tmp_path)}
    return subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=project_path(),
                            env=env, stderr=subprocess.PIPE, text=True)


def wait_for_line(process: subprocess.Popen[str], fragment: str, timeout: float = 300) -> None:
    assert process.stderr is not None
    deadline = time.monotonic() + timeout
    for line in process.stderr:
        if fragment in line:
            return
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"never saw {fragment!r}")


def interrupt_and_load(process: subprocess.Popen[str], signum: int, tmp_path: Path,
                       engine: Engine) -> StoredRun:
    """Signal a running `bench run`; it must exit 130, keep its results marked interrupted
    (the volume strategy that ran first included) and leave nothing labelled."""
    process.send_signal(signum)
    process.communicate(timeout=300)
    assert process.returncode == 130
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    stored = load_run(folder)
    assert stored.document["status"] == "interrupted"
    assert any(s.strategy == "volume" and s.metric == "model_ready_s" for s in stored.samples)
    assert_nothing_labelled(engine, folder.name)  # the run's folder is named by its id
    return stored


# SIGINT here, SIGTERM during a start-up wait (test_faults): both signals, half the runs.
@pytest.mark.parametrize("signum", [signal.SIGINT])
def test_a_signal_during_a_build_leaves_nothing_and_keeps_results(
        engine: Engine, tiny_model: ModelArtifact, tmp_path: Path, signum: int) -> None:
    process = start_cli(tmp_path, "run", "--strategies", "volume,slow-build", "--model-size",
                        str(TINY_MODEL_BYTES), "--trials", "1", "--requests", "5",
                        "--builder", "legacy")
    wait_for_line(process, "[slow-build] cold build")
    time.sleep(3)  # inside the sleeping RUN step
    interrupt_and_load(process, signum, tmp_path, engine)


def test_clean_leaves_a_running_run_and_removes_it_once_it_ended(engine: Engine) -> None:
    """`clean` in one terminal while a run goes on in another (or beside the engine tests:
    CI runs two lanes): the running run's objects stay, named; once it ended, they go."""
    dead = subprocess.Popen(["true"])  # an owner pid that is no process: only the lock
    dead.wait()                         # says the run lives
    labels = {**run_labels("live-run", keep=False), "mlbench.owner_pid": str(dead.pid)}
    with liveness.holding("live-run"):
        engine.create_network("mlbench-live-run", labels)
        cleaned = subprocess.run([sys.executable, "-m", "bench", "clean"], capture_output=True,
                                 text=True, timeout=300)
        assert cleaned.returncode == 0, cleaned.stderr
        assert "left run live-run: still running" in cleaned.stdout
        assert engine.labelled(f"{RUN_LABEL}=live-run")["networks"] == ["mlbench-live-run"]
        # Nor does another run's start sweep it.
        assert "live-run" not in sweep_stale_runs(engine, Progress(quiet=True))
    cleaned = subprocess.run([sys.executable, "-m", "bench", "clean"], capture_output=True,
                             text=True, timeout=300)
    assert cleaned.returncode == 0 and "live-run" not in cleaned.stdout, cleaned.stderr
    assert_nothing_labelled(engine, "live-run")


def test_leftovers_of_a_dead_run_are_swept(engine: Engine) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    labels = {**run_labels("dead-run", keep=False), "mlbench.owner_pid": str(dead.pid)}
    engine.create_network("mlbench-dead-run", labels)
    engine.create_volume("mlbench-dead-run", labels)
    assert "dead-run" in sweep_stale_runs(engine, Progress(quiet=True))
    assert engine.labelled(f"{RUN_LABEL}=dead-run") == {"containers": [], "images": [],
                                                        "volumes": [], "networks": []}
