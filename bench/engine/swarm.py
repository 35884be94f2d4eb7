"""Swarm mode: a single-node swarm the harness may create (and must leave as it found it),
and services of N tasks with the same spec as a plain container."""

from __future__ import annotations

import contextlib
import time

import docker
import docker.errors

from bench.engine.connection import EngineConnection
from bench.engine.types import HARDENING, ContainerSpec

GATEWAY_BRIDGE = "docker_gwbridge"
# The engine labels every task container with its service.
SWARM_SERVICE_LABEL = "com.docker.swarm.service.id"


class SwarmJobs(EngineConnection):
    def swarm_active(self) -> bool:
        return str(self._client.info().get("Swarm", {}).get("LocalNodeState", "")) == "active"

    def swarm_init(self) -> bool:
        """Make this engine a single-node swarm; True when that created the engine's
        docker_gwbridge network (which leaving the swarm does not remove)."""
        had_bridge = bool(self._client.networks.list(names=[GATEWAY_BRIDGE]))
        self._client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
        return not had_bridge

    def swarm_leave(self, remove_gateway_bridge: bool = False) -> None:
        """Leave the swarm; with `remove_gateway_bridge`, also remove docker_gwbridge, so an
        engine the harness made a swarm is left as it was found."""
        self._client.swarm.leave(force=True)
        if not remove_gateway_bridge:
            return
        for attempt in range(20):  # its last endpoints go away shortly after the leave
            networks = self._client.networks.list(names=[GATEWAY_BRIDGE])
            if not networks:
                return
            try:
                networks[0].remove()
                return
            except docker.errors.APIError:
                time.sleep(0.25 * (attempt + 1))

    def create_service(self, spec: ContainerSpec, replicas: int) -> str:
        """A swarm service running ``spec`` as ``replicas`` tasks, each publishing its port on
        an ephemeral host port (host mode), so every task can be probed on its own."""
        mounts = [docker.types.Mount(m.target, m.source, type="bind", read_only=m.read_only)
                  for m in spec.binds]
        mounts += [docker.types.Mount(v.target, v.volume, type="volume", read_only=v.read_only)
                   for v in spec.volumes]
        if spec.hardened:
            mounts.append(docker.types.Mount(HARDENING.tmpfs, "", type="tmpfs",
                                             tmpfs_size=HARDENING.tmpfs_bytes))
        container = docker.types.ContainerSpec(
            spec.image, command=list(spec.command) if spec.command else None,
            env=dict(spec.env), labels=dict(spec.labels), mounts=mounts, user=spec.user,
            read_only=(spec.hardened and HARDENING.read_only) or None,
            cap_drop=list(HARDENING.cap_drop) if spec.hardened else None,
            # As plain containers get (security_opt). Engine 20.10 (API 1.41) ignores the
            # field: the trial checks the task's container and says so when it is missing.
            privileges={"NoNewPrivileges": True} if spec.hardened else None,
        )
        resources = (docker.types.Resources(
            mem_limit=spec.memory_limit_bytes,
            cpu_limit=int(spec.cpus * 1e9) if spec.cpus else None)
            if spec.memory_limit_bytes or spec.cpus else None)
        task = docker.types.TaskTemplate(
            container, resources=resources,
            restart_policy=docker.types.RestartPolicy(condition="none"),
            networks=[spec.network] if spec.network else None)
        endpoint = docker.types.EndpointSpec(ports=[
            {"TargetPort": spec.container_port or 8000, "Protocol": "tcp",
             "PublishMode": "host"}])
        created = self._api.create_service(
            task, name=spec.name, labels=dict(spec.labels),
            mode=docker.types.ServiceMode("replicated", replicas=replicas),
            endpoint_spec=endpoint)
        return str(created["ID"])

    def service_tasks(self, service_id: str) -> list[tuple[str, str]]:
        """(state, container id) of each task of a service."""
        tasks = self._api.tasks(filters={"service": service_id})
        return [(str(t["Status"]["State"]),
                 str(t["Status"].get("ContainerStatus", {}).get("ContainerID", "")))
                for t in tasks]

    def remove_service(self, service_id: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self._api.remove_service(service_id)

