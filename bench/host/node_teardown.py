"""Removing a cluster of node engines (bench.host.node_engines), whatever of it exists: after
a normal end, a failed start, and (`python -m bench clean`, every run's start) after the
harness was killed with -9."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from bench.engine import DockerEngine, Engine
from bench.host.node_record import DATA_ROOT, RUN_ROOT, ClusterRecord, Node
from bench.host.node_record import run as _run
from bench.progress import Progress

STOP_S = 20.0


def _pid(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    """Running: an engine this process started stays a zombie after it exits until it is
    reaped (reaped here), and a zombie answers kill(0) (a stop then waited STOP_S for
    nothing: 21 s a node)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _stop_engine(node: Node) -> None:
    """Remove the node's containers through its engine, then stop the engine (TERM, then
    KILL), so no container shim outlives it."""
    with contextlib.suppress(Exception):
        engine = DockerEngine.connect(node.base_url)
        try:
            with contextlib.suppress(Exception):
                engine.swarm_leave()
            engine.remove_all_containers()
        finally:
            engine.close()
    pid = _pid(node.pid_file)
    if pid is None or not alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_S
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


def _kill_leftovers(record: ClusterRecord) -> None:
    """Kill what an engine that died (SIGKILL, a crash) left running: its containerd and
    shims name the node's folders on their command lines, and its containers' processes
    run in the cgroups of its cgroup parent."""
    import psutil

    marks = (str(RUN_ROOT / record.tag) + "/", str(DATA_ROOT / record.tag) + "/")
    for process in psutil.process_iter(["cmdline"]):
        if process.pid == os.getpid():
            continue
        line = " ".join(process.info.get("cmdline") or [])
        if any(mark in line for mark in marks) or _in_node_cgroup(process.pid, record.tag):
            with contextlib.suppress(psutil.Error):
                process.kill()


def _in_node_cgroup(pid: int, tag: str) -> bool:
    try:
        return f"/mlbench-{tag}-" in Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return False


def _mounts_under(roots: tuple[str, ...]) -> Iterator[str]:
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1].replace("\\040", " ")
        if any(target == root or target.startswith(root + "/") for root in roots):
            yield target


def teardown(record: ClusterRecord, manager: Engine | None) -> None:
    """Remove everything of a cluster, whatever of it exists: each step tolerates what is
    already gone, so it serves a failed start, a normal end and `clean` after a kill -9."""
    for node in record.nodes:
        _stop_engine(node)
        # An older harness made its own engine the nodes' manager (swarm_made): undone.
        if manager is not None and record.swarm_made and node.node_id:
            manager.swarm_remove_node(node.node_id)
    _kill_leftovers(record)
    if manager is not None and record.swarm_made:
        with contextlib.suppress(Exception):
            manager.swarm_leave(remove_gateway_bridge=record.gateway_bridge_made)
    roots = tuple(r for node in record.nodes for r in (node.exec_root, node.data_root))
    for target in sorted(_mounts_under(roots), key=len, reverse=True):
        _run("umount", "-l", target, check=False)
    for node in record.nodes:
        _run("ip", "netns", "del", node.namespace, check=False)
        _run("ip", "link", "del", node.host_veth, check=False)
    _run("iptables", "-D", "FORWARD", "-i", record.bridge, "-o", record.bridge, "-j", "ACCEPT",
         check=False)
    _run("ip", "link", "del", record.bridge, check=False)
    shutil.rmtree(DATA_ROOT / record.tag, ignore_errors=True)
    shutil.rmtree(RUN_ROOT / record.tag, ignore_errors=True)


def remove_dead_clusters(manager: Engine | None, progress: Progress) -> list[str]:
    """Tear down every cluster whose harness is gone (killed with -9): `clean`, and every
    run's start. Returns their tags."""
    removed = []
    for path in sorted(RUN_ROOT.glob("*/nodes.json")):
        try:
            record = ClusterRecord.load(path)
        except (OSError, ValueError, TypeError):
            continue
        if alive(record.owner_pid):
            continue
        teardown(record, manager)
        progress.info(f"removed the node engines of a dead run ({record.tag})")
        removed.append(record.tag)
    return removed
