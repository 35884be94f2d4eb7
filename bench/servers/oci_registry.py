"""A real OCI registry between the build machine and the nodes: the harness starts one
(distribution 2.8, Debian's docker-registry binary, in a labelled container on the run's
network, published on 127.0.0.1, which the engine trusts without TLS) or uses the user's
(`--oci-registry HOST:PORT`). Images are pushed once and pulled by digest, so a node runs
exactly the bytes that were pushed; push and pull are timed, and on the harness's own
registry the bytes are read from its link's counters, not from what the engine reports."""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.engine import Engine
from bench.engine.types import OnContext
from bench.errors import BenchError
from bench.host.paths import DOCKER_DIR
from bench.servers.container import ServerContainer, start_server
from bench.servers.link import LinkRate

REGISTRY_PORT = 5000
REGISTRY_ALIAS = "oci-registry"
DEBIAN_BINARY = "/usr/bin/docker-registry"  # the docker-registry package


@dataclass(frozen=True)
class Transfer:
    seconds: float
    bytes: int | None  # None: a registry whose link the harness cannot read


@dataclass(frozen=True)
class PinnedImage:
    ref: str  # address/repository@sha256:...: what a node pulls
    digest: str
    push: Transfer


@dataclass(frozen=True)
class OciRegistry:
    address: str  # host:port, as the engine reaches it
    server: ServerContainer | None  # the harness's own registry, if it started one

    def publish(self, engine: Engine, image: str, repository: str, tag: str,
                on_progress: OnContext | None = None) -> PinnedImage:
        """Push a local image as address/repository:tag; returns it pinned by digest."""
        target = f"{self.address}/{repository}:{tag}"
        engine.tag_image(image, target)
        before = self._received()
        started = time.perf_counter()
        digest = engine.push_image(target, on_progress)
        seconds = time.perf_counter() - started
        after = self._received()
        # The tag stays (labelled like the image, removed with the run): while the image
        # has a name in this repository, the engine knows it by its pinned digest too.
        moved = None if before is None or after is None else after - before
        return PinnedImage(f"{self.address}/{repository}@{digest}", digest,
                           Transfer(seconds, moved))

    def pull(self, engine: Engine, pinned: PinnedImage,
             on_progress: OnContext | None = None) -> Transfer:
        before = self._sent()
        started = time.perf_counter()
        engine.pull_image(pinned.ref, on_progress)
        seconds = time.perf_counter() - started
        after = self._sent()
        return Transfer(seconds, None if before is None or after is None else after - before)

    def _received(self) -> int | None:
        return None if self.server is None else self.server.counters().received

    def _sent(self) -> int | None:
        return None if self.server is None else self.server.counters().sent


def registry_binary() -> Path:
    found = shutil.which("docker-registry") or (DEBIAN_BINARY if Path(DEBIAN_BINARY).is_file()
                                                 else None)
    if found is None:
        raise BenchError("no OCI registry binary: `apt-get install docker-registry` "
                         "(distribution 2.8), or pass --oci-registry HOST:PORT of your own")
    return Path(found)


def start_oci_registry(engine: Engine, runtime_image: str, run_id: str, network: str,
                       labels: Mapping[str, str], link_rate: LinkRate | None = None
                       ) -> OciRegistry:
    server = start_server(
        engine, runtime_image, run_id, network, labels, role="ociregistry",
        dockerfile="Dockerfile.ociregistry", port=REGISTRY_PORT, alias=REGISTRY_ALIAS,
        files={"registry": registry_binary(), "config.yml": DOCKER_DIR / "oci-registry.yml"},
        health_path="/v2/", link_rate=link_rate)
    return OciRegistry(server.host_url.removeprefix("http://"), server)


def external_registry(address: str) -> OciRegistry:
    return OciRegistry(address, None)
