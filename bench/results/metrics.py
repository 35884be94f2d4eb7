"""The metric catalogue: every metric the harness stores, declared once here with its unit,
kind, labels in English and Spanish, where the report shows it and whether it decides who
wins. Tables, the terminal summary, labels, winners and charts are all built from it, so a
new metric shown everywhere is one entry here plus the code that measures it.

Definitions follow ../shared/DESIGN.md section 3. A Sample is one raw measured value; nothing
is ever summarised before it is stored.
"""

from __future__ import annotations

from dataclasses import dataclass

# Declared in their own modules, and used from here by the rest of the harness.
from bench.results.machine_metrics import MACHINE_METRICS
from bench.results.machine_metrics import MACHINE_ROW as MACHINE_ROW
from bench.results.metric import CHARTS as CHARTS
from bench.results.metric import KINDS as KINDS
from bench.results.metric import TABLES as TABLES
from bench.results.metric import Metric

_FRESH = "--fresh-node"
_PAGED = "the mmap-lazy strategy"

_ALL: tuple[Metric, ...] = (
    # -- builds (per builder) --------------------------------------------------------------
    Metric("context_bytes", "bytes", "size", "Build context", "Contexto de build",
           "build context the engine received (legacy: the streamed tar, counted on the way; "
           "BuildKit: its 'transferring context' figure)",
           table="build", chart="context", wins=True, headline=True),
    Metric("build_cold_s", "s", "build", "Cold build", "Build en frío",
           "strategy image build with no cache for its own steps (runtime base stays cached), "
           "including packing and sending the context",
           table="build", chart="build_time", wins=True, headline=True),
    Metric("build_warm_s", "s", "build", "Warm build", "Build en caliente",
           "rebuild after a one-line change in the service code",
           table="build", chart="build_time", wins=True),
    Metric("image_bytes", "bytes", "size", "Image size", "Tamaño de imagen",
           "size of the strategy image (docker image inspect Size)",
           table="build", chart="image"),
    Metric("image_added_bytes", "bytes", "size", "Image added", "Añadido a la imagen",
           "what the strategy image adds on top of the runtime base",
           table="build", chart="image", wins=True, headline=True),
    Metric("runtime_build_s", "s", "build", "Runtime image build", "Build de la imagen de ejecución",
           "build of the shared runtime image (base + dependencies), reported once per run",
           optional="when the runtime image was built by a harness that kept its build time"),
    # -- start-up and serving (per trial) --------------------------------------------------
    Metric("ready_s", "s", "start", "Server up", "Servidor arriba",
           "container start to the server listening (the service's own stamp; on a fresh "
           "node, from the moment its provisioning began)",
           table="start", chart="startup", wins=True),
    Metric("model_ready_s", "s", "start", "First correct prediction",
           "Primera predicción correcta",
           "container start to the first correct prediction, of one row (eager: the "
           "service's load end plus that prediction; lazy: the return of its first request; "
           "on a fresh node, from the moment its provisioning began); the 16 reference rows "
           "are checked right after it",
           table="start", chart="startup", wins=True, headline=True),
    Metric("ready_to_model_ready_s", "s", "start", "Server up to first prediction",
           "Del servidor a la 1.ª predicción",
           "what the model costs after the server is up: model_ready_s minus ready_s",
           table="start", chart="startup", wins=True, headline=True),
    Metric("first_predict_s", "s", "start", "First-prediction latency",
           "Latencia de la 1.ª predicción",
           "latency of the request that returned the first correct prediction "
           "(a lazy service pays its load here)",
           table="start", chart="first_predict", wins=True),
    Metric("predict_p50_ms", "ms", "start", "Latency p50", "Latencia p50",
           "median single-row /predict latency of a trial", table="start", wins=True),
    Metric("predict_p95_ms", "ms", "start", "Latency p95", "Latencia p95",
           "95th percentile single-row /predict latency of a trial"),
    Metric("predict_100_p50_ms", "ms", "start", "Latency p50, 100 rows",
           "Latencia p50, 100 filas", "median /predict latency of a 100-row batch once warm",
           table="start"),
    Metric("predict_100_p95_ms", "ms", "start", "Latency p95, 100 rows",
           "Latencia p95, 100 filas", "95th percentile /predict latency of a 100-row batch"),
    Metric("inproc_predict_p50_ms", "ms", "start", "In-process predict p50",
           "Predicción en proceso p50",
           "the model's own predict of one row in a fresh process on the host, after a "
           "warm-up (scikit-learn; for mmap strategies the flat predictor): what serving "
           "adds is the rest of the served latency", table="model",
           optional="the in-process reference row and the mmap strategies"),
    Metric("inproc_predict_100_p50_ms", "ms", "start", "In-process predict p50, 100 rows",
           "Predicción en proceso p50, 100 filas",
           "the same, for a batch of 100 rows", table="model",
           optional="the in-process reference row and the mmap strategies"),
    Metric("predict_latency_ms", "ms", "start", "Prediction latency", "Latencia de predicción",
           "latency of one single-row /predict once warm (raw)"),
    Metric("load_s", "s", "start", "Model load", "Carga del modelo",
           "model load seconds reported by the service (joblib.load incl. decompression)",
           table="start"),
    Metric("probe_requests", "count", "count", "Probe requests during start",
           "Peticiones de sondeo",
           "HTTP requests the service received before its model could serve (the harness's "
           "probe; bounded so it does not slow what it measures)"),
    # -- memory ------------------------------------------------------------------------------
    Metric("server_rss_peak_bytes", "bytes", "memory", "Peak RSS", "RSS máximo",
           "peak RSS (VmHWM) of the server process tree: the load's high-water mark",
           table="start", chart="memory", wins=True),
    Metric("mem_anon_bytes", "bytes", "memory", "RAM at rest (anon)", "RAM en reposo (anónima)",
           "cgroup anonymous memory at rest (memory.stat rss on v1, anon on v2): the RAM the "
           "service owns, without page cache",
           table="start", chart="memory", wins=True, headline=True),
    Metric("mem_page_cache_bytes", "bytes", "memory", "Page cache at rest",
           "Caché de páginas en reposo",
           "cgroup page cache at rest (memory.stat cache on v1, file on v2): image and model "
           "files the kernel keeps cached and may drop",
           table="start", chart="memory"),
    Metric("server_pss_bytes", "bytes", "memory", "PSS at rest", "PSS en reposo",
           "proportional set size of the server processes, at rest", table="start", wins=True),
    Metric("server_uss_bytes", "bytes", "memory", "USS at rest", "USS en reposo",
           "unique set size of the server processes, at rest"),
    Metric("mem_working_set_bytes", "bytes", "memory", "Memory (cgroup)", "Memoria (cgroup)",
           "cgroup memory usage minus inactive page cache, at rest after the latency probe "
           "(what docker stats shows)", table="start"),
    Metric("mem_cgroup_peak_bytes", "bytes", "memory", "Memory peak (cgroup)",
           "Pico de memoria (cgroup)",
           "cgroup v1 max_usage over the container's life (includes page cache)",
           optional="cgroup v1 only (recorded as not measured on v2)"),
    Metric("disk_bytes", "bytes", "size", "Disk", "Disco",
           "host disk the strategy needs beyond the shared runtime image: image added bytes + "
           "model files on the host it reads at run time + cache volumes + container layer",
           table="start", chart="disk", wins=True, headline=True),
    # -- sustained load (--load) -------------------------------------------------------------
    Metric("load_rps", "req/s", "load", "Throughput under load", "Rendimiento bajo carga",
           "--load: answered /predict requests per second, closed loop of --concurrency "
           "clients (every tenth request 100 rows, the others one)", lower_is_better=False,
           table="start", optional="--load DURATION"),
    Metric("load_p50_ms", "ms", "load", "Latency p50 under load", "Latencia p50 bajo carga",
           "--load: median latency of the answered requests", optional="--load DURATION"),
    Metric("load_p95_ms", "ms", "load", "Latency p95 under load", "Latencia p95 bajo carga",
           "--load: 95th percentile latency", optional="--load DURATION"),
    Metric("load_p99_ms", "ms", "load", "Latency p99 under load", "Latencia p99 bajo carga",
           "--load: 99th percentile latency", table="start", optional="--load DURATION"),
    Metric("load_errors", "count", "count", "Errors under load", "Errores bajo carga",
           "--load: requests not answered with a 200 and one prediction per row",
           table="start", optional="--load DURATION"),
    Metric("load_anon_growth_bytes", "bytes", "memory", "RAM growth under load",
           "Crecimiento de RAM bajo carga",
           "--load: the cgroup's anonymous memory after the load minus before (a leak check)",
           table="start", optional="--load DURATION"),
    # -- scale options -------------------------------------------------------------------------
    Metric("all_ready_s", "s", "start", "All replicas ready", "Todas las réplicas listas",
           "--replicas N (or --nodes N) started together: start to the last replica's first "
           "correct prediction", table="start",
           optional="--replicas N > 1, --orchestrator swarm or --nodes N"),
    Metric("replicas_pss_total_bytes", "bytes", "memory", "PSS, all replicas",
           "PSS, todas las réplicas", "PSS of the N replicas' servers, summed",
           table="start", optional="--replicas N > 1 or --orchestrator swarm"),
    Metric("replicas_mem_total_bytes", "bytes", "memory", "Memory, all replicas",
           "Memoria, todas las réplicas", "cgroup working set of the N replicas, summed",
           optional="--replicas N > 1 or --orchestrator swarm"),
    Metric("worker_pss_bytes", "bytes", "memory", "PSS per worker", "PSS por proceso",
           "--workers N: PSS of one server worker process",
           table="start", optional="--workers N > 1"),
    Metric("worker_uss_bytes", "bytes", "memory", "USS per worker", "USS por proceso",
           "--workers N: USS of one worker (memory no other process shares)",
           table="start", optional="--workers N > 1"),
    Metric("min_memory_limit_bytes", "bytes", "memory", "Smallest memory limit",
           "Límite de memoria mínimo",
           "smallest container memory limit (no swap) under which the first correct prediction "
           "is served, by bisection to 8 MiB or --memory-search-starts starts",
           table="start", optional="--find-memory-limit"),
    # -- the model's files and transfers (per strategy) ---------------------------------------
    Metric("model_file_bytes", "bytes", "size", "Model file", "Archivo del modelo",
           "the model file the container reads (after compression)", table="model"),
    Metric("compression_ratio", "ratio", "size", "Compression ratio", "Tasa de compresión",
           "bytes of the file the container reads / the original model's bytes",
           table="model", optional="compressed, sharded and mmap strategies"),
    Metric("compress_s", "s", "build", "Compression time", "Tiempo de compresión",
           "seconds to compress, repack or convert the model; a value reused from the cache "
           "says which run measured it", table="model",
           optional="compressed, sharded and mmap strategies"),
    Metric("upload_s", "s", "transfer", "Upload", "Subida",
           "seconds to publish the model to the registry", table="model",
           optional="registry strategies"),
    Metric("client_setup_s", "s", "transfer", "S3 client setup", "Preparación del cliente S3",
           "registry: import boto3, create the client and HEAD the object, before the transfer",
           table="model", optional="registry, on a start that downloads"),
    Metric("download_s", "s", "transfer", "Download", "Descarga",
           "the transfer alone: seconds with model bytes in flight, from the first GET sent to "
           "the last byte written (client setup and verification apart)",
           table="model", optional="registry strategies, on a start that downloads"),
    Metric("download_mb_per_s", "MB/s", "transfer", "Download rate", "Velocidad de descarga",
           "bytes downloaded / download_s", lower_is_better=False, table="model",
           optional="registry strategies, on a start that downloads"),
    Metric("download_retries", "count", "count", "Download retries", "Reintentos de descarga",
           "transient failures (connection lost, 5xx, timeouts) the download retried; bounded, "
           "and never for a 4xx", table="model",
           optional="registry strategies, on a start that downloads"),
    Metric("paged_first_bytes", "bytes", "transfer", "Bytes before first prediction",
           "Bytes antes de la primera predicción",
           "mmap-lazy: bytes of the flat file fetched (page by page, verified) before the "
           "service's first prediction answered", table="model", optional=_PAGED),
    Metric("paged_first_requests", "count", "count", "Range requests before first prediction",
           "Peticiones de rango antes de la primera predicción",
           "mmap-lazy: ranged GETs for those pages (adjacent missing pages coalesced)",
           table="model", optional=_PAGED),
    Metric("paged_range_retries", "count", "count", "Range requests asked again",
           "Peticiones de rango repetidas",
           "mmap-lazy: demand ranges whose GET failed (a read timed out, a connection reset) "
           "and were asked again on another connection, up to the start's first correct "
           "prediction and the checks after it", table="model", optional=_PAGED),
    Metric("paged_fill_bytes", "bytes", "transfer", "Bytes until whole", "Bytes hasta completo",
           "mmap-lazy: bytes fetched in all, on demand and by the background fill",
           optional=_PAGED),
    Metric("fill_mb_per_s", "MB/s", "transfer", "Fill rate", "Velocidad del llenado",
           "mmap-lazy: the background fill's bytes over the seconds it had a GET in flight "
           "(its pauses while requests fetch pages left out): what the fill reaches against "
           "the link's rate", lower_is_better=False, table="model", optional=_PAGED),
    Metric("file_whole_s", "s", "start", "File whole", "Fichero completo",
           "mmap-lazy: container start to the flat file whole and local (the background "
           "fill done), while the service served", table="start", optional=_PAGED),
    Metric("reference_download_mb_per_s", "MB/s", "transfer", "Host boto3 rate (reference)",
           "Velocidad boto3 en el host (referencia)",
           "registry: boto3's transfer manager (download_file, same concurrency and chunk) "
           "fetching the same object on the host: an independent check of download_mb_per_s",
           lower_is_better=False, table="model", optional="the registry strategy"),
    Metric("verify_s", "s", "transfer", "SHA-256 check", "Verificación SHA-256",
           "seconds of SHA-256 verification that delayed the load (hashing that overlapped "
           "the transfer is not counted)", table="model",
           optional="registry strategies (every start)"),
    Metric("model_image_build_s", "s", "build", "Model image build",
           "Build de la imagen del modelo",
           "modelcar: building the FROM-scratch image that holds only the model",
           table="model", optional="the modelcar strategy"),
    Metric("model_image_bytes", "bytes", "size", "Model image", "Imagen del modelo",
           "modelcar: size of the image that holds only the model", table="model",
           optional="the modelcar strategy"),
    Metric("model_container_create_s", "s", "start", "Model container created",
           "Contenedor del modelo creado",
           "modelcar: creating the (never run) container of the model image, which copies "
           "the model into the volume the service mounts; before the service starts",
           table="start", optional="the modelcar strategy"),
    # -- a fresh node (--fresh-node): what a new replica fetches before it starts --------------
    Metric("push_s", "s", "transfer", "Push to the OCI registry", "Subida al registro OCI",
           "pushing an image the nodes pull (the service image; modelcar's model image is the "
           "condition 'model image') to the OCI registry, once per strategy",
           table="model", optional=_FRESH),
    Metric("push_bytes", "bytes", "transfer", "Bytes pushed", "Bytes subidos",
           "bytes the OCI registry received for that push (its link's counters)",
           table="model", optional=_FRESH),
    Metric("pull_s", "s", "transfer", "Pull on a fresh node", "Descarga de imágenes (pull) en un nodo nuevo",
           "pulling the start's images by digest onto a node that had none of them (the "
           "shared runtime image stays on the node)", table="start", chart="startup",
           optional=_FRESH),
    Metric("pull_bytes", "bytes", "transfer", "Bytes pulled", "Bytes descargados (pull)",
           "bytes the OCI registry sent for that pull (its link's counters)", table="start",
           optional=_FRESH),
    Metric("node_fetch_s", "s", "transfer", "Model files to the node",
           "Archivos del modelo al nodo",
           "bind-mount strategies on a fresh node: copying the model files from the model "
           "store (the S3 server) to the node", table="start", optional=_FRESH),
    Metric("node_fetch_bytes", "bytes", "transfer", "Bytes to the node", "Bytes al nodo",
           "bytes of model files copied to a fresh node", optional=_FRESH),
    Metric("node_received_bytes", "bytes", "transfer", "Bytes over the node's link",
           "Bytes por el enlace del nodo",
           "--nodes: everything the node's link carried to it during its start (pulls, "
           "model files, downloads, pages, and the harness's own requests to the service), "
           "from its veth's counters", table="start",
           optional="--nodes N"),
    Metric("nodes_received_total_bytes", "bytes", "transfer", "Bytes to all nodes",
           "Bytes a todos los nodos",
           "--nodes: what the N nodes received together during one start: the egress the "
           "run's registry and stores shared", table="start", optional="--nodes N"),
    # -- a new model version on a running service (--rollout) -------------------------------
    Metric("rollout_s", "s", "rollout", "Rollout", "Despliegue",
           "from the new model file to the running service's first answer with its "
           "predictions: what the strategy needs (rebuild, compress, upload, push, pull, "
           "copy, restart)", table="model", chart="rollout", wins=True, optional="--rollout"),
    Metric("rollout_bytes", "bytes", "rollout", "Rollout bytes", "Bytes por despliegue",
           "bytes through the OCI registry, the model store and the strategy's S3 server "
           "(up from the build machine plus down to the node) during the rollout",
           table="model", wins=True, optional="--rollout"),
)

_ALL += MACHINE_METRICS


# The start-up timeline: the service's epoch stamps (docker/service model_holder.LoadStory),
# and on a fresh node (--fresh-node) the harness's own moments before the container started;
# stored per start as seconds after the start's 0, one metric each. "server_up" is ready_s
# itself, and the timeline's end is model_ready_s.
SERVICE_STAMPS = ("process_start", "server_up", "download_start", "download_end",
                  "load_start", "load_end")
NODE_STAMPS = ("pull_end", "node_fetch_end", "container_start")
TIMELINE_STAMPS = NODE_STAMPS + SERVICE_STAMPS
_TIMELINE = (
    ("pull_end", "Images pulled", "Imágenes descargadas", _FRESH),
    ("node_fetch_end", "Model files on the node", "Archivos del modelo en el nodo", _FRESH),
    ("container_start", "Container started", "Contenedor arrancado", _FRESH),
    ("process_start", "Server process started", "Proceso del servidor iniciado", None),
    ("download_start", "Download started", "Descarga iniciada", "registry strategies"),
    ("download_end", "Download ended", "Descarga terminada", "registry strategies"),
    ("load_start", "Model load started", "Carga del modelo iniciada", None),
    ("load_end", "Model load ended", "Carga del modelo terminada", None),
)


def timeline_metric(stamp: str) -> str:
    """The metric of a timeline stamp ("server_up" is ready_s)."""
    return "ready_s" if stamp == "server_up" else f"at_{stamp}_s"


_ALL += tuple(
    Metric(timeline_metric(stamp), "s", "start", en, es,
           f"seconds from the start's 0 (the container start; on a fresh node the moment its "
           f"provisioning began) to the {stamp} stamp (the start-up timeline chart)",
           optional=optional)
    for stamp, en, es, optional in _TIMELINE)

METRICS: dict[str, Metric] = {metric.name: metric for metric in _ALL}


def in_table(group: str) -> tuple[str, ...]:
    """The metrics a comparison table shows, in catalogue order."""
    return tuple(m.name for m in _ALL if m.table == group)


def in_chart(stem: str) -> tuple[str, ...]:
    return tuple(m.name for m in _ALL if m.chart == stem)


WINNER_METRICS = tuple(m.name for m in _ALL if m.wins)
HEADLINE_METRICS = tuple(m.name for m in _ALL if m.headline)


@dataclass(frozen=True)
class Sample:
    """One raw measured value of one metric in one trial."""

    strategy: str
    builder: str  # "legacy", "buildkit", or "-" for metrics that do not involve a build
    condition: str  # what differs between starts of one strategy, e.g. "cache volume warm"
    trial: int  # build repetition (builds), trial (starts), 0 for once-per-strategy values
    metric: str
    value: float
    # When a start's sample was measured (schema 4): the round of the run's plan (0: not in
    # a round; left out, the trial's number, as in a sequential run), the UTC wall clock of
    # the container start, and whether the start was the strategy's warm-up (stored, never
    # in a summary).
    round: int = -1
    started_at: str = ""
    warmup: bool = False

    def __post_init__(self) -> None:
        if self.round < 0:
            object.__setattr__(self, "round", self.trial)
        if self.metric not in METRICS:
            raise ValueError(f"undefined metric {self.metric!r}: define it in bench/results/metrics.py")

    @property
    def unit(self) -> str:
        return METRICS[self.metric].unit
