"""--nodes N: every start on N fresh nodes at once, each a separate engine
(bench.host.node_engines), as a deployment with one replica a node scales out to new
machines.

Before the clocks run, the build machine publishes what the nodes fetch (the strategy's
images pinned by digest in the run's OCI registry, its bind-mounted model files in the
model store: bench.measure.fresh_node). Then every node, released from one barrier, does
what a new node does: its engine pulls the images by digest from the registry, the node
copies the model files from the store (in its own network namespace, so the bytes cross its
link), and its engine starts the service, which is measured from the host at the node's
address. All of it crosses the node's own link (a veth, shaped with --link-rate), and every
node shares the registry's and the store's egress: what N nodes at once cost.

The run's servers are reached by the names their network gives them (`extra_hosts`): no
network spans the engines, and the service's configuration stays the one a single engine
gets.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.engine import DockerEngine
from bench.errors import StepFailed
from bench.host.node_engines import Node, NodeCluster
from bench.measure import trial as trial_module
from bench.measure.fresh_node import FreshNode
from bench.measure.measurement import NodeFetch, StartMeasurement
from bench.measure.spec import StartSpec, TrialSettings
from bench.model.source import ModelArtifact
from bench.progress import Progress
from bench.servers.link import LinkRate
from bench.servers.oci_registry import REGISTRY_PORT


@dataclass(frozen=True)
class NodesStarted:
    """A start's measured containers, the node each ran on, and the nodes that failed."""

    measured: list[StartMeasurement]
    nodes: list[int]
    failures: dict[int, StepFailed]

    @classmethod
    def whole(cls, measured: list[StartMeasurement]) -> NodesStarted:
        """The harness's own engine: no nodes, nothing failed."""
        return cls(measured, [], {})


class NodeFleet:
    def __init__(self, node: FreshNode, count: int, tag: str, progress: Progress,
                 network: str) -> None:
        server = node.registry.server
        if server is None or server.bridge_address is None or node.store.bridge_url is None:
            raise StepFailed("--nodes needs the run's own OCI registry and model store on a "
                             "bridge network")
        self._node = node
        # How the nodes reach the registry: its address on the run's bridge network.
        self.registry_address = f"{server.bridge_address}:{REGISTRY_PORT}"
        self.cluster = NodeCluster(node.engine, tag, count, progress,
                                   registries=(self.registry_address,),
                                   reach=node.engine.network_subnets(network))

    def open(self, runtime: str, rate: LinkRate | None) -> None:
        """Start the nodes, each holding the shared runtime image, as a node that runs any
        version of the service does; shape their links. Pulled from the registry rather
        than loaded from an archive: a node that loaded it would not know its layers by
        their registry digests and would pull them again with every strategy's image."""
        self.cluster.__enter__()
        try:
            ref = self.node_ref(self._node.pin(runtime, "mlbench-runtime").ref)
            with (self.cluster.progress.step(f"the runtime image to {len(self.cluster.nodes)} "
                                             "nodes (not measured)"),
                  ThreadPoolExecutor(len(self.cluster.nodes)) as pool):
                list(pool.map(lambda n: self.cluster.engine(n).pull_image(ref),
                              self.cluster.nodes))
        finally:
            self._node.unpin(runtime)
        if rate is not None:
            self.cluster.shape(rate)

    def close(self) -> None:
        self.cluster.close()

    def node_ref(self, ref: str) -> str:
        """A pinned reference as a node pulls it (the registry at its bridge address)."""
        address = self._node.registry.address
        return self.registry_address + ref[len(address):] if ref.startswith(address) else ref

    def start(self, image: str, name: str, labels: Mapping[str, str], start: StartSpec,
              model: ModelArtifact, settings: TrialSettings, hosts: Mapping[str, str],
              count: int) -> NodesStarted:
        """One start on the first `count` nodes at the same moment, each measured to its
        end. A node that fails is reported with its reason and the others are kept; when
        every node failed, the start fails."""
        refs, stored = self._node.publish(image, start)
        nodes = self.cluster.nodes[:count]
        barrier = threading.Barrier(len(nodes))
        results: dict[int, StartMeasurement | BaseException] = {}

        def one(node: Node) -> None:
            try:
                barrier.wait()
                results[node.index] = self._start_one(node, refs[image], refs, stored, name,
                                                      labels, start, model, settings, hosts)
            except BaseException as error:  # handed to the caller below
                results[node.index] = error

        threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for result in results.values():
            if isinstance(result, BaseException) and not isinstance(result, StepFailed):
                raise result  # an interrupt or a bug, not a node's failure
        failures = {k: r for k, r in sorted(results.items()) if isinstance(r, StepFailed)}
        measured = {k: r for k, r in sorted(results.items()) if isinstance(r, StartMeasurement)}
        if not measured:
            k, failure = next(iter(failures.items()))
            raise StepFailed(f"every node failed; node {k}: {failure}", failure.log_tail)
        return NodesStarted(list(measured.values()), list(measured), failures)

    def _start_one(self, node: Node, image: str, refs: Mapping[str, str],
                   stored: list[tuple[str, list[Path]]], name: str,
                   labels: Mapping[str, str], start: StartSpec, model: ModelArtifact,
                   settings: TrialSettings, hosts: Mapping[str, str]) -> StartMeasurement:
        engine = self.cluster.engine(node)
        pulled = [self.node_ref(ref) for ref in refs.values()]
        moment = (time.monotonic(), time.time())
        received_before = self.cluster.received_bytes(node)
        absent = _remove_images(engine, pulled)
        for ref in pulled:
            engine.pull_image(ref)
        pulled_at = time.monotonic()
        received_pulled = self.cluster.received_bytes(node)
        node_dir = self.cluster.files_dir(node) / name
        binds, fetched = [], 0
        for bind, (prefix, files) in zip(start.model_binds, stored, strict=True):
            source = Path(bind.source)
            target = node_dir / source.name
            pairs = [f"{prefix}/{file.name}={target / file.name if source.is_dir() else target}"
                     for file in files]
            fetched += self._fetch(node, pairs)
            binds.append(dataclasses.replace(bind, source=str(target)))
        fetched_at = time.monotonic()
        on_node = dataclasses.replace(
            start, model_binds=binds, extra_hosts=dict(hosts),
            model_image=None if start.model_image is None
            else self.node_ref(refs[start.model_image]))
        fetch = NodeFetch(started=moment, pull_s=pulled_at - moment[0],
                          pull_bytes=received_pulled - received_before, pulled_at=pulled_at,
                          fetch_s=fetched_at - pulled_at, fetch_bytes=fetched,
                          fetched_at=fetched_at, images_absent_before=absent,
                          node_dir=node_dir)
        try:
            measured = trial_module.run_replicas(
                engine, self.node_ref(image), f"{name}-n{node.index}", labels, None, on_node,
                model, settings, 1, fetch)[0]
        finally:
            shutil.rmtree(node_dir, ignore_errors=True)
            _remove_images(engine, pulled)  # the next start finds a fresh node again
        measured.node_received_bytes = self.cluster.received_bytes(node) - received_before
        return measured

    def _fetch(self, node: Node, pairs: list[str]) -> int:
        store = self._node.store
        assert store.bridge_url is not None
        out = self.cluster.in_namespace(
            node, [sys.executable, "-m", "bench.servers.node_fetch", store.bridge_url,
                   self._node.bucket, *pairs],
            {"AWS_ACCESS_KEY_ID": store.access_key, "AWS_SECRET_ACCESS_KEY": store.secret_key})
        return int(out.split()[-1])


def _remove_images(engine: DockerEngine, refs: list[str]) -> bool:
    """Remove the images from a node; True when none of them was there."""
    absent = True
    for ref in refs:
        found = engine.image_inspect(ref)
        if found is not None:
            absent = False
            engine.remove_image(str(found["Id"]), every_name=True)
    return absent
