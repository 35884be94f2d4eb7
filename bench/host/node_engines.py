"""Nodes that are separate engines (issue 29's `--nodes N`): each a `dockerd` of its own in a
network namespace of the run's making, joined by a veth pair to one bridge the run creates,
with its own data root, exec root, socket and cgroup parent; where asked, the nodes form a
swarm of their own on that bridge, node 0's engine its manager.

    host                       node k (netns mlbench-<tag>-<k>)
    bridge mlbr<tag> 10.77.S.1 <- veth mlb<tag>n<k>h / eth0 10.77.S.(k+2)
                                  dockerd -H unix:///run/mlbench-nodes/<tag>/<k>/docker.sock

Only the run's own addresses are used: the bridge's subnet 10.77.S.0/24 (S the first one no
interface of this host holds), the nodes' default bridges 10.78.<16 S + k>.0/24. The
engine is started with `nsenter --net=/run/netns/...`, not `ip netns exec`, whose fresh /sys
hides the cgroup v1 mounts (dockerd: "Devices cgroup isn't mounted"; ../shared/DESIGN.md
section 4).

Everything a cluster makes is written to its record (bench.host.node_record:
/run/mlbench-nodes/<tag>/nodes.json, with the harness's pid) before it is made, so
bench.host.node_teardown (called by `clean` and at every run's start) removes what a harness
killed with -9 left: the engines by their pid files, what a dead engine left running, their
mounts and data roots, the namespaces, the veths, the bridge and the forward rule.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.engine import DockerEngine, Engine
from bench.errors import StepFailed, UsageError
from bench.host.host_tools import require
from bench.host.node_record import DATA_ROOT, RUN_ROOT, ClusterRecord, Node
from bench.host.node_record import run as run_host
from bench.host.node_teardown import teardown
from bench.progress import Progress
from bench.servers.link import LinkRate, shape_egress

SUBNETS = ipaddress.IPv4Network("10.77.0.0/16")  # one /24 a cluster
ENGINE_START_S = 60.0  # dockerd answers in about 8 s here; a loaded machine takes longer
TOOLS = ("ip", "nsenter", "dockerd", "iptables", "tc")
MAX_NODES = 16  # the nodes' default bridges: 16 /24s a cluster (_node_bip)


def check_can_make_nodes() -> None:
    """A usage error, before anything is built, where this host cannot run node engines."""
    require("--nodes", TOOLS, "iproute2 util-linux iptables docker.io",
            "engines in network namespaces")


def _free_subnet() -> ipaddress.IPv4Network:
    held = run_host("ip", "-o", "-4", "addr", "show").stdout
    for subnet in SUBNETS.subnets(new_prefix=24):
        if f" {subnet.network_address + 1}/" not in held:
            return subnet
    raise StepFailed(f"no free /24 left in {SUBNETS} for the nodes' bridge")


def _plan(tag: str, count: int) -> ClusterRecord:
    subnet = _free_subnet()
    nodes = []
    for k in range(count):
        run_dir = RUN_ROOT / tag / str(k)
        nodes.append(Node(
            index=k, namespace=f"mlbench-{tag}-{k}", host_veth=f"mlb{tag}n{k}h",
            address=str(subnet.network_address + 2 + k),
            socket=f"unix://{run_dir}/docker.sock", pid_file=str(run_dir / "dockerd.pid"),
            exec_root=str(run_dir / "exec"), data_root=str(DATA_ROOT / tag / str(k))))
    return ClusterRecord(tag=tag, owner_pid=os.getpid(), bridge=f"mlbr{tag}",
                         gateway=str(subnet.network_address + 1), subnet=str(subnet),
                         nodes=tuple(nodes))


def _node_bip(record: ClusterRecord, node: Node) -> str:
    """The node engine's own default bridge: a /24 of 10.78/16 that no other node of this
    cluster, nor of a cluster on another /24 of SUBNETS, holds (16 nodes a cluster)."""
    slot = int(record.gateway.split(".")[2])
    return f"10.78.{(slot * 16 + node.index) % 256}.1/24"


def _make_network(record: ClusterRecord) -> None:
    run_host("ip", "link", "add", record.bridge, "type", "bridge")
    run_host("ip", "addr", "add", f"{record.gateway}/24", "dev", record.bridge)
    run_host("ip", "link", "set", record.bridge, "up")
    # The engine's FORWARD policy is DROP once it has run; the nodes' traffic with each other
    # crosses the bridge and, with br_netfilter loaded, that chain.
    run_host("iptables", "-I", "FORWARD", "-i", record.bridge, "-o", record.bridge, "-j", "ACCEPT")
    for node in record.nodes:
        inner = f"mlb{record.tag}n{node.index}c"
        run_host("ip", "netns", "add", node.namespace)
        run_host("ip", "link", "add", node.host_veth, "type", "veth", "peer", "name", inner)
        run_host("ip", "link", "set", node.host_veth, "master", record.bridge)
        run_host("ip", "link", "set", node.host_veth, "up")
        run_host("ip", "link", "set", inner, "netns", node.namespace)
        for command in (("ip", "link", "set", inner, "name", "eth0"),
                        ("ip", "addr", "add", f"{node.address}/24", "dev", "eth0"),
                        ("ip", "link", "set", "eth0", "up"),
                        ("ip", "link", "set", "lo", "up"),
                        # The run's servers (on a bridge network of the harness's engine)
                        # through the host; no default route: nothing else is reachable,
                        # and a swarm task's image is not looked for on Docker Hub first.
                        *(("ip", "route", "add", subnet, "via", record.gateway)
                          for subnet in record.reach)):
            run_host("nsenter", f"--net=/run/netns/{node.namespace}", *command)


def _start_engine(record: ClusterRecord, node: Node, log: Path,
                  registries: tuple[str, ...]) -> None:
    Path(node.exec_root).mkdir(parents=True, exist_ok=True)
    Path(node.data_root).mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{node.namespace}", "dockerd",
             "--data-root", node.data_root, "--exec-root", node.exec_root,
             "-H", node.socket, "--pidfile", node.pid_file, "--bip", _node_bip(record, node),
             "--cgroup-parent", f"mlbench-{record.tag}-{node.index}",
             # Its pulls from the run's registry are plain HTTP.
             *(f"--insecure-registry={r}" for r in (record.subnet, *registries))],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_for_engine(node: Node, log: Path) -> DockerEngine:
    deadline = time.monotonic() + ENGINE_START_S
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            return DockerEngine.connect(node.base_url, node.address)
        time.sleep(0.5)
    tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
    raise StepFailed(f"the engine of node {node.index} did not answer within "
                     f"{ENGINE_START_S:.0f} s", "\n".join(tail))


class NodeCluster:
    """N node engines (a swarm of their own where asked); a context manager that removes all
    of it on leaving, after a failure too."""

    def __init__(self, manager: Engine, tag: str, count: int, progress: Progress,
                 registries: tuple[str, ...] = (), reach: tuple[str, ...] = (),
                 swarm: bool = True) -> None:
        """`registries`: HOST:PORT of the run's OCI registry, which the nodes pull from
        over plain HTTP; `reach`: the subnets of the harness's networks they are routed to
        (where the run's servers are); `swarm`: make them a swarm, node 0 its manager (a
        run's nodes need none: each runs its containers on its own engine)."""
        if count < 1:
            raise UsageError(f"--nodes {count}: pass 1 or more")
        self.manager, self.progress, self.registries = manager, progress, registries
        self.swarm = swarm
        self.record = dataclasses.replace(_plan(tag, count), reach=reach)
        self.engines: dict[int, DockerEngine] = {}

    def __enter__(self) -> NodeCluster:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self.record.nodes

    def engine(self, node: Node) -> DockerEngine:
        return self.engines[node.index]

    def files_dir(self, node: Node) -> Path:
        """Where model files fetched for a node live (removed with the cluster)."""
        return DATA_ROOT / self.record.tag / f"files-{node.index}"

    def shape(self, rate: LinkRate) -> None:
        """Each node's link: what the host sends it (pulls, fetches, downloads, pages)
        limited to `rate`, on the host's end of its veth."""
        for node in self.nodes:
            shape_egress(None, rate, node.host_veth)

    def received_bytes(self, node: Node) -> int:
        """Bytes the node's link has carried to it so far (its veth's host end sent them)."""
        return int(Path(f"/sys/class/net/{node.host_veth}/statistics/tx_bytes").read_text())

    def in_namespace(self, node: Node, command: list[str], env: dict[str, str]) -> str:
        """Run a host command in the node's network namespace (what the node itself fetches
        crosses its link), with `env` added to this process's environment; its output."""
        done = subprocess.run(["nsenter", f"--net=/run/netns/{node.namespace}", *command],
                              capture_output=True, text=True, env={**os.environ, **env})
        if done.returncode != 0:
            raise StepFailed(f"node {node.index}: {' '.join(command[:3])} failed: "
                             f"{done.stderr.strip()[-300:]}")
        return done.stdout

    def _start(self) -> None:
        record = self.record
        record.save()  # before anything exists: `clean` finds what a kill -9 leaves
        log = RUN_ROOT / record.tag / "dockerd.log"
        with self.progress.step(f"{len(record.nodes)} node engines on bridge {record.bridge} "
                                f"({record.subnet})"):
            _make_network(record)
            for node in record.nodes:
                _start_engine(record, node, log, self.registries)
            for node in record.nodes:
                self.engines[node.index] = _wait_for_engine(node, log)
        if self.swarm:
            self._join()

    def _join(self) -> None:
        """The nodes as a swarm of their own on the bridge: node 0's engine its manager, the
        others its workers. Not the harness's engine: making it a manager and leaving again
        touches every network of it, and runs beside this one lost their S3 server's
        connection meanwhile (CI, twice: a test lane's run while the other lane's node tests
        made and left swarms)."""
        record = self.record
        first, *others = record.nodes
        manager = self.engines[first.index]
        with self.progress.step("a swarm of the node engines, node 0 its manager"):
            manager.swarm_init(first.address)
            token = manager.swarm_worker_token()
            joined = [dataclasses.replace(first, node_id=manager.swarm_node_id())]
            for node in others:
                joined.append(dataclasses.replace(node, node_id=self.engines[
                    node.index].swarm_join(first.address, token, node.address)))
            self.record = record = dataclasses.replace(record, nodes=tuple(joined))
            record.save()
            deadline = time.monotonic() + ENGINE_START_S
            while not all(manager.swarm_node_ready(n.node_id) for n in record.nodes):
                if time.monotonic() > deadline:
                    raise StepFailed("the nodes joined but the manager does not see them ready")
                time.sleep(0.2)

    @property
    def swarm_manager(self) -> DockerEngine:
        """The engine that manages the nodes' swarm (node 0's)."""
        return self.engines[self.record.nodes[0].index]

    def distribute(self, image: str, scratch: Path) -> None:
        """Give every node an image it would otherwise pull (`docker save | docker load`)."""
        archive = scratch / "image.tar"
        scratch.mkdir(parents=True, exist_ok=True)
        try:
            self.manager.save_image(image, archive)
            with (self.progress.step(f"loading {image} into {len(self.nodes)} nodes"),
                  ThreadPoolExecutor(len(self.nodes)) as pool):  # each node its own engine
                list(pool.map(lambda node: self.engine(node).load_image(archive), self.nodes))
        finally:
            archive.unlink(missing_ok=True)

    def close(self) -> None:
        for engine in self.engines.values():
            engine.close()
        self.engines.clear()
        teardown(self.record, self.manager)
