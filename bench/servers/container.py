"""The servers the harness runs beside the service (the S3 server, the OCI registry): one
way to start them, so each is built the same way (FROM the runtime image, a host binary
copied in, no pull), stores its data in a labelled volume, answers on the run's network and
on a port published on 127.0.0.1 only, and has its link shaped the same way (--link-rate)."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from bench.engine import CACHE_LABEL, SERVICE_UID, ContainerSpec, Engine, VolumeMount
from bench.errors import StepFailed
from bench.host.fsutil import link_or_copy
from bench.host.made_once import made_once
from bench.host.paths import DOCKER_DIR, cache_dir
from bench.servers.link import InterfaceBytes, LinkRate, interface_bytes, shape_egress

DATA_IN_CONTAINER = "/cache"  # owned by the runtime image's non-root user


@dataclass(frozen=True)
class ServerContainer:
    container_id: str
    pid: int
    host_url: str  # http://127.0.0.1:<published port>, how the host and the engine reach it
    bridge_address: str | None  # its address on the run's network
    data_volume: str = ""  # the volume it serves its files from (read back before a start)

    def counters(self) -> InterfaceBytes:
        """What crossed its link so far (its eth0, read from the host)."""
        return interface_bytes(self.pid)


def server_image(engine: Engine, runtime_image: str, dockerfile: str,
                 files: Mapping[str, Path]) -> str:
    """The image of a server, built once for its inputs (the runtime, the Dockerfile, the
    host files copied in) and kept between runs, as the runtime image is (`clean --all`
    removes both). Found: built per run with the legacy builder's cache, a run's build took
    a cached step image that a run in the other test lane removed with its own images
    meanwhile ("unable to find image sha256:..."); and each run paid the build again."""
    inputs = hashlib.sha256(f"{runtime_image}\n".encode())
    inputs.update((DOCKER_DIR / dockerfile).read_bytes())
    for name, source in sorted(files.items()):
        # A binary by its identity, not its 85 MB of bytes (rclone): a new one has a new
        # size or modification time.
        stat = source.resolve().stat()
        inputs.update(f"\n{name} {source.resolve()} {stat.st_size} {stat.st_mtime_ns}".encode())
    tag = f"mlbench-{dockerfile.removeprefix('Dockerfile.')}:{inputs.hexdigest()[:12]}"
    with made_once(tag.replace(":", "-"), cache_dir()):
        if engine.image_inspect(tag) is None:
            _build_server_image(engine, runtime_image, dockerfile, files, tag)
    return tag


def _build_server_image(engine: Engine, runtime_image: str, dockerfile: str,
                        files: Mapping[str, Path], tag: str) -> None:
    with tempfile.TemporaryDirectory(prefix="mlbench-server-") as scratch:
        context = Path(scratch)
        shutil.copyfile(DOCKER_DIR / dockerfile, context / "Dockerfile")
        for name, source in files.items():
            link_or_copy(source, context / name)
        engine.build(context, "Dockerfile", tag, {CACHE_LABEL: "server"}, builder="legacy",
                     no_cache=False, build_args={"RUNTIME_IMAGE": runtime_image})


def start_server(engine: Engine, runtime_image: str, run_id: str, network: str,
                 labels: Mapping[str, str], *, role: str, dockerfile: str,
                 files: Mapping[str, Path], port: int, alias: str,
                 command: Sequence[str] | None = None, health_path: str = "/",
                 link_rate: LinkRate | None = None) -> ServerContainer:
    """Run the server image of `docker/<dockerfile>` and `files` on the run's network as
    `alias`, wait until it answers, shape its link."""
    tag = server_image(engine, runtime_image, dockerfile, files)
    volume = engine.create_volume(f"mlbench-{run_id.lower()}-{role}data", labels)
    container_id = engine.create_container(ContainerSpec(
        image=tag, name=f"mlbench-{run_id.lower()}-{role}", labels=labels,
        volumes=[VolumeMount(volume, DATA_IN_CONTAINER)], network=network,
        network_aliases=[alias], container_port=port, user=str(SERVICE_UID), command=command))
    engine.start_container(container_id)
    host_url = f"http://127.0.0.1:{engine.published_port(container_id, port)}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(host_url + health_path, timeout=1)
            break
        except requests.RequestException:
            time.sleep(0.1)
    else:
        raise StepFailed(f"the {role} server did not answer within 60 s",
                         engine.logs_tail(container_id))
    pid = engine.container_pid(container_id)
    if link_rate is not None:
        shape_egress(pid, link_rate)
    return ServerContainer(container_id, pid, host_url,
                           engine.container_address(container_id, network), volume)
