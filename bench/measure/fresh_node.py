"""--fresh-node: every start on a node that holds nothing of the strategy, as when a service
scales out to a new machine. Before each start the strategy's images are removed from the
engine and pulled by digest from the OCI registry, and the model files a bind-mount
strategy reads are fetched from the model store (the harness's S3 server) to a new node
folder. The start's clock then runs from the moment provisioning began, so model_ready_s
includes what a new replica really pays; the pull and the fetch are phases of its timeline.

What stays on the node: the shared runtime image (Python and the service's dependencies),
which every strategy's image is built FROM, as on a node that runs any version of the
service. A strategy's pull is what it adds on top of that.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from bench.engine import Engine
from bench.engine.types import OnContext
from bench.errors import StepFailed
from bench.measure.measurement import NodeFetch
from bench.measure.spec import StartSpec
from bench.servers.oci_registry import OciRegistry, PinnedImage
from bench.servers.s3 import S3Endpoint, direct_endpoint, publish_files, s3_client

MODEL_REPOSITORY = "mlbench-model"  # modelcar's model image in the registry


def remove_images(engine: Engine, refs: Collection[str]) -> bool:
    """Empty a node of these images, by their ids (every tag and digest of each goes); True
    when none of them is left, so that a pull starts from nothing."""
    for ref in refs:
        found = engine.image_inspect(ref)
        if found is not None:
            engine.remove_image(str(found["Id"]), every_name=True)
    return all(engine.image_inspect(ref) is None for ref in refs)


class FreshNode:
    def __init__(self, engine: Engine, registry: OciRegistry, store: S3Endpoint, bucket: str,
                 scratch: Path, run_id: str) -> None:
        self._engine, self._registry, self._store = engine, registry, store
        self._bucket, self._scratch, self._run_id = bucket, scratch, run_id
        self._pinned: dict[str, PinnedImage] = {}  # local image or pinned ref -> pinned
        self._named: dict[str, str] = {}  # the name an image was pinned under -> its id
        self._stored: dict[str, str] = {}  # host model path -> its prefix in the store
        self._published = 0
        self._client: Any = None  # the node's S3 client, made once, before any clock runs
        self.on_push: Callable[[str, PinnedImage], None] | None = None
        self.on_progress: OnContext | None = None  # bytes of a push or pull so far

    def pin(self, image: str, repository: str) -> PinnedImage:
        """Push a local image once; afterwards it is known by its digest reference. Known
        by the image's id, not its name: a tag may move to a new version of the image."""
        if image in self._pinned:  # a pinned reference names one image for good
            return self._pinned[image]
        found = self._engine.image_inspect(image)
        if found is None:  # pinned before, and removed from the node by a fresh start since
            if image not in self._named:
                raise StepFailed(f"image {image} is not on the node to be pushed")
            return self._pinned[self._named[image]]
        key = self._named[image] = str(found["Id"])
        if key not in self._pinned:
            pinned = self._registry.publish(self._engine, image, repository,
                                            f"{self._run_id.lower()}-{key[7:19]}",
                                            self.on_progress)
            self._pinned[key] = self._pinned[pinned.ref] = pinned
            if self.on_push is not None:
                self.on_push(repository, pinned)
        return self._pinned[key]

    def current_ref(self, image: str) -> str:
        """How the node knows an image now: by its digest once pushed."""
        key = self._named.get(image)
        return image if key is None else self._pinned[key].ref

    def provision(self, image: str, start: StartSpec, name: str,
                  on_node: Collection[str] = (), publish_anew: bool = False
                  ) -> tuple[str, StartSpec, NodeFetch]:
        """Empty the node of the start's images and model files, then fetch them as a new
        node would. Images whose reference is `on_node` (a running version's, in a rollout)
        stay and are not pulled; `publish_anew` (a rollout) uploads the model files again.
        Returns the image reference to run, the start rewritten to the node's copies, and
        what the fetch cost."""
        # Published first, from the build machine: a node's clock starts after that.
        refs, stored = self.publish(image, start, on_node, publish_anew)
        if stored and self._client is None:
            # Client setup (and the probe of the store's bridge address) apart, as
            # download_s keeps it apart: node_fetch_s is the copy alone.
            self._client = s3_client(direct_endpoint(self._store))
        moment = (time.monotonic(), time.time())
        fetched_images = [self._pinned[ref] for ref in refs.values() if ref not in on_node]
        absent = remove_images(self._engine, [each.ref for each in fetched_images])
        pull_s, pull_bytes = 0.0, 0  # type: float, int | None
        for each in fetched_images:
            transfer = self._registry.pull(self._engine, each, self.on_progress)
            pull_s += transfer.seconds
            pull_bytes = (None if transfer.bytes is None or pull_bytes is None
                          else pull_bytes + transfer.bytes)
        pulled_at = time.monotonic()
        node_dir = self._scratch / "node" / name
        shutil.rmtree(node_dir, ignore_errors=True)
        binds, fetched = [], 0
        for bind, (prefix, files) in zip(start.model_binds, stored, strict=True):
            local, size = self._fetch(Path(bind.source), prefix, files, node_dir)
            binds.append(dataclasses.replace(bind, source=str(local)))
            fetched += size
        rewritten = dataclasses.replace(
            start, model_binds=binds,
            model_image=None if start.model_image is None else refs[start.model_image])
        fetched_at = time.monotonic()
        return refs[image], rewritten, NodeFetch(
            started=moment, pull_s=pull_s, pull_bytes=pull_bytes, pulled_at=pulled_at,
            fetch_s=fetched_at - pulled_at, fetch_bytes=fetched, fetched_at=fetched_at,
            images_absent_before=absent, node_dir=node_dir)

    def publish(self, image: str, start: StartSpec, on_node: Collection[str] = (),
                anew: bool = False) -> tuple[dict[str, str], list[tuple[str, list[Path]]]]:
        """What a node fetches, published from the build machine: the start's images pinned
        in the registry (local reference -> pinned one; those `on_node` stay as they are),
        and its bind-mounted model files in the store (prefix, files), in order."""
        wanted = [(image, image.rsplit("/", 1)[-1].split("@")[0].split(":")[0])]
        if start.model_image is not None:
            wanted.append((start.model_image, MODEL_REPOSITORY))
        refs = {ref: ref if ref in on_node else self.pin(ref, repository).ref
                for ref, repository in wanted}
        stored = [self._store_files(Path(bind.source), anew) for bind in start.model_binds]
        return refs, stored

    def unpin(self, image: str) -> None:
        """Take the registry's names off an image the run does not own (the shared runtime:
        its tags would outlive the run, which removes only what carries its label)."""
        found = self._engine.image_inspect(image) or {}
        for name in [*(found.get("RepoTags") or []), *(found.get("RepoDigests") or [])]:
            if str(name).startswith(f"{self._registry.address}/"):
                self._engine.remove_image(str(name))

    def pinned(self, ref: str) -> PinnedImage:
        return self._pinned[ref]

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def registry(self) -> OciRegistry:
        return self._registry

    @property
    def store(self) -> S3Endpoint:
        return self._store

    @property
    def bucket(self) -> str:
        return self._bucket

    def _store_files(self, source: Path, anew: bool = False) -> tuple[str, list[Path]]:
        """Publish a model file, or a folder of them, to the model store: once for the
        trials; `anew` for a rollout, which pays its own upload (another strategy of the
        run may have published the same file)."""
        files = (sorted(p for p in source.iterdir() if p.is_file()) if source.is_dir()
                 else [source])
        prefix = None if anew else self._stored.get(str(source))
        if prefix is None:
            self._published += 1
            prefix = self._stored[str(source)] = f"node-store/{self._published}"
            publish_files(self._store, self._bucket, prefix, files)
        return prefix, files

    def _fetch(self, source: Path, prefix: str, files: list[Path], node_dir: Path
               ) -> tuple[Path, int]:
        """Copy a model file, or a folder of them, from the model store to the node."""
        target = node_dir / source.name
        (target if source.is_dir() else node_dir).mkdir(parents=True, exist_ok=True)
        size = 0
        for file in files:
            local = target / file.name if source.is_dir() else target
            self._client.download_file(self._bucket, f"{prefix}/{file.name}", str(local))
            size += local.stat().st_size
        return target, size

    def wire_bytes(self) -> int:
        """Bytes the OCI registry and the model store have received and sent so far (what
        crossed their links; 0 for a server the harness did not start)."""
        total = 0
        for server in (self._registry.server, self._store.server):
            if server is not None:
                total += server.counters().total
        return total

    def release(self, fetch: NodeFetch) -> None:
        shutil.rmtree(fetch.node_dir, ignore_errors=True)

