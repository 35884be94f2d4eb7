"""Containers, and the networks and volumes they use: create, start, inspect, measure,
remove."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docker
import docker.errors

from bench.engine.connection import EngineConnection
from bench.engine.types import (
    HARDENING,
    LOG_TAIL_LINES,
    ContainerSpec,
    ContainerState,
    Labels,
    MemoryStats,
)
from bench.errors import StepFailed
from bench.host.fsutil import tree_bytes


class ContainerJobs(EngineConnection):
    def create_network(self, name: str, labels: Labels, swarm: bool = False) -> str:
        """A bridge; with `swarm`, an attachable overlay, which swarm tasks and plain
        containers (the harness's servers) both join."""
        network = self._client.networks.create(
            name, driver="overlay" if swarm else "bridge", attachable=swarm or None,
            labels=dict(labels))
        return str(network.id)

    def create_volume(self, name: str, labels: Labels) -> str:
        return str(self._client.volumes.create(name=name, labels=dict(labels)).name)

    def remove_volume(self, name: str) -> None:
        """Remove a volume; one still held by a swarm task that is going away (swarm removes
        a service's containers asynchronously) is retried for a while, then left for the
        run's final sweep rather than failing the run."""
        for attempt in range(10):
            try:
                self._client.volumes.get(name).remove(force=True)
                return
            except docker.errors.NotFound:
                return
            except docker.errors.APIError as error:
                if error.status_code != 409:  # 409: in use
                    raise
                time.sleep(0.25 * (attempt + 1))

    def volume_path(self, name: str) -> Path | None:
        """The volume's folder on this host, where the host can read it (a local engine)."""
        try:
            mountpoint = Path(self._client.volumes.get(name).attrs.get("Mountpoint", "") or "/-")
        except docker.errors.NotFound:
            return None
        return mountpoint if mountpoint.is_dir() and os.access(mountpoint, os.R_OK) else None

    def volume_bytes(self, name: str) -> int:
        """Bytes in a named volume: read from its mountpoint when this host can (a local
        engine, as root), else the engine's own figure (`docker system df -v`), so that a
        remote engine or a non-root harness never reads an unreadable folder as 0 bytes."""
        mountpoint = Path(self._client.volumes.get(name).attrs.get("Mountpoint", "") or "/-")
        if mountpoint.is_dir() and os.access(mountpoint, os.R_OK | os.X_OK):
            return tree_bytes(mountpoint)
        for volume in self._api.df().get("Volumes") or []:
            if volume.get("Name") == name:
                return int((volume.get("UsageData") or {}).get("Size") or 0)
        raise StepFailed(f"the engine does not know volume {name}")

    # -- containers ---------------------------------------------------------------------

    def create_container(self, spec: ContainerSpec) -> str:
        mounts = [docker.types.Mount(m.target, m.source, type="bind", read_only=m.read_only)
                  for m in spec.binds]
        mounts += [docker.types.Mount(v.target, v.volume or None, type="volume",
                                      read_only=v.read_only,
                                      labels=None if v.volume else dict(spec.labels))
                   for v in spec.volumes]
        host_config: dict[str, Any] = {
            "mounts": mounts,
            "port_bindings": (
                {spec.container_port: (self.address, None)} if spec.container_port else {}
            ),
            "mem_limit": spec.memory_limit_bytes,
            # No swap on top of the limit: a load that does not fit is OOM-killed, not slowed.
            "memswap_limit": spec.memory_limit_bytes,
            "nano_cpus": int(spec.cpus * 1e9) if spec.cpus else None,
            "network_mode": spec.network,
            "volumes_from": [f"{source}:ro" for source in spec.volumes_from] or None,
            "extra_hosts": dict(spec.extra_hosts) or None,
        }
        if spec.hardened:
            host_config.update(
                read_only=HARDENING.read_only,
                tmpfs={HARDENING.tmpfs: HARDENING.tmpfs_options},
                cap_drop=list(HARDENING.cap_drop), security_opt=list(HARDENING.security_opt),
            )
        networking = None
        if spec.network:
            networking = self._api.create_networking_config(
                {spec.network: self._api.create_endpoint_config(aliases=list(spec.network_aliases))}
            )
        container = self._api.create_container(
            spec.image, command=list(spec.command) if spec.command else None, name=spec.name,
            environment=dict(spec.env), labels=dict(spec.labels), user=spec.user,
            ports=[spec.container_port] if spec.container_port else None,
            host_config=self._api.create_host_config(**host_config),
            networking_config=networking,
        )
        return str(container["Id"])

    def start_container(self, container_id: str) -> None:
        self._api.start(container_id)

    def published_port(self, container_id: str, container_port: int = 8000) -> int:
        for _ in range(100):
            attrs = self._api.inspect_container(container_id)
            bindings = (attrs["NetworkSettings"]["Ports"] or {}).get(f"{container_port}/tcp")
            if bindings:
                return int(bindings[0]["HostPort"])
            if attrs["State"]["Status"] not in ("created", "running"):
                break
            time.sleep(0.05)
        raise StepFailed(f"container {container_id[:12]} published no port {container_port}",
                         self.logs_tail(container_id))

    def container_address(self, container_id: str, network: str) -> str | None:
        """The container's IP on a bridge network (reachable from this host, when local).
        None on any other driver: an overlay address is not routed to this host, and a
        request to it would leave through the default route (under swarm, something
        outside answered the S3 reference download with a 404)."""
        if self._api.inspect_network(network).get("Driver") != "bridge":
            return None
        networks = self._api.inspect_container(container_id)["NetworkSettings"]["Networks"]
        address = (networks.get(network) or {}).get("IPAddress")
        return str(address) if address else None

    def network_subnets(self, network: str) -> tuple[str, ...]:
        """The subnets of a network, as its IPAM assigned them."""
        config = (self._api.inspect_network(network).get("IPAM") or {}).get("Config") or []
        return tuple(str(c["Subnet"]) for c in config if c.get("Subnet"))

    def network_hosts(self, network: str) -> dict[str, str]:
        """Each name a container answers to on a bridge network (its aliases), and its
        address there: how a container of another engine (a node's) finds the run's servers."""
        hosts: dict[str, str] = {}
        for container_id in self._api.inspect_network(network).get("Containers") or {}:
            try:
                networks = self._api.inspect_container(container_id)["NetworkSettings"]
            except docker.errors.NotFound:  # removed since the network was read
                continue
            found = networks["Networks"].get(network) or {}
            address = found.get("IPAddress")
            for alias in found.get("Aliases") or []:
                if address:
                    hosts[str(alias)] = str(address)
        return hosts

    def container_inspect(self, container_id: str) -> dict[str, Any]:
        return dict(self._api.inspect_container(container_id))

    def container_state(self, container_id: str) -> ContainerState:
        state = self._api.inspect_container(container_id)["State"]
        exit_code = state.get("ExitCode")
        return ContainerState(
            status=str(state.get("Status", "")),
            exit_code=None if state.get("Running") else exit_code,
            oom_killed=bool(state.get("OOMKilled")),
            error=str(state.get("Error", "")),
        )

    def container_pid(self, container_id: str) -> int:
        return int(self._api.inspect_container(container_id)["State"]["Pid"])

    def container_size_rw(self, container_id: str) -> int:
        # docker-py's inspect_container has no `size` flag; the API has (GET ...?size=1).
        url = self._api._url("/containers/{0}/json", container_id)
        attrs = self._api._result(self._api._get(url, params={"size": 1}), json=True)
        return int(attrs.get("SizeRw") or 0)

    def memory_stats(self, container_id: str) -> MemoryStats:
        stats = self._api.stats(container_id, stream=False, one_shot=True)
        memory = stats.get("memory_stats", {})
        detail = memory.get("stats", {})
        inactive = detail.get("total_inactive_file", detail.get("inactive_file", 0))
        peak = memory.get("max_usage")
        # cgroup v1 names (hierarchical totals) first, then cgroup v2's.
        anon = detail.get("total_rss", detail.get("anon", 0))
        cache = detail.get("total_cache", detail.get("file", 0))
        return MemoryStats(int(memory.get("usage", 0)), int(inactive),
                           None if peak is None else int(peak), int(anon), int(cache))

    def logs_tail(self, container_id: str, lines: int = LOG_TAIL_LINES) -> str:
        try:
            raw = self._api.logs(container_id, tail=lines)
        except docker.errors.APIError:
            return ""
        return bytes(raw).decode("utf-8", "replace").strip()

    def exec_in(self, container_id: str, command: Sequence[str]) -> tuple[int, str]:
        exec_id = self._api.exec_create(container_id, list(command))
        output = self._api.exec_start(exec_id)
        code = self._api.exec_inspect(exec_id)["ExitCode"]
        return int(code), bytes(output).decode("utf-8", "replace")

    def remove_all_containers(self) -> int:
        """Remove every container of this engine: a node engine's (bench.host.node_engines),
        before it stops, so that none of their shims outlives it. Never the harness's own."""
        containers = self._client.containers.list(all=True)
        for container in containers:
            self.remove_container(str(container.id))
        return len(containers)

    def remove_container(self, container_id: str) -> None:
        try:
            self._api.remove_container(container_id, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as error:
            if "already in progress" not in str(error):
                raise

