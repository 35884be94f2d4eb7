"""Nodes that are separate engines (bench/host/node_engines.py, issue 29): a swarm of the
harness's engine and two dockerd of their own, each in a network namespace of the test's
making, serves a tiny model on both nodes; and nothing of it is left, after a normal end,
after a failure, and after the harness is killed with -9 (`clean`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import docker.errors
import pytest

from bench import cli
from bench.engine import Engine
from bench.engine.types import BindMount, ContainerSpec
from bench.errors import StepFailed
from bench.host import node_engines
from bench.host.node_engines import NodeCluster, check_can_make_nodes
from bench.host.paths import SERVICE_DIR
from bench.measure.probes import ServiceClient, predictions_match
from bench.model.source import ModelArtifact
from bench.progress import Progress
from bench.service_env import service_env

pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(os.geteuid() != 0, reason="node engines need root")]

MODEL_IN_TASK = "/models/model.joblib"
SERVE_S = 120
STOP_WAIT_S = 120  # the engine's stop (up to node_engines.STOP_S) on a loaded machine


def _nothing_left(tag: str) -> list[str]:
    """What of a cluster with this tag still exists on the host."""
    left = []
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    left += [f"netns {line.split()[0]}" for line in namespaces.splitlines()
             if line.startswith(f"mlbench-{tag}-")]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    left += [f"link {line.split(':')[1].strip()}" for line in links.splitlines()
             if f"mlb{tag}" in line or f"mlbr{tag}" in line]
    left += [f"folder {p}" for p in (node_engines.RUN_ROOT / tag, node_engines.DATA_ROOT / tag)
             if p.exists()]
    engines = subprocess.run(["pgrep", "-af", f"/run/mlbench-nodes/{tag}/"],
                             capture_output=True, text=True).stdout
    left += [f"process {line}" for line in engines.splitlines()]
    mounts = Path("/proc/self/mounts").read_text()
    left += [f"mount {line.split()[1]}" for line in mounts.splitlines()
             if f"/mlbench-nodes/{tag}/" in line]
    return left


def test_two_node_engines_serve_the_model_each_in_its_own_engine(
        engine: Engine, tiny_model: ModelArtifact, runtime_ref: str, tmp_path: Path) -> None:
    check_can_make_nodes()
    tag = "tst2"
    with NodeCluster(engine, tag, 2, Progress(quiet=True)) as cluster:
        assert len({node.node_id for node in cluster.nodes}) == 2
        cluster.distribute(runtime_ref, tmp_path / "images")
        spec = ContainerSpec(
            image=runtime_ref, name=f"mlbench-nodes-{tag}", labels={},
            env=service_env(model_path=MODEL_IN_TASK),
            # The nodes share this host's filesystem: a host path is on every node, as the
            # README says a multi-node swarm needs for the strategies that bind it.
            binds=(BindMount(str(SERVICE_DIR), "/app/backend"),
                   BindMount(str(tiny_model.path), MODEL_IN_TASK)))
        service = engine.create_service(spec, 2, nodes=[n.node_id for n in cluster.nodes])
        try:
            by_node = {node.node_id: node for node in cluster.nodes}
            deadline = time.monotonic() + SERVE_S
            placed: list[tuple[str, str, str]] = []
            while time.monotonic() < deadline:
                placed = engine.service_task_nodes(service)
                if len(placed) == 2 and all(state == "running" and container
                                            for _, state, container in placed):
                    break
                time.sleep(0.5)
            # One task on each node, none on the manager.
            assert sorted(node for node, _, _ in placed) == sorted(by_node), placed
            for node_id, _, container in placed:
                node = by_node[node_id]
                # The task's container really is in that node's engine, not the harness's.
                node_engine = cluster.engine(node)
                assert node_engine.container_state(container).status == "running"
                with pytest.raises(docker.errors.NotFound):
                    engine.container_inspect(container)
                client = ServiceClient(node_engine.published_port(container), node.address)
                try:
                    while True:
                        try:
                            answer = client.predict(tiny_model.reference_rows)
                            if answer.status == 200:
                                break
                        except OSError:
                            pass
                        if time.monotonic() > deadline:
                            raise AssertionError(f"node {node.index} never served")
                        time.sleep(0.5)
                    assert predictions_match(answer.body["predictions"],
                                             tiny_model.reference_predictions)
                finally:
                    client.close()
        finally:
            engine.remove_service(service)
    assert _nothing_left(tag) == []
    assert not engine.swarm_active()


def test_a_failed_start_leaves_nothing(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engines start, then joining fails: the cluster is removed before the error
    reaches the run."""
    check_can_make_nodes()
    tag = "tstf"

    def refuse(*_: object) -> str:
        raise StepFailed("no token today")

    monkeypatch.setattr(type(engine), "swarm_worker_token", refuse)
    with (pytest.raises(StepFailed, match="no token today"),
          NodeCluster(engine, tag, 1, Progress(quiet=True))):
        pass
    assert _nothing_left(tag) == []
    assert not engine.swarm_active()


KILLED = textwrap.dedent("""
    import signal, sys, time
    # As in a terminal: a test worker may have inherited SIGINT ignored, and Python keeps an
    # ignored SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from bench.engine import DockerEngine
    from bench.host.node_engines import NodeCluster
    from bench.progress import Progress
    with NodeCluster(DockerEngine.connect(), sys.argv[1], 1, Progress(quiet=True)):
        print("up", flush=True)
        time.sleep(600)
""")


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGINT])
def test_a_harness_killed_or_interrupted_leaves_nothing_after_clean(
        engine: Engine, how: signal.Signals, capsys: pytest.CaptureFixture[str]) -> None:
    """Interrupted (Ctrl-C), the harness removes its cluster on the way out; killed with -9
    it cannot: `clean` (and the next run's start) finds the cluster's record, sees its
    harness gone, and removes it."""
    check_can_make_nodes()
    tag = f"tk{int(how)}"
    harness = subprocess.Popen([sys.executable, "-c", KILLED, tag], stdout=subprocess.PIPE,
                               text=True, cwd=Path(__file__).parents[2])
    try:
        assert harness.stdout is not None
        assert harness.stdout.readline().strip() == "up"
        assert (node_engines.RUN_ROOT / tag / "nodes.json").exists()
        harness.send_signal(how)
        harness.wait(timeout=STOP_WAIT_S)
        if how == signal.SIGINT:
            assert _nothing_left(tag) == []
    finally:  # a harness that outlived the test would keep its node in the next test's swarm
        if harness.poll() is None:
            harness.kill()
            harness.wait()
    assert cli.main(["clean"]) == 0
    assert _nothing_left(tag) == []
    assert not engine.swarm_active()
