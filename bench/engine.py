"""The Docker engine adapter: the only code in the harness that talks to Docker.

The docker SDK does everything it can; the docker CLI is used only for BuildKit builds
(docker-py always uses the legacy builder). Every object created here carries the run's
labels so that ``clean`` and every exit path can remove exactly what this harness made.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.api.build import process_dockerfile
from docker.utils import build as build_utils

from bench.errors import EngineUnavailable, StepFailed
from bench.fsutil import tree_bytes

LABEL_PREFIX = "mlbench"
RUN_LABEL = f"{LABEL_PREFIX}.run"  # every per-run object; `clean` removes by it
OWNER_PID_LABEL = f"{LABEL_PREFIX}.owner_pid"
KEEP_LABEL = f"{LABEL_PREFIX}.keep"
CACHE_LABEL = f"{LABEL_PREFIX}.cache"  # base and runtime images shared between runs
# Removing or committing GB layers takes minutes; docker-py's default of 60 s is too short.
ENGINE_TIMEOUT_S = 1800
LOG_TAIL_LINES = 30

Labels = Mapping[str, str]
OnLine = Callable[[str], None]


@dataclass(frozen=True)
class EngineInfo:
    server_version: str
    api_version: str
    storage_driver: str
    cgroup_version: str
    cgroup_driver: str
    kernel: str
    operating_system: str
    docker_root_dir: str


@dataclass(frozen=True)
class BuildResult:
    image_id: str
    seconds: float
    context_bytes: int
    builder: str
    log_tail: str


@dataclass(frozen=True)
class BindMount:
    source: str
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class VolumeMount:
    volume: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    image: str
    name: str
    labels: Labels
    env: Mapping[str, str] = field(default_factory=dict)
    binds: Sequence[BindMount] = ()
    volumes: Sequence[VolumeMount] = ()
    network: str | None = None
    network_aliases: Sequence[str] = ()
    container_port: int | None = 8000
    command: Sequence[str] | None = None
    memory_limit_bytes: int | None = None
    cpus: float | None = None  # CPU quota (docker run --cpus)
    hardened: bool = True  # non-root, read-only rootfs, no capabilities, no-new-privileges
    user: str | None = None


@dataclass(frozen=True)
class ContainerState:
    status: str
    exit_code: int | None
    oom_killed: bool
    error: str


@dataclass(frozen=True)
class MemoryStats:
    usage_bytes: int
    inactive_file_bytes: int
    peak_bytes: int | None  # cgroup v1 max_usage (includes page cache); None on cgroup v2
    anon_bytes: int  # memory.stat anonymous memory: what the processes own (v1 rss, v2 anon)
    page_cache_bytes: int  # memory.stat file pages: what the kernel may drop (v1 cache, v2 file)

    @property
    def working_set_bytes(self) -> int:
        """Usage without inactive page cache: what `docker stats` shows."""
        return self.usage_bytes - self.inactive_file_bytes


class Engine:
    """A connection to one Docker engine, bound to one harness run's labels."""

    def __init__(self, client: docker.DockerClient) -> None:
        self._client = client
        self._api = client.api

    @classmethod
    def connect(cls) -> Engine:
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

    # -- images -------------------------------------------------------------------------

    def image_inspect(self, ref: str) -> dict[str, Any] | None:
        try:
            return dict(self._api.inspect_image(ref))
        except docker.errors.ImageNotFound:
            return None

    def image_bytes(self, ref: str) -> int:
        attrs = self.image_inspect(ref)
        if attrs is None:
            raise StepFailed(f"image {ref} not found")
        return int(attrs["Size"])

    def image_history(self, ref: str) -> list[dict[str, Any]]:
        return list(self._api.history(ref))

    def save_image(self, ref: str, destination: Path) -> None:
        """Write `docker save` of an image to a file (for layer scans in tests)."""
        with destination.open("wb") as handle:
            for chunk in self._client.images.get(ref).save(named=True):
                handle.write(chunk)

    def try_pull(self, ref: str) -> bool:
        try:
            self._client.images.pull(ref)
            return True
        except docker.errors.APIError:
            return False

    def import_rootfs(self, tar_path: Path, tag: str, changes: Sequence[str]) -> str:
        """`docker import` through the CLI: docker-py's chunked upload is refused by 20.10."""
        candidates = docker_cli_candidates()
        if not candidates:
            raise StepFailed("no docker CLI on PATH to import the base image")
        command = [candidates[0], "import"]
        for change in changes:
            command += ["--change", change]
        result = subprocess.run([*command, str(tar_path), tag], capture_output=True, text=True)
        attrs = self.image_inspect(tag)
        if result.returncode != 0 or attrs is None:
            raise StepFailed(f"docker import of {tar_path} failed: {result.stderr.strip()}")
        return str(attrs["Id"])

    def remove_image(self, ref: str) -> bool:
        """Remove an image if nothing uses it (True when removed)."""
        try:
            self._api.remove_image(ref)
            return True
        except docker.errors.APIError:
            return False

    def build_cache(self) -> dict[str, int]:
        """BuildKit's build cache: entry id -> bytes (`docker system df -v`)."""
        entries = self._api.df().get("BuildCache") or []
        return {str(e["ID"]): int(e.get("Size") or 0) for e in entries}

    def prune_build_cache(self, ids: Sequence[str]) -> int:
        """Remove these build-cache entries (not in use); returns the bytes reclaimed. The
        engine's prune filter takes one id at a time ("filters expect only one value")."""
        reclaimed = 0
        for entry in ids:
            result = self._api.prune_builds(filters={"id": entry})
            reclaimed += int(result.get("SpaceReclaimed") or 0)
        return reclaimed

    def prune_all_build_cache(self) -> int:
        result = self._api.prune_builds(all=True)
        return int(result.get("SpaceReclaimed") or 0)

    def tag_exists(self, ref: str) -> bool:
        return self.image_inspect(ref) is not None

    def build(
        self,
        context_dir: Path,
        dockerfile: str,
        tag: str,
        labels: Labels,
        *,
        builder: str,
        no_cache: bool,
        on_line: OnLine = lambda _: None,
        timeout_s: float = ENGINE_TIMEOUT_S,
        build_args: Mapping[str, str] | None = None,
    ) -> BuildResult:
        """Build an image; the time includes packing and sending the context, as a user sees."""
        if builder == "legacy":
            return self._build_legacy(
                context_dir, dockerfile, tag, labels, no_cache, on_line, build_args or {}
            )
        if builder == "buildkit":
            return self._build_buildkit(
                context_dir, dockerfile, tag, labels, no_cache, on_line, timeout_s,
                build_args or {},
            )
        raise ValueError(f"unknown builder {builder!r}")

    def _build_legacy(
        self, context_dir: Path, dockerfile: str, tag: str, labels: Labels, no_cache: bool,
        on_line: OnLine, build_args: Mapping[str, str],
    ) -> BuildResult:
        started = time.perf_counter()
        exclude = read_dockerignore(context_dir)
        processed = process_dockerfile(dockerfile, str(context_dir))
        # Packed exactly as `docker build` and docker-py do (the context minus .dockerignore)
        # and streamed to the engine while it is packed, as the docker CLI does: no temp file
        # written and read back first. The bytes the engine received are counted on the way.
        context = StreamedContext(str(context_dir), exclude, processed)
        lines: list[str] = []
        image_id = ""
        try:
            stream = self._api.build(
                fileobj=context.chunks(), custom_context=True, dockerfile=processed[0],
                tag=tag, labels=dict(labels), nocache=no_cache, rm=True, forcerm=True,
                decode=True, buildargs=dict(build_args), timeout=ENGINE_TIMEOUT_S,
            )
            for chunk in stream:
                if "error" in chunk:
                    lines.append(str(chunk["error"]).strip())
                    raise StepFailed(f"build of {tag} failed: {chunk['error']}".strip(),
                                     "\n".join(lines[-LOG_TAIL_LINES:]))
                if "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = str(chunk["aux"]["ID"])
                text = str(chunk.get("stream", "")).strip()
                if text:
                    lines.append(text)
                    on_line(text)
        finally:
            context.close()
        context_bytes = context.sent_bytes
        seconds = time.perf_counter() - started
        attrs = self.image_inspect(tag)
        if attrs is None:
            raise StepFailed(f"build of {tag} produced no image", "\n".join(lines[-LOG_TAIL_LINES:]))
        return BuildResult(image_id or str(attrs["Id"]), seconds, context_bytes, "legacy",
                           "\n".join(lines[-LOG_TAIL_LINES:]))

    def _build_buildkit(
        self, context_dir: Path, dockerfile: str, tag: str, labels: Labels, no_cache: bool,
        on_line: OnLine, timeout_s: float, build_args: Mapping[str, str],
    ) -> BuildResult:
        command, env = buildkit_command()
        command += ["--progress=plain", "-f", str(context_dir / dockerfile), "-t", tag]
        for key, value in build_args.items():
            command += ["--build-arg", f"{key}={value}"]
        for key, value in labels.items():
            command += ["--label", f"{key}={value}"]
        if no_cache:
            command.append("--no-cache")
        command.append(str(context_dir))
        started = time.perf_counter()
        lines = _run_streaming(command, env, on_line, timeout_s, what=f"build of {tag}")
        seconds = time.perf_counter() - started
        attrs = self.image_inspect(tag)
        if attrs is None:
            raise StepFailed(f"build of {tag} produced no image", "\n".join(lines[-LOG_TAIL_LINES:]))
        return BuildResult(str(attrs["Id"]), seconds, buildkit_context_bytes(lines), "buildkit",
                           "\n".join(lines[-LOG_TAIL_LINES:]))

    # -- networks and volumes -----------------------------------------------------------

    def create_network(self, name: str, labels: Labels) -> str:
        network = self._client.networks.create(name, driver="bridge", labels=dict(labels))
        return str(network.id)

    def create_volume(self, name: str, labels: Labels) -> str:
        return str(self._client.volumes.create(name=name, labels=dict(labels)).name)

    def remove_volume(self, name: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self._client.volumes.get(name).remove(force=True)

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
        mounts += [docker.types.Mount(v.target, v.volume, type="volume", read_only=v.read_only)
                   for v in spec.volumes]
        host_config: dict[str, Any] = {
            "mounts": mounts,
            "port_bindings": (
                {spec.container_port: ("127.0.0.1", None)} if spec.container_port else {}
            ),
            "mem_limit": spec.memory_limit_bytes,
            # No swap on top of the limit: a load that does not fit is OOM-killed, not slowed.
            "memswap_limit": spec.memory_limit_bytes,
            "nano_cpus": int(spec.cpus * 1e9) if spec.cpus else None,
            "network_mode": spec.network,
        }
        if spec.hardened:
            host_config.update(
                read_only=True, tmpfs={"/tmp": "rw,size=64m"}, cap_drop=["ALL"],
                security_opt=["no-new-privileges:true"],
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
        """The container's IP on a bridge network (reachable from this host, when local)."""
        networks = self._api.inspect_container(container_id)["NetworkSettings"]["Networks"]
        address = (networks.get(network) or {}).get("IPAddress")
        return str(address) if address else None

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

    def remove_container(self, container_id: str) -> None:
        try:
            self._api.remove_container(container_id, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as error:
            if "already in progress" not in str(error):
                raise

    # -- labelled cleanup ---------------------------------------------------------------

    def labelled(self, label: str) -> dict[str, list[str]]:
        """Names of every container, image, volume and network carrying ``label``."""
        selector = {"label": label}
        return {
            "containers": [c.name for c in self._client.containers.list(all=True, filters=selector)],
            "images": [i.short_id for i in self._client.images.list(filters=selector)],
            "volumes": [v.name for v in self._client.volumes.list(filters=selector)],
            "networks": [n.name for n in self._client.networks.list(filters=selector)],
        }

    # -- swarm mode: a single-node swarm the harness may create and must leave as found --------

    def swarm_active(self) -> bool:
        return str(self._client.info().get("Swarm", {}).get("LocalNodeState", "")) == "active"

    def swarm_init(self) -> None:
        self._client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")

    def swarm_leave(self) -> None:
        self._client.swarm.leave(force=True)

    def create_service(self, spec: ContainerSpec, replicas: int) -> str:
        """A swarm service running ``spec`` as ``replicas`` tasks, each publishing its port on
        an ephemeral host port (host mode), so every task can be probed on its own."""
        mounts = [docker.types.Mount(m.target, m.source, type="bind", read_only=m.read_only)
                  for m in spec.binds]
        mounts += [docker.types.Mount(v.target, v.volume, type="volume", read_only=v.read_only)
                   for v in spec.volumes]
        if spec.hardened:
            mounts.append(docker.types.Mount("/tmp", "", type="tmpfs",
                                             tmpfs_size=64 * 1024 * 1024))
        container = docker.types.ContainerSpec(
            spec.image, command=list(spec.command) if spec.command else None,
            env=dict(spec.env), labels=dict(spec.labels), mounts=mounts, user=spec.user,
            read_only=spec.hardened or None, cap_drop=["ALL"] if spec.hardened else None,
        )
        resources = (docker.types.Resources(
            mem_limit=spec.memory_limit_bytes,
            cpu_limit=int(spec.cpus * 1e9) if spec.cpus else None)
            if spec.memory_limit_bytes or spec.cpus else None)
        task = docker.types.TaskTemplate(
            container, resources=resources,
            restart_policy=docker.types.RestartPolicy(condition="none"))
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

    def remove_labelled(self, label: str, *, images: bool = True) -> dict[str, int]:
        """Remove everything carrying ``label`` (services and containers first: they hold
        the rest)."""
        selector = {"label": label}
        removed = {"containers": 0, "images": 0, "volumes": 0, "networks": 0}
        if self.swarm_active():
            for service in self._api.services(filters=selector):
                self.remove_service(str(service["ID"]))
            self._wait_for_no_containers(selector)
        for container in self._client.containers.list(all=True, filters=selector):
            self.remove_container(str(container.id))
            removed["containers"] += 1
        for network in self._client.networks.list(filters=selector):
            try:
                network.remove()
                removed["networks"] += 1
            except docker.errors.APIError:
                pass
        for volume in self._client.volumes.list(filters=selector):
            self.remove_volume(str(volume.name))
            removed["volumes"] += 1
        if images:
            # A build step container that is still stopping holds its parent image for a
            # moment: retry a few times rather than leave a labelled image behind.
            for attempt in range(5):
                leftover = self._client.images.list(filters=selector)
                for image in leftover:
                    try:
                        self._api.remove_image(image.id, force=True, noprune=False)
                        removed["images"] += 1
                    except docker.errors.APIError:
                        pass
                if not self._client.images.list(filters=selector):
                    break
                for container in self._client.containers.list(all=True, filters=selector):
                    self.remove_container(str(container.id))
                time.sleep(0.5 * (attempt + 1))
        return removed

    def _wait_for_no_containers(self, selector: dict[str, str], timeout_s: float = 60) -> None:
        """Swarm removes a service's task containers asynchronously: wait for them."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._client.containers.list(filters=selector):
            time.sleep(0.3)

    def run_labels(self, selector: str) -> set[str]:
        """Distinct values of the run label on objects matching ``selector`` (for sweeps)."""
        found: set[str] = set()
        for container in self._client.containers.list(all=True, filters={"label": selector}):
            found.add(container.labels.get(RUN_LABEL, ""))
        for image in self._client.images.list(filters={"label": selector}):
            found.add(image.labels.get(RUN_LABEL, ""))
        for volume in self._client.volumes.list(filters={"label": selector}):
            found.add((volume.attrs.get("Labels") or {}).get(RUN_LABEL, ""))
        for network in self._client.networks.list(filters={"label": selector}):
            found.add((network.attrs.get("Labels") or {}).get(RUN_LABEL, ""))
        found.discard("")
        return found

    def owner_pids(self, run_id: str) -> set[int]:
        pids: set[int] = set()
        selector = {"label": f"{RUN_LABEL}={run_id}"}
        for container in self._client.containers.list(all=True, filters=selector):
            pids.add(int(container.labels.get(OWNER_PID_LABEL, "0")))
        for image in self._client.images.list(filters=selector):
            pids.add(int(image.labels.get(OWNER_PID_LABEL, "0")))
        for network in self._client.networks.list(filters=selector):
            pids.add(int((network.attrs.get("Labels") or {}).get(OWNER_PID_LABEL, "0")))
        return pids

    def keeps(self, run_id: str) -> bool:
        images = self._client.images.list(filters={"label": f"{RUN_LABEL}={run_id}"})
        return any(image.labels.get(KEEP_LABEL) == "1" for image in images)


# -- helpers that need no engine connection ----------------------------------------------


class StreamedContext:
    """A build context packed by docker-py's own tar code in a thread and handed to the
    request as it is produced (chunked upload), counting the bytes sent."""

    CHUNK_QUEUE = 16  # 16 x up to 1 MiB in memory at most

    def __init__(self, root: str, exclude: list[str] | None,
                 dockerfile: tuple[str | None, str | None]) -> None:
        self.sent_bytes = 0
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(self.CHUNK_QUEUE)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._pack, args=(root, exclude, dockerfile),
                                        name="context-tar", daemon=True)
        self._thread.start()

    def _pack(self, root: str, exclude: list[str] | None,
              dockerfile: tuple[str | None, str | None]) -> None:
        try:
            writer = _QueueWriter(self._put)
            build_utils.tar(root, exclude=exclude, dockerfile=dockerfile, fileobj=writer)
            writer.flush()
            self._put(None)
        except BaseException as error:  # handed to the reading side
            with contextlib.suppress(_Abandoned):
                self._put(error)

    def _put(self, item: bytes | BaseException | None) -> None:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        raise _Abandoned

    def chunks(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            self.sent_bytes += len(item)
            yield item

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)


class _Abandoned(Exception):
    """The request stopped reading the context (the build failed): stop packing."""


class _QueueWriter(io.RawIOBase):
    """The file object tarfile writes to: it only appends, so tell() is the count written and
    seek() (docker-py rewinds its temp file at the end) has nothing to do."""

    BLOCK = 1024 * 1024

    def __init__(self, put: Callable[[bytes | BaseException | None], None]) -> None:
        self._put = put
        self._position = 0
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += data
        self._position += len(data)
        if len(self._buffer) >= self.BLOCK:
            self._put(bytes(self._buffer))
            self._buffer.clear()
        return len(data)

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._position

    def flush(self) -> None:
        if self._buffer:
            self._put(bytes(self._buffer))
            self._buffer.clear()


def read_dockerignore(context_dir: Path) -> list[str] | None:
    path = context_dir / ".dockerignore"
    if not path.exists():
        return None
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


_CONTEXT_LINE = re.compile(r"transferring context:\s*([\d.]+)\s*([kKMGT]?B)")
_UNIT = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def buildkit_context_bytes(lines: Sequence[str]) -> int:
    """Bytes BuildKit reports sending ("transferring context: 64.07MB"; 3-4 digits only)."""
    value = 0
    for line in lines:
        match = _CONTEXT_LINE.search(line)
        if match:
            value = round(float(match.group(1)) * _UNIT[match.group(2)])
    return value


def docker_cli_candidates() -> list[str]:
    seen: list[str] = []
    for folder in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin"]:
        candidate = os.path.join(folder, "docker")
        if os.access(candidate, os.X_OK):
            real = os.path.realpath(candidate)
            if real not in [os.path.realpath(s) for s in seen]:
                seen.append(candidate)
    return seen


def buildkit_command() -> tuple[list[str], dict[str, str]]:
    """How to run a BuildKit build here: `docker buildx build --load` where buildx exists,
    else a client older than 23.0 with DOCKER_BUILDKIT=1 (a newer client refuses that)."""
    env = dict(os.environ)
    for cli in docker_cli_candidates():
        buildx = subprocess.run([cli, "buildx", "version"], capture_output=True, text=True)
        if buildx.returncode == 0:
            return [cli, "buildx", "build", "--load"], env
    for cli in docker_cli_candidates():
        version = subprocess.run([cli, "version", "--format", "{{.Client.Version}}"],
                                 capture_output=True, text=True)
        major = version.stdout.strip().split(".")[0]
        if major.isdigit() and int(major) < 23:
            env["DOCKER_BUILDKIT"] = "1"
            return [cli, "build"], env
    raise StepFailed(
        "no BuildKit-capable docker client: install the buildx plugin "
        "(`apt-get install docker-buildx`) or use --builder legacy"
    )


@functools.cache  # a subprocess probe; the client does not change while we run
def buildkit_available() -> bool:
    try:
        buildkit_command()
    except StepFailed:
        return False
    return True


def _run_streaming(
    command: list[str], env: dict[str, str], on_line: OnLine, timeout_s: float, what: str
) -> list[str]:
    lines: list[str] = []
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            on_line(line.rstrip())
            if time.monotonic() > deadline:
                raise StepFailed(f"{what} timed out after {timeout_s:.0f}s",
                                 "\n".join(lines[-LOG_TAIL_LINES:]))
        code = process.wait()
    except BaseException:
        # Ctrl-C or a timeout: stop the client (and its session) before cleanup runs.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait()
        raise
    if code != 0:
        raise StepFailed(f"{what} failed (docker exit {code})", "\n".join(lines[-LOG_TAIL_LINES:]))
    return lines
