"""What one measured start returns: typed fields, no metric names. The recorder
(bench.measure.recorder) is the one place that turns a measurement into stored samples, so
a field here means one thing and its name in the results is chosen once, there."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.engine import MemoryStats
from bench.measure.load_test import LoadResult
from bench.measure.probes import ProcessMemory


@dataclass(frozen=True)
class Timeline:
    """Seconds after the container start (host clock, taken just before the start call) at
    which the service stamped each moment; None where the service did not stamp it."""

    stamps: dict[str, float]

    def at(self, stamp: str) -> float | None:
        return self.stamps.get(stamp)


@dataclass(frozen=True)
class Transfer:
    """The in-container download of the registry strategies, from the service's stamps."""

    seconds: float  # time the transfer was active
    bytes: int
    client_setup_s: float | None = None
    retries: int | None = None


@dataclass(frozen=True)
class NodeFetch:
    """--fresh-node: what provisioning a node for one start cost, before the container
    started (bench.measure.fresh_node)."""

    started: tuple[float, float]  # (monotonic, wall) moment provisioning began: the start's 0
    pull_s: float  # the strategy's images pulled by digest from the OCI registry
    pull_bytes: int | None  # bytes the registry sent (None: a registry whose link is unread)
    pulled_at: float  # monotonic moment the pull ended
    fetch_s: float  # the model files of a bind-mount strategy, from the model store
    fetch_bytes: int
    fetched_at: float  # monotonic moment the node was ready for the container
    images_absent_before: bool  # the pull really started from a node without them
    node_dir: Path  # the node's copies of the model files, removed after the start


@dataclass(frozen=True)
class PagedFill:
    """flat_lazy: what the service fetched page by page, from its /metadata."""

    first_bytes: int  # fetched before its first prediction answered
    first_requests: int  # ranged GETs for them
    whole_s: float | None  # start to the file whole and local (None: not within the wait)
    demand_bytes: int  # fetched because requests waited for them, in all
    fill_bytes: int  # fetched by the background fill
    range_retries: int = 0  # demand ranges asked again after a failed GET
    fill_active_s: float = 0.0  # seconds with a fill GET in flight


@dataclass(frozen=True)
class DiskParts:
    """What the start occupies on disk besides its image (the recorder adds the image)."""

    container_layer_bytes: int
    cache_volume_bytes: int
    host_model_bytes: int
    model_volume_bytes: int = 0  # modelcar: the volume filled from the model image


@dataclass(frozen=True)
class SustainedLoad:
    result: LoadResult
    anon_before_bytes: int
    anon_after_bytes: int


@dataclass
class StartMeasurement:
    """One container's start, as measured by bench.measure.trial."""

    ready_s: float  # container start to the server listening
    model_ready_s: float  # container start to the first correct prediction
    first_predict_s: float  # latency of that first prediction
    probe_requests: int  # requests the service got before its model was loaded
    latencies_ms: list[float]  # single-row /predict once warm
    batch_latencies_ms: list[float]  # 100-row /predict once warm
    timeline: Timeline
    disk: DiskParts
    memory: MemoryStats | None = None  # the cgroup's view at rest
    processes: ProcessMemory | None = None  # the server processes' view at rest
    load_s: float | None = None  # the service's own load time
    verify_s: float | None = None  # SHA-256 check of a downloaded file
    transfer: Transfer | None = None
    paged: PagedFill | None = None
    load: SustainedLoad | None = None  # --load
    model_container_create_s: float | None = None  # modelcar: creating the model's container
    node: NodeFetch | None = None  # --fresh-node: provisioning, before the container start
    node_received_bytes: int | None = None  # --nodes: what crossed the node's link, all told
    unmeasured: dict[str, str] = field(default_factory=dict)  # metric -> why it is missing
    remarks: list[str] = field(default_factory=list)  # what the report should say about it
