"""The Docker engine adapter: the only code in the harness that talks to Docker.

Split by job: `connection` (client, facts), `images`, `build` (SDK and CLI builders behind
one interface), `containers` (with networks and volumes), `swarm`, `housekeeping` (by
label); `DockerEngine` joins them. Everything else types against the `Engine` protocol and
the plain records of `types`. Every object created carries the run's labels so that `clean`
and every exit path can remove exactly what this harness made.
"""

from bench.engine.build import buildkit_available, buildkit_context_bytes, read_dockerignore
from bench.engine.docker_engine import DockerEngine
from bench.engine.protocol import Engine
from bench.engine.types import (
    CACHE_LABEL,
    ENGINE_TIMEOUT_S,
    HARDENING,
    KEEP_LABEL,
    LABEL_PREFIX,
    LOG_TAIL_LINES,
    OWNER_PID_LABEL,
    RUN_LABEL,
    SERVICE_UID,
    BindMount,
    BuildResult,
    ContainerSpec,
    ContainerState,
    EngineInfo,
    Labels,
    MemoryStats,
    OnLine,
    VolumeMount,
)

__all__ = [
    "CACHE_LABEL", "ENGINE_TIMEOUT_S", "HARDENING", "KEEP_LABEL", "LABEL_PREFIX", "LOG_TAIL_LINES",
    "OWNER_PID_LABEL", "RUN_LABEL", "SERVICE_UID", "BindMount", "BuildResult", "ContainerSpec",
    "ContainerState", "DockerEngine", "Engine", "EngineInfo", "Labels", "MemoryStats", "OnLine",
    "VolumeMount", "buildkit_available", "buildkit_context_bytes", "read_dockerignore",
]
