"""The connection to one Docker engine that every job of the adapter shares."""

from __future__ import annotations

import os
import shutil
from typing import Self

import docker

from bench.engine.types import ENGINE_TIMEOUT_S, EngineInfo
from bench.errors import EngineUnavailable


def no_engine_message(error: str, dockerd: str | None = None) -> str:
    """What to do when no engine answers: start the one installed, or install one first (a
    fresh Debian machine may have the docker client and no dockerd)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    found = dockerd if dockerd is not None else shutil.which("dockerd")
    if found:
        start = ("start one (as root: `dockerd > /tmp/dockerd.log 2>&1 &` or `systemctl "
                 "start docker`) or set DOCKER_HOST")
    else:
        start = ("no dockerd is installed: as root, `apt-get install -y docker.io && dockerd "
                 "> /tmp/dockerd.log 2>&1 &` (what .ci/run does), or set DOCKER_HOST")
    return f"no Docker engine answers at {host} ({error}); {start}"


class EngineConnection:
    """A docker SDK client and its low-level API; the job classes add what they do with it."""

    def __init__(self, client: docker.DockerClient, address: str = "127.0.0.1") -> None:
        self._client = client
        self._api = client.api
        # Where this engine publishes container ports and the harness reaches them: the
        # host's loopback, or a node engine's address on the run's bridge.
        self.address = address

    @classmethod
    def connect(cls, base_url: str | None = None, address: str = "127.0.0.1") -> Self:
        """The engine of the environment (DOCKER_HOST), or the one at `base_url` (a node's
        engine: bench.host.node_engines, whose ports are reached at its `address`)."""
        try:
            client = (docker.from_env(timeout=ENGINE_TIMEOUT_S) if base_url is None
                      else docker.DockerClient(base_url=base_url, timeout=ENGINE_TIMEOUT_S))
            client.ping()
        except Exception as error:
            raise EngineUnavailable(no_engine_message(type(error).__name__)) from None
        return cls(client, address)

    def close(self) -> None:
        self._client.close()

    def responds(self) -> bool:
        """Whether the engine still answers (asked after an unexpected error)."""
        try:
            return bool(self._api.ping())
        except Exception:  # any transport error means: not answering
            return False

    # -- engine facts -------------------------------------------------------------------

    def info(self) -> EngineInfo:
        info = self._client.info()
        return EngineInfo(
            server_version=str(info.get("ServerVersion", "")),
            api_version=str(self._api.api_version),
            storage_driver=str(info.get("Driver", "")),
            cgroup_version=str(info.get("CgroupVersion", "1")),
            cgroup_driver=str(info.get("CgroupDriver", "")),
            kernel=str(info.get("KernelVersion", "")),
            operating_system=str(info.get("OperatingSystem", "")),
            docker_root_dir=str(info.get("DockerRootDir", "")),
        )
