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
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench.errors import StepFailed
from bench.host.node_engines import NodeCluster
from bench.host.node_record import Node
from bench.measure import trial as trial_module
from bench.measure.fresh_node import FreshNode, remove_images
from bench.measure.measurement import NodeFetch, StartMeasurement
from bench.measure.spec import StartSpec, TrialSettings
from bench.model.source import ModelArtifact
from bench.progress import Progress
from bench.servers.link import LinkRate
from bench.servers.oci_registry import REGISTRY_PORT

T = TypeVar("T")


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


@dataclass(frozen=True)
class Placed:
    """A start provisioned on a node: its images as the node knows them (the local
    reference -> the node's pinned one), the start rewritten to the node's files, and what
    provisioning cost."""

    refs: dict[str, str]
    start: StartSpec
    fetch: NodeFetch

    def ref(self, image: str) -> str:
        return self.refs[image]


@dataclass(frozen=True)
class RolledOut:
    """A rollout across nodes: each node's moment of its first answer with the new
    predictions (seconds from the rollout's start), and the nodes that failed."""

    done: dict[int, float]
    failures: dict[int, StepFailed]


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
                                   reach=node.engine.network_subnets(network), swarm=False)

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

        def one(node: Node) -> StartMeasurement:
            engine = self.cluster.engine(node)
            received_before = self.cluster.received_bytes(node)
            placed = self._provision(node, refs, stored, name, start, hosts, fresh=True)
            try:
                measured = trial_module.run_replicas(
                    engine, placed.ref(image), f"{name}-n{node.index}", labels, None,
                    placed.start, model, settings, 1, placed.fetch)[0]
            finally:
                self._release(node, placed)  # the next start finds a fresh node again
            measured.node_received_bytes = self.cluster.received_bytes(node) - received_before
            return measured

        measured, failures = self._on_every(self.cluster.nodes[:count], one)
        return NodesStarted(list(measured.values()), list(measured), failures)

    def rollout(self, image: str, name: str, labels: Mapping[str, str], current: StartSpec,
                model: ModelArtifact, settings: TrialSettings, hosts: Mapping[str, str],
                count: int, prepare: Callable[[], tuple[str, StartSpec]],
                following: ModelArtifact) -> RolledOut:
        """The current version serving on `count` nodes, then rolled out to the next one on
        all of them at once: `prepare` (timed) makes the new version's image and start on
        the build machine; it is published (pushed, uploaded), and every node pulls what
        changed, copies the new files, replaces its service and answers with the new
        predictions. Each node's moment is measured from the moment `prepare` began."""
        refs, stored = self._node.publish(image, current)
        nodes = self.cluster.nodes[:count]
        running: dict[int, tuple[Placed, trial_module.RunningService]] = {}

        def serve(node: Node) -> None:
            placed = self._provision(node, refs, stored, f"{name}-v1", current, hosts,
                                     fresh=True)
            try:
                running[node.index] = (placed, trial_module.start_service(
                    self.cluster.engine(node), placed.ref(image), f"{name}-v1-n{node.index}",
                    labels, None, placed.start, model, settings))
            except BaseException:
                self._release(node, placed)
                raise

        try:
            self._on_every(nodes, serve, every=True)
            began = time.monotonic()
            new_image, new_start = prepare()
            kept = {*refs.values()}  # what the nodes hold of the running version
            new_refs, new_stored = self._node.publish(new_image, new_start, on_node=kept,
                                                      anew=True)

            def replace(node: Node) -> float:
                placed = self._provision(node, new_refs, new_stored, f"{name}-v2", new_start,
                                         hosts, fresh=False)
                old, service = running.pop(node.index)
                try:
                    service.stop()
                    served = trial_module.run_start(
                        self.cluster.engine(node), placed.ref(new_image),
                        f"{name}-v2-n{node.index}", labels, None, placed.start, following,
                        settings, placed.fetch)
                finally:
                    self._release(node, placed, keep=kept)
                    self._release(node, old)  # the replaced version's files and images
                return placed.fetch.started[0] + served.model_ready_s - began

            done, failures = self._on_every(nodes, replace)
            return RolledOut(done, failures)
        finally:
            for index, (placed, service) in running.items():
                service.stop()
                self._release(self.cluster.nodes[index], placed)

    def _on_every(self, nodes: Sequence[Node], work: Callable[[Node], T], every: bool = False
                  ) -> tuple[dict[int, T], dict[int, StepFailed]]:
        """`work` on every node at the same moment (one barrier): what each returned, and
        the nodes that failed with their reasons. An interrupt is raised; so is a failure
        of every node, or of any with `every`."""
        barrier = threading.Barrier(len(nodes))
        results: dict[int, T | BaseException] = {}

        def one(node: Node) -> None:
            try:
                barrier.wait()
                results[node.index] = work(node)
            except StepFailed as failure:
                results[node.index] = failure
            except Exception as error:  # its engine gone mid-start, a refused connection
                results[node.index] = StepFailed(f"{type(error).__name__}: {error}")
            except BaseException as error:  # an interrupt: handed to the caller below
                results[node.index] = error

        threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        failures: dict[int, StepFailed] = {}
        done: dict[int, T] = {}
        for k, result in sorted(results.items()):
            if isinstance(result, StepFailed):
                failures[k] = result
            elif isinstance(result, BaseException):
                raise result  # an interrupt, not a node's failure
            else:
                done[k] = result
        if failures and (every or not done):
            k, failure = next(iter(failures.items()))
            raise StepFailed(f"node {k}: {failure}", failure.log_tail)
        return done, failures

    def _provision(self, node: Node, refs: Mapping[str, str],
                   stored: list[tuple[str, list[Path]]], name: str, start: StartSpec,
                   hosts: Mapping[str, str], fresh: bool) -> Placed:
        """What a node does before its service starts: pull the images by digest (`fresh`:
        after removing them, as a new node has none), copy the model files from the store.
        Its clock starts here."""
        engine = self.cluster.engine(node)
        pulled = [self.node_ref(ref) for ref in refs.values()]
        moment = (time.monotonic(), time.time())
        received_before = self.cluster.received_bytes(node)
        absent = remove_images(engine, pulled) if fresh else True
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
        return Placed({ref: self.node_ref(pinned) for ref, pinned in refs.items()}, on_node,
                      fetch)

    def _release(self, node: Node, placed: Placed, keep: Collection[str] = ()) -> None:
        """Remove a start's files and images from the node (those a running version still
        uses, pinned references in `keep`, stay)."""
        shutil.rmtree(placed.fetch.node_dir, ignore_errors=True)
        engine = self.cluster.engine(node)
        # Its volumes too (a registry strategy's cache): the engine made them on first use,
        # and a later start on this node would find the model there.
        for volume in placed.start.volumes:
            if volume.volume:
                engine.remove_volume(volume.volume)
        kept = {self.node_ref(ref) for ref in keep}
        remove_images(engine, [ref for ref in placed.refs.values() if ref not in kept])

    def _fetch(self, node: Node, pairs: list[str]) -> int:
        store = self._node.store
        assert store.bridge_url is not None
        out = self.cluster.in_namespace(
            node, [sys.executable, "-m", "bench.servers.node_fetch", store.bridge_url,
                   self._node.bucket, *pairs],
            {"AWS_ACCESS_KEY_ID": store.access_key, "AWS_SECRET_ACCESS_KEY": store.secret_key})
        return int(out.split()[-1])

