"""The fault matrix: what the harness does when things go wrong, against the real engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from bench.engine import RUN_LABEL, BindMount, DockerEngine, Engine
from bench.errors import EngineUnavailable
from bench.measure.spec import StartSpec, TrialSettings, container_spec
from bench.model.source import ModelArtifact
from bench.progress import Progress
from bench.results.store import load_run
from bench.run.config import RunConfig
from bench.run.runner import BenchmarkRun
from tests.conftest import TINY_MODEL_BYTES, project_path
from tests.integration.socket_proxy import BuildBodyRecorder
from tests.integration.test_end_to_end import (
    PLUGINS,
    assert_nothing_labelled,
    interrupt_and_load,
    run_bench,
    short_settle,
    start_cli,
    wait_for_line,
)

pytestmark = pytest.mark.engine


# The never-ready and registry-missing-object strategies run in
# test_end_to_end.test_failing_strategies_are_recorded_and_the_run_goes_on, with the other
# failing plugins: one run instead of three.


@pytest.mark.parametrize(("strategy", "limit", "when"), [
    # Python with scikit-learn imported needs ~130 MB: 48 MB is killed at start-up.
    ("volume", 48_000_000, "start-up"),
    # 60 MB kept by every /predict: the first correct prediction fits in 350 MB, the
    # latency requests after it do not (the kill comes from another path of the trial).
    ("leaky-service", 350_000_000, "latency requests"),
], ids=["at-start-up", "during-latency-requests"])
def test_an_oom_killed_container_is_recorded_as_such(
        engine: Engine, tiny_model: ModelArtifact, tmp_path: Path, runtime_ref: str,
        monkeypatch: pytest.MonkeyPatch, strategy: str, limit: int, when: str) -> None:
    # The runtime's libraries must be in the page cache already (as on a machine that ran
    # the service before): read from disk inside the container, they are charged to its
    # limit, which then thrashes on them instead of being killed (seen after a test dropped
    # the cache).
    from bench.host import machine_state

    monkeypatch.setenv(*next(iter(PLUGINS.items())))
    machine_state.read_back(machine_state.files_under(engine.host_paths(runtime_ref, "/")))
    run = run_bench(engine, (strategy,), tmp_path, memory_limit_bytes=limit,
                    start_timeout_s=60, builders=("legacy",))
    assert run.failed
    failure = load_run(tmp_path / run.run_id).document["strategies"][strategy]["failures"][0]
    assert f"OOM-killed (memory limit {limit} bytes)" in failure["reason"]
    answered = failure["log_tail"].count('"POST /predict HTTP/1.1" 200')
    if when == "start-up":
        assert answered == 0
    else:  # it served its first prediction (and some latency requests), then was killed
        assert answered >= 1, failure["log_tail"]
    assert_nothing_labelled(engine)


# SIGTERM here, SIGINT during a build (test_end_to_end): both signals, half the runs.
@pytest.mark.parametrize("signum", [signal.SIGTERM])
def test_a_signal_during_a_start_up_wait_leaves_nothing(
        engine: Engine, tiny_model: ModelArtifact, tmp_path: Path, signum: int) -> None:
    process = start_cli(tmp_path, "run", "--strategies", "volume,never-ready", "--model-size",
                        str(TINY_MODEL_BYTES), "--trials", "1", "--requests", "5",
                        "--builder", "legacy", "--start-timeout", "600")
    wait_for_line(process, "[never-ready] warm-up")  # its first start
    time.sleep(2)  # polling /health of a container that will never answer
    stored = interrupt_and_load(process, signum, tmp_path, engine)
    assert stored.document["strategies"]["never-ready"]["status"] == "failed"


def test_a_signal_during_the_report_leaves_no_half_written_file(tmp_path: Path) -> None:
    from tests.stored_runs import write_run

    folder = write_run(tmp_path, "run-r")
    before = (folder / "run.json").read_bytes(), (folder / "samples.csv").read_bytes()
    process = subprocess.Popen([sys.executable, "-m", "bench", "report", str(folder),
                                "--dpi", "1200", "--format", "png,svg,pdf"],
                               cwd=project_path(), stderr=subprocess.PIPE, text=True)
    wait_for_line(process, "-> report")
    # Interrupt once the first chart is written, while the others are being drawn (a fixed
    # sleep raced a report that got faster).
    charts = folder / "report-en" / "charts"
    deadline = time.monotonic() + 60
    while not list(charts.glob("*.png")) and time.monotonic() < deadline:
        time.sleep(0.05)
    written = list(charts.glob("*.png"))
    assert written, "no chart appeared within 60 s: the signal would test an empty folder"
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=120)
    assert process.returncode == 130
    assert ((folder / "run.json").read_bytes(), (folder / "samples.csv").read_bytes()) == before
    # No temporary file of write_atomic (.table.md.XXXX) or of a chart (.stem.partial.png)
    # anywhere under the report folder.
    leftovers = [p for p in (folder / "report-en").rglob(".*")]
    assert leftovers == []
    for chart in charts.glob("*.png"):
        assert chart.read_bytes().endswith(b"IEND\xaeB`\x82")  # every PNG there is whole


@pytest.mark.beside
def test_the_engine_stopping_mid_run_keeps_results_and_names_the_fix(
        engine: Engine, tiny_model: ModelArtifact, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = BuildBodyRecorder(tmp_path / "engine.sock")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'engine.sock'}")
    through_proxy = DockerEngine.connect()
    config = RunConfig(strategies=("volume", "baked"), model_path=None,
                       model_size_bytes=TINY_MODEL_BYTES, trials=1, builders=("legacy",),
                       latency_requests=5, start_timeout_s=60, results_root=tmp_path,
                       warmup=False)  # CI time; the warm-up path: test_end_to_end
    run = BenchmarkRun(config, through_proxy, Progress(quiet=True))
    short_settle(run)
    original = BenchmarkRun._trial
    measured: list[str] = []

    def then_stop(self: BenchmarkRun, strategy_run: Any, step: Any) -> None:
        original(self, strategy_run, step)
        measured.append(step.strategy)
        proxy.cut()  # the engine "stops" after the first measured start (no warm-ups)

    monkeypatch.setattr(BenchmarkRun, "_trial", then_stop)
    with pytest.raises(EngineUnavailable, match=r"stopped answering.*bench clean"):
        run.execute()
    stored = load_run(tmp_path / run.run_id)
    assert stored.document["status"] == "incomplete"
    # The start measured before the engine stopped is on disk (flushed after every start).
    assert measured and any(s.strategy == measured[0] and s.metric == "model_ready_s"
                            and not s.warmup for s in stored.samples)
    # The engine itself never stopped: what the run left is removed by `clean`.
    engine.remove_labelled(f"{RUN_LABEL}={run.run_id}")
    assert_nothing_labelled(engine)


def test_no_engine_is_a_one_line_error_naming_the_fix(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path / 'nothing.sock'}"}
    result = subprocess.run([sys.executable, "-m", "bench", "run", "--model-size", "1MB"],
                            cwd=project_path(), env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 3
    (line,) = result.stderr.strip().splitlines()
    assert "no Docker engine answers" in line and "dockerd" in line


def test_a_run_that_does_not_fit_on_disk_is_refused_with_the_numbers(tmp_path: Path) -> None:
    env = {**os.environ, "MLBENCH_RESULTS": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "bench", "run", "--model-size", "50TB",
                             "--strategies", "baked,registry"], cwd=project_path(), env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "not enough free disk" in last and "TB" in last and "--skip-disk-check" in last
    assert not list(tmp_path.iterdir())  # refused before anything was measured or stored


def test_every_container_runs_hardened(engine: Engine, tiny_model: ModelArtifact) -> None:
    from bench.host.paths import cache_dir
    from bench.prepare.base_image import ensure_base_image
    from bench.prepare.runtime_image import ensure_runtime_image
    from bench.run.cleanup import run_labels

    progress = Progress(quiet=True)
    runtime = ensure_runtime_image(engine, ensure_base_image(engine, progress), cache_dir(),
                                   progress).ref
    # The spec the trials make (spec.container_spec), with volume's start as it is.
    start = StartSpec("-", env={"MODEL_PATH": "/app/model.joblib"},
                      binds=[BindMount(str(tiny_model.path), "/app/model.joblib")])
    spec = container_spec(runtime, "mlbench-hardening-check",
                          run_labels("hardening-check", keep=False), start, TrialSettings())
    container_id = engine.create_container(spec)
    try:
        inspected = json.loads(subprocess.run(["docker", "inspect", container_id],
                                              capture_output=True, text=True,
                                              check=True).stdout)[0]
        image_user = json.loads(subprocess.run(
            ["docker", "image", "inspect", "-f", "{{json .Config.User}}", runtime],
            capture_output=True, text=True, check=True).stdout)
    finally:
        engine.remove_container(container_id)
    host = inspected["HostConfig"]
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert "/tmp" in host["Tmpfs"]
    assert all(not m["RW"] for m in inspected["Mounts"])
    user = inspected["Config"]["User"] or image_user
    assert user not in ("", "0", "root")
    assert_nothing_labelled(engine)
