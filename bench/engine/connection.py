"""The connection to one Docker engine that every job of the adapter shares."""

from __future__ import annotations

import os
from typing import Self

import docker

from bench.engine.types import ENGINE_TIMEOUT_S, EngineInfo
from bench.errors import EngineUnavailable


class EngineConnection:
    """A docker SDK client and its low-level API; the job classes add what they do with it."""

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client
        self._api = client.api

    @classmethod
    def connect(cls) -> Self:
        try:
            client = docker.from_env(timeout=ENGINE_TIMEOUT_S)
            client.ping()
        except Exception as error:
            host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
            raise EngineUnavailable(
                f"no Docker engine answers at {host} ({type(error).__name__}); start one "
                "(as root: `dockerd > /tmp/dockerd.log 2>&1 &` or `systemctl start docker`) "
                "or set DOCKER_HOST"
            ) from None
        return cls(client)

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
