"""What a measured container is: the settings of a trial and the one spec every start path
(plain containers, replicas, swarm tasks, the memory search, a rollout) makes from them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bench.engine import BindMount, ContainerSpec, VolumeMount
from bench.service_env import SERVER_COMMAND, SERVICE_APP, check_read_by_service, service_env


@dataclass(frozen=True)
class StartSpec:
    """How one container of a trial is started; a trial may start several in sequence."""

    condition: str
    env: Mapping[str, str] = field(default_factory=dict)
    binds: Sequence[BindMount] = ()  # besides the model's (credentials)
    # The model's files on the node, mounted read-only: what --fresh-node fetches anew.
    model_binds: Sequence[BindMount] = ()
    volumes: Sequence[VolumeMount] = ()
    host_model_bytes: int = 0  # host files this start reads (for disk_bytes)
    cache_volume: str | None = None  # its size is added to disk_bytes
    # An image holding only the model under a VOLUME (modelcar): the start creates a
    # container of it (never run) and the service mounts its volumes read-only.
    model_image: str | None = None
    # It depends on an earlier start's state on the node (a warm cache volume): a fresh
    # node has none, so --fresh-node leaves it out.
    reuses_node_state: bool = False
    # Volumes whose files the start reads (the S3 server's data, a warm cache): a warm start
    # finds them resident (bench.host.machine_state), like its bind-mounted files.
    resident_volumes: Sequence[str] = ()
    # How a container on another engine (a node of --nodes) finds the run's servers by the
    # names their own network gives them: name -> address.
    extra_hosts: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialSettings:
    start_timeout_s: float = 600.0
    latency_requests: int = 50
    memory_limit_bytes: int | None = None
    cpus: float | None = None
    workers: int = 1
    worker_mode: str = "copy"  # copy: each worker loads the model; preload: load, then fork
    shared_cache: bool = True  # replicas share the start's cache volume (else one each)
    hardened: bool = True
    load_duration_s: float = 0.0  # --load: a sustained load after the start is measured
    load_concurrency: int = 4
    # Told (bytes received, bytes in all) while the service downloads its model: the
    # progress bar, from what /ready answers (no log reading, no extra request).
    on_download: Callable[[int, int], None] | None = None


def container_spec(image: str, name: str, labels: Mapping[str, str], start: StartSpec,
                   settings: TrialSettings, *, network: str | None = None,
                   volumes: list[VolumeMount] | None = None,
                   volumes_from: list[str] | None = None) -> ContainerSpec:
    """The one place a measured container's spec is made, for plain containers and swarm
    tasks alike (the swarm copy used to drop --cpus)."""
    check_read_by_service(start.env, f"the start {start.condition!r}")
    command, env = worker_command(settings)
    return ContainerSpec(
        image=image, name=name, labels=labels, env={**start.env, **env},
        binds=[*start.binds, *start.model_binds],
        volumes=list(start.volumes) if volumes is None else volumes, network=network,
        memory_limit_bytes=settings.memory_limit_bytes, cpus=settings.cpus,
        hardened=settings.hardened, command=command, volumes_from=volumes_from or [],
        extra_hosts=start.extra_hosts,
    )


def worker_command(settings: TrialSettings) -> tuple[list[str] | None, dict[str, str]]:
    """The server command for --workers N (None: the image's one-process uvicorn)."""
    if settings.workers == 1:
        return None, {}
    if settings.worker_mode == "preload":
        return (["python", "-m", "gunicorn", SERVICE_APP, "--preload",
                 "--workers", str(settings.workers), "--worker-class",
                 "uvicorn_worker.UvicornWorker", "--bind", "0.0.0.0:8000",
                 "--worker-tmp-dir", "/tmp", "--timeout", "0"],
                service_env(preload=True))
    return [*SERVER_COMMAND, "--workers", str(settings.workers)], {}
