"""What the engine adapter hands to the rest of the harness: the run labels and plain,
engine-independent records (specs in, facts out). No docker import here, so code that only
describes containers (strategies, the trial logic, the fake engine of the unit tests) never
needs the SDK."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

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
OnContext = Callable[[int, int], None]  # build context bytes sent so far, in all


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
    """A named volume at `target`; `volume=""` is a new anonymous one, which the engine fills
    from the image's files at `target` and which carries the container's labels (a model
    image's VOLUME alone makes one with none: `bench clean` and the tests could not tell
    whose it was)."""

    volume: str
    target: str
    read_only: bool = False


# The runtime image's unprivileged user (docker/Dockerfile.runtime: useradd --uid 10001):
# the service and the harness's servers run as it.
SERVICE_UID = 10001


@dataclass(frozen=True)
class Hardening:
    """How every measured container is locked down, declared once for plain containers,
    swarm tasks and the compose file `export` writes."""

    read_only: bool = True  # the root filesystem
    tmpfs: str = "/tmp"  # the one writable place
    tmpfs_bytes: int = 64 * 1024 * 1024
    cap_drop: tuple[str, ...] = ("ALL",)
    security_opt: tuple[str, ...] = ("no-new-privileges:true",)

    @property
    def tmpfs_options(self) -> str:
        return f"rw,size={self.tmpfs_bytes // 2**20}m"


HARDENING = Hardening()


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
    volumes_from: Sequence[str] = ()  # containers whose volumes are mounted, read-only
    extra_hosts: Mapping[str, str] = field(default_factory=dict)  # name -> address (/etc/hosts)


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
