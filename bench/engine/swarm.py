"""Swarm mode: a single-node swarm the harness may create (and must leave as it found it),
and services of N tasks with the same spec as a plain container."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

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

    def swarm_init(self, address: str = "127.0.0.1") -> bool:
        """Make this engine a swarm's manager, listening on `address` (loopback: a
        single-node swarm; the run's bridge: the manager of its node engines); True when
        that created the engine's docker_gwbridge network (which leaving does not remove)."""
        had_bridge = bool(self._client.networks.list(names=[GATEWAY_BRIDGE]))
        self._client.swarm.init(advertise_addr=address, listen_addr=f"{address}:2377")
        return not had_bridge

    def swarm_worker_token(self) -> str:
        self._client.swarm.reload()
        return str(self._client.swarm.attrs["JoinTokens"]["Worker"])

    def swarm_join(self, manager: str, token: str, address: str) -> str:
        """Join the swarm of `manager` (its address) as a worker listening on `address`;
        returns this engine's node id."""
        self._client.swarm.join(remote_addrs=[f"{manager}:2377"], join_token=token,
                                listen_addr=f"{address}:2377", advertise_addr=address)
        return self.swarm_node_id()

    def swarm_node_id(self) -> str:
        """This engine's node id in its swarm."""
        return str(self._client.info()["Swarm"]["NodeID"])

    def swarm_node_ready(self, node_id: str) -> bool:
        with contextlib.suppress(docker.errors.NotFound):
            node = self._api.inspect_node(node_id)
            return str(node["Status"]["State"]) == "ready"
        return False

    def swarm_remove_node(self, node_id: str) -> None:
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self._api.remove_node(node_id, force=True)

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

    def create_service(self, spec: ContainerSpec, replicas: int,
                       nodes: Sequence[str] = ()) -> str:
        """A swarm service running ``spec`` as ``replicas`` tasks, each publishing its port on
        an ephemeral host port (host mode), so every task can be probed on its own; with
        `nodes` (node ids), one task on each of those nodes and nowhere else."""
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
        # One task a node, on the nodes named: a label on each would need the manager to
        # write it; the node ids are already there.
        placement = (docker.types.Placement(
            constraints=[f"node.id!={other}" for other in self._other_nodes(nodes)],
            maxreplicas=1) if nodes else None)
        task = docker.types.TaskTemplate(
            container, resources=resources,
            restart_policy=docker.types.RestartPolicy(condition="none"),
            networks=[spec.network] if spec.network else None, placement=placement)
        endpoint = docker.types.EndpointSpec(ports=[
            {"TargetPort": spec.container_port or 8000, "Protocol": "tcp",
             "PublishMode": "host"}])
        created = self._api.create_service(
            task, name=spec.name, labels=dict(spec.labels),
            mode=docker.types.ServiceMode("replicated", replicas=replicas),
            endpoint_spec=endpoint)
        return str(created["ID"])

    def _other_nodes(self, nodes: Sequence[str]) -> list[str]:
        return [str(n["ID"]) for n in self._api.nodes() if str(n["ID"]) not in nodes]

    def service_task_nodes(self, service_id: str) -> list[tuple[str, str, str]]:
        """(node id, state, container id) of each task of a service: where the swarm placed
        it, and the container to ask that node's engine about."""
        return [(str(t.get("NodeID", "")), str(t["Status"]["State"]),
                 str(t["Status"].get("ContainerStatus", {}).get("ContainerID", "")))
                for t in self._api.tasks(filters={"service": service_id})]

    def service_tasks(self, service_id: str) -> list[tuple[str, str]]:
        """(state, container id) of each task of a service."""
        tasks = self._api.tasks(filters={"service": service_id})
        return [(str(t["Status"]["State"]),
                 str(t["Status"].get("ContainerStatus", {}).get("ContainerID", "")))
                for t in tasks]

    def remove_service(self, service_id: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self._api.remove_service(service_id)

