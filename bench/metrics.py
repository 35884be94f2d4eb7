"""Every metric the harness reports: one definition each, with its unit, written once here.

Definitions follow ../shared/DESIGN.md section 3. A Sample is one raw measured value; nothing
is ever summarised before it is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a metric is about. "size" and "count" are exact (the same build gives the same bytes);
# the others vary from trial to trial (bench.noise).
KINDS = ("build", "start", "size", "memory", "transfer", "rollout", "count")


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    kind: str
    description: str
    lower_is_better: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"metric {self.name}: kind {self.kind!r} is not one of {KINDS}")


_ALL = (
    Metric("context_bytes", "bytes", "size",
           "build context actually sent to the builder (legacy: the tar's length; "
           "BuildKit: its 'transferring context' figure)"),
    Metric("build_cold_s", "s", "build",
           "strategy image build with no cache for its own steps (runtime base stays cached), "
           "including packing and sending the context"),
    Metric("build_warm_s", "s", "build", "rebuild after a one-line change in the service code"),
    Metric("image_bytes", "bytes", "size", "size of the strategy image (docker image inspect Size)"),
    Metric("image_added_bytes", "bytes", "size", "what the strategy image adds on top of the runtime base"),
    Metric("runtime_build_s", "s", "build",
           "build of the shared runtime image (base + dependencies), reported once per run"),
    Metric("ready_s", "s", "start", "container start to the first 200 from /health (process up)"),
    Metric("model_ready_s", "s", "start", "container start to the first correct prediction"),
    Metric("first_predict_s", "s", "start",
           "latency of the request that returned the first correct prediction "
           "(a lazy service pays its load here)"),
    Metric("predict_latency_ms", "ms", "start", "latency of one single-row /predict once warm (raw)"),
    Metric("predict_p50_ms", "ms", "start", "median single-row /predict latency of a trial"),
    Metric("predict_p95_ms", "ms", "start", "95th percentile single-row /predict latency of a trial"),
    Metric("load_s", "s", "start", "model load seconds reported by the service (joblib.load incl. "
           "decompression)"),
    Metric("mem_working_set_bytes", "bytes", "memory",
           "cgroup memory usage minus inactive page cache, at rest after the latency probe"),
    Metric("mem_anon_bytes", "bytes", "memory",
           "cgroup anonymous memory at rest (memory.stat rss on v1, anon on v2): the RAM the "
           "service owns, without page cache"),
    Metric("mem_page_cache_bytes", "bytes", "memory",
           "cgroup page cache at rest (memory.stat cache on v1, file on v2): image and model "
           "files the kernel keeps cached and may drop"),
    Metric("probe_requests", "count", "count",
           "HTTP requests the service received before its model could serve (the harness's "
           "probe; bounded so it does not slow what it measures)"),
    Metric("client_setup_s", "s", "transfer",
           "registry: import boto3, create the client and HEAD the object, before the transfer"),
    Metric("mem_cgroup_peak_bytes", "bytes", "memory",
           "cgroup v1 max_usage over the container's life (includes page cache)"),
    Metric("server_rss_peak_bytes", "bytes", "memory",
           "peak RSS (VmHWM) of the server process tree: the load's high-water mark"),
    Metric("server_pss_bytes", "bytes", "memory", "proportional set size of the server processes, at rest"),
    Metric("server_uss_bytes", "bytes", "memory", "unique set size of the server processes, at rest"),
    Metric("disk_bytes", "bytes", "size",
           "host disk the strategy needs beyond the shared runtime image: image added bytes + "
           "model files on the host it reads at run time + cache volumes + container layer"),
    Metric("model_file_bytes", "bytes", "size", "the model file the container reads (after compression)"),
    Metric("compression_ratio", "ratio", "size", "compressed bytes / original bytes", True),
    Metric("compress_s", "s", "build", "seconds to compress the model (once; cached afterwards)"),
    Metric("upload_s", "s", "transfer", "seconds to publish the model to the registry"),
    Metric("download_s", "s", "transfer",
           "the transfer alone: seconds with model bytes in flight, from the first GET sent to "
           "the last byte written (client setup and verification apart)"),
    Metric("download_mb_per_s", "MB/s", "transfer", "download throughput", lower_is_better=False),
    Metric("reference_download_mb_per_s", "MB/s", "transfer",
           "registry: boto3's transfer manager (download_file, same concurrency and chunk) "
           "fetching the same object on the host: an independent check of download_mb_per_s",
           lower_is_better=False),
    Metric("verify_s", "s", "transfer",
           "seconds of SHA-256 verification that delayed the load (hashing that overlapped "
           "the transfer is not counted)"),
    Metric("rollout_bytes", "bytes", "rollout", "bytes moved to roll out a new model version"),
    Metric("min_memory_limit_bytes", "bytes", "memory",
           "smallest container memory limit (no swap) under which the first correct prediction "
           "is served, by bisection to 8 MiB or --memory-search-starts starts"),
    Metric("worker_pss_bytes", "bytes", "memory", "--workers N: PSS of one server worker process"),
    Metric("worker_uss_bytes", "bytes", "memory",
           "--workers N: USS of one worker (memory no other process shares)"),
    Metric("all_ready_s", "s", "start",
           "--replicas N started together: start to the last replica's first correct prediction"),
    Metric("replicas_pss_total_bytes", "bytes", "memory", "PSS of the N replicas' servers, summed"),
    Metric("replicas_mem_total_bytes", "bytes", "memory", "cgroup working set of the N replicas, summed"),
)

METRICS: dict[str, Metric] = {metric.name: metric for metric in _ALL}


@dataclass(frozen=True)
class Sample:
    """One raw measured value of one metric in one trial."""

    strategy: str
    builder: str  # "legacy", "buildkit", or "-" for metrics that do not involve a build
    condition: str  # what differs between starts of one strategy, e.g. "cache volume warm"
    trial: int  # 0 for once-per-strategy metrics (builds, sizes)
    metric: str
    value: float

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"undefined metric {self.metric!r}: define it in bench/metrics.py")

    @property
    def unit(self) -> str:
        return METRICS[self.metric].unit
