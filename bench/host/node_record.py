"""What a cluster of node engines is made of (bench.host.node_engines), written down before it
is made: the record `python -m bench clean` reads to remove what a harness killed with -9
left (bench.host.node_teardown)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.errors import StepFailed
from bench.host.fsutil import write_atomic

RUN_ROOT = Path("/run/mlbench-nodes")  # sockets, pid files, exec roots, records (tmpfs)
DATA_ROOT = Path("/var/lib/mlbench-nodes")  # the engines' images and containers


@dataclass(frozen=True)
class Node:
    index: int
    namespace: str
    host_veth: str
    address: str  # on the run's bridge
    socket: str  # unix:///...
    pid_file: str
    exec_root: str
    data_root: str
    node_id: str = ""  # in the swarm, once joined

    @property
    def base_url(self) -> str:
        return self.socket


@dataclass(frozen=True)
class ClusterRecord:
    tag: str
    owner_pid: int
    bridge: str
    gateway: str  # the bridge's address: the manager's, and the servers' for the nodes
    subnet: str
    nodes: tuple[Node, ...]
    reach: tuple[str, ...] = ()  # subnets of the harness's networks the nodes reach
    # The harness's engine became a manager for this cluster (a record of an older harness:
    # the nodes now make their own swarm), to be left by `clean`.
    swarm_made: bool = False
    gateway_bridge_made: bool = False  # and that made its docker_gwbridge

    def save(self) -> None:
        write_atomic(RUN_ROOT / self.tag / "nodes.json", json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> ClusterRecord:
        found = json.loads(path.read_text())
        found["nodes"] = tuple(Node(**node) for node in found["nodes"])
        found["reach"] = tuple(found.get("reach", ()))
        return cls(**found)


def run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(command), capture_output=True, text=True)
    if check and done.returncode != 0:
        raise StepFailed(f"{' '.join(command)} failed: {done.stderr.strip()[-300:]}")
    return done
