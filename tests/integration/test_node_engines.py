"""Nodes that are separate engines (bench/host/node_engines.py, issue 29): a swarm of the
harness's engine and two dockerd of their own, each in a network namespace of the test's
making, serves a tiny model on both nodes; and nothing of it is left, after a normal end,
after a failure, and after the harness is killed with -9 (`clean`)."""

from __future__ import annotations

import contextlib
import os
import shutil
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
from bench.host import node_record
from bench.host.node_engines import NodeCluster, check_can_make_nodes
from bench.host.node_record import Node
from bench.host.paths import SERVICE_DIR
from bench.measure.probes import ServiceClient, predictions_match
from bench.model.source import ModelArtifact
from bench.progress import Progress
from bench.results.store import load_run
from bench.service_env import service_env
from tests.integration.test_end_to_end import assert_nothing_labelled, failures_of, run_bench

pytestmark = [pytest.mark.engine,
              pytest.mark.skipif(os.geteuid() != 0, reason="node engines need root")]

MODEL_IN_TASK = "/models/model.joblib"
SERVE_S = 120
STOP_WAIT_S = 120  # the engine's stop (up to node_teardown.STOP_S) on a loaded machine


def _nothing_left(tag: str) -> list[str]:
    """What of a cluster with this tag still exists on the host."""
    left = []
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    left += [f"netns {line.split()[0]}" for line in namespaces.splitlines()
             if line.startswith(f"mlbench-{tag}-")]
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    left += [f"link {line.split(':')[1].strip()}" for line in links.splitlines()
             if f"mlb{tag}" in line or f"mlbr{tag}" in line]
    left += [f"folder {p}" for p in (node_record.RUN_ROOT / tag, node_record.DATA_ROOT / tag)
             if p.exists()]
    engines = subprocess.run(["pgrep", "-af", f"/run/mlbench-nodes/{tag}/"],
                             capture_output=True, text=True).stdout
    left += [f"process {line}" for line in engines.splitlines()]
    # A container of a node engine that died: its processes stay in the node's cgroups.
    for cgroup in Path("/proc").glob("[0-9]*/cgroup"):
        with contextlib.suppress(OSError):
            if f"/mlbench-{tag}-" in cgroup.read_text():
                left.append(f"process {cgroup.parent.name} in a node's cgroup")
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
        swarm = cluster.swarm_manager  # node 0's engine: the harness's stays out of swarms
        service = swarm.create_service(spec, 2, nodes=[n.node_id for n in cluster.nodes])
        try:
            by_node = {node.node_id: node for node in cluster.nodes}
            deadline = time.monotonic() + SERVE_S
            placed: list[tuple[str, str, str]] = []
            while time.monotonic() < deadline:
                placed = swarm.service_task_nodes(service)
                if len(placed) == 2 and all(state == "running" and container
                                            for _, state, container in placed):
                    break
                time.sleep(0.5)
            # One task on each node.
            assert sorted(node for node, _, _ in placed) == sorted(by_node), placed
            for node_id, _, container in placed:
                node = by_node[node_id]
                # The task's container really is in that node's engine, not the harness's.
                node_engine = cluster.engine(node)
                assert container, placed
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
            swarm.remove_service(service)
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
        assert (node_record.RUN_ROOT / tag / "nodes.json").exists()
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


@pytest.mark.skipif(shutil.which("docker-registry") is None,
                    reason="needs Debian's docker-registry (apt-get install docker-registry)")
def test_a_run_on_nodes_measures_each_node_rolls_out_and_survives_a_node_killed(
        engine: Engine, tiny_model: ModelArtifact, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`run --fresh-node --nodes 1,2 --rollout`: every start pulls and fetches on one, then
    on both node engines at once, over each node's own link, and serves from each, each node
    as fresh as the first (node 0's second start finds nothing of its first); registry rolls
    out on both nodes; mmap's node 1 is killed (SIGKILL of its dockerd) once it has the
    next version's file, before its service is replaced: it is reported with its reason and
    node 0 rolls out. Then nothing of it is left, the dead engine's containerd included."""
    check_can_make_nodes()
    from bench.measure.node_fleet import NodeFleet

    original = NodeFleet._fetch
    killed: list[int] = []

    def fetch_then_die(self: NodeFleet, node: Node, pairs: list[str]) -> int:
        fetched = original(self, node, pairs)
        if node.index == 1 and "-mmap-rollout-v2" in " ".join(pairs) and not killed:
            pid = int(Path(node.pid_file).read_text())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        return fetched

    monkeypatch.setattr(NodeFleet, "_fetch", fetch_then_die)
    strategies = ("registry", "mmap")  # the model downloaded by the service, or fetched
    run = run_bench(engine, strategies, tmp_path, builders=("legacy",), fresh_node=True,
                    nodes=(1, 2), rollout=True)
    stored = load_run(tmp_path / run.run_id)
    assert killed
    assert set(failures_of(stored)) == {"mmap"}, failures_of(stored)
    model_bytes = tiny_model.path.stat().st_size

    def values(name: str, condition: str, metric: str) -> list[float]:
        return [s.value for s in stored.samples if s.strategy == name
                and s.condition == condition and s.metric == metric]

    (flat_bytes,) = values("mmap", "-", "model_file_bytes")  # the flat file, as prepared
    # What each node's own link carried: the model downloaded by the service (registry) or
    # copied from the store (mmap: its flat file). The nodes share no files and no images.
    least = {"registry": model_bytes, "mmap": flat_bytes}
    for name in strategies:
        prefix = {"mmap": "no prefetch, ", "registry": "cold cache volume, "}.get(name, "")
        for condition in (f"{prefix}1 fresh node, node 0",
                          *(f"{prefix}2 fresh nodes, node {k}" for k in (0, 1))):
            # Every node served a correct prediction, measured on its own.
            assert len(values(name, condition, "model_ready_s")) == 1, (name, condition)
            received = values(name, condition, "node_received_bytes")
            assert received and received[0] >= least[name] > 0, (name, condition, received)
        ready = values(name, f"{prefix}2 fresh nodes", "all_ready_s")
        assert len(ready) == 1 and ready[0] > 0
        total = values(name, f"{prefix}2 fresh nodes", "nodes_received_total_bytes")
        assert total and total[0] >= 2 * least[name]
    for condition in ("no prefetch, 1 fresh node, node 0",
                      *(f"no prefetch, 2 fresh nodes, node {k}" for k in (0, 1))):
        # mmap's folder, fetched by each node: the flat file and its small header
        (fetched,) = values("mmap", condition, "node_fetch_bytes")
        assert flat_bytes <= fetched < flat_bytes + 64 * 1024
    # The node kept the runtime's layers (pulled once, before the trials): a start pulls
    # the strategy's own layer (its service code), not the 600 MB of Python and libraries
    # under it.
    for k in (0, 1):
        (pulled,) = values("registry", f"cold cache volume, 2 fresh nodes, node {k}",
                           "pull_bytes")
        assert 0 < pulled < engine.image_bytes(run.runtime.ref) / 10
    # The rollout: on both nodes for registry, on node 0 only for mmap.
    for k in (0, 1):
        assert values("registry", f"2 fresh nodes, node {k}", "rollout_s")[0] > 0
    assert values("registry", "2 fresh nodes", "rollout_s")[0] > 0
    assert values("mmap", "2 fresh nodes, node 0", "rollout_s")[0] > 0
    assert not values("mmap", "2 fresh nodes, node 1", "rollout_s")
    assert not values("mmap", "2 fresh nodes", "rollout_s")  # not every node rolled out
    failures = stored.document["strategies"]["mmap"]["failures"]
    assert [(f["phase"], f["condition"]) for f in failures] == [
        ("rollout", "2 fresh nodes, node 1")], failures
    assert failures[0]["reason"]
    assert _nothing_left(run.run_id[-4:]) == []
    assert not engine.swarm_active()
    assert_nothing_labelled(engine, run.run_id)
    # The shared runtime, pushed for the nodes, keeps no name of the run's registry.
    names = (engine.image_inspect(run.runtime.ref) or {}).get("RepoTags") or []
    assert run.node is not None
    assert not [n for n in names if n.startswith(run.node.registry.address)], names
