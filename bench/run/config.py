"""The configuration of one benchmark run, typed once and validated once, when it is made:
the command line and the tests build the same RunConfig and meet the same usage errors
before anything is built."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench.errors import UsageError
from bench.host import page_cache
from bench.measure.spec import TrialSettings
from bench.options import comma_list, option, positive_int
from bench.results.units import parse_duration, parse_size
from bench.run.plan import ORDERS, Order
from datos.boosting_models import KINDS as BOOSTING_KINDS
from datos.boosting_models import missing_library
from datos.model_generator import MODEL_KINDS
from strategies import DEFAULT_STRATEGIES, REGISTRY
from strategies.base import StrategyOptions

Builder = Literal["legacy", "buildkit"]
BUILDERS: tuple[Builder, ...] = ("legacy", "buildkit")
WorkerMode = Literal["copy", "preload"]
Orchestrator = Literal["engine", "swarm"]


def builders_of(choice: str) -> tuple[Builder, ...]:
    """--builder: legacy, buildkit, both, or auto (both where BuildKit is available)."""
    from bench.engine import buildkit_available

    if choice == "auto":
        return BUILDERS if buildkit_available() else ("legacy",)
    if choice == "both":
        return BUILDERS
    return tuple(b for b in BUILDERS if b == choice)


def _named(names: tuple[str, ...]) -> dict[str, Any]:
    # Named on the command line: one that cannot take the model is a usage error.
    return {"strategies": names, "strategies_named": True}


def _rollout(text: str) -> dict[str, Any]:
    return {"rollout": True, "rollout_model_path": Path(text) if text else None}


def _show_size(size: int) -> str:
    return f"{size / 1e9:g}GB" if size >= 1e9 else f"{size / 1e6:g}MB"


def _default_results() -> Path:
    from bench.host.paths import results_dir

    return results_dir()


# `run` and `model` share them
MODEL_OPTIONS = ("model_path", "model_code", "requirements", "model_size_bytes", "model_kind",
                 "seed")
TRIAL = TrialSettings()  # the trial's own defaults, which the run's options start from


@dataclass(frozen=True)
class RunConfig:
    """A run's options; each field is its command-line option too (bench/options.py)."""

    strategies: tuple[str, ...] = option(
        DEFAULT_STRATEGIES, "--strategies", f"comma-separated, from: {', '.join(REGISTRY)} "
        "(default: all; those that cannot take your model are skipped, with the reason)",
        parse=comma_list, fills=_named, show=lambda _: "all")
    model_path: Path | None = option(  # None: a synthetic model of model_size_bytes
        None, "--model", "your own .joblib model (any scikit-learn regressor or pipeline); "
        "overrides --model-size", parse=Path, metavar="PATH")
    model_code: Path | None = option(
        None, "--model-code", "the folder of your own modules the --model imports (e.g. a "
        "transformer class of your project): on the host's import path and in every image, "
        "read-only, on PYTHONPATH", parse=Path, metavar="DIR")
    requirements: Path | None = option(
        None, "--requirements", "your project's requirements (or lock exported as one): the "
        "versions of the libraries your --model is served with where it names them (by "
        "default the scikit-learn it was saved with, and the newest of what it needs that "
        "installs with it)", parse=Path, metavar="FILE")
    model_size_bytes: int = option(
        64_000_000, "--model-size", "size of the synthetic FIFA RandomForest, e.g. 64MB, 1GB, "
        "5.45GB (decimal units; default {default})", parse=parse_size, show=_show_size,
        metavar="SIZE")
    model_kind: str = option(
        MODEL_KINDS[0], "--model-kind", "the synthetic model: a forest of the market value "
        "(forest-regressor, the seed's) or of its quartile band (forest-classifier), or a "
        "gradient-boosting regressor of the value (hgb: scikit-learn's "
        "HistGradientBoosting; lightgbm; xgboost: trained with the library, served by the "
        "strategies whose image or format holds it); default {default}", choices=MODEL_KINDS)
    seed: int = option(0, "--seed", "seed of the synthetic data/model (default {default})",
                       parse=int)
    trials: int = option(3, "--trials", "container starts per strategy (default {default}); "
                         "builds run once", parse=positive_int)
    order: Order = option(  # bench.run.plan: rounds shuffled per round, or one after another
        "interleaved", "--order", "interleaved (default): builds first, then round r runs "
        "trial r of every strategy in an order shuffled per round, so a machine that drifts "
        "slows every strategy alike; sequential: every trial of one strategy, then the next "
        "(less disk and memory at once, but strategy is confounded with time)", choices=ORDERS)
    order_seed: int | None = option(  # None: drawn at random, recorded in run.json
        None, "--order-seed", "seed of the per-round shuffle (default: random; recorded in "
        "run.json, so a run's order can be repeated)", parse=int, metavar="N")
    warmup: bool = option(
        True, "--no-warmup", "count each strategy's first start after its build as a trial; "
        "by default it is a warm-up, stored with warmup=true and left out of every statistic",
        switch=True)
    build_trials: int = option(
        1, "--build-trials", "cold + warm builds per strategy and builder (default "
        "{default}); use 3 to publish build-time claims: verdicts need the spread of repeated "
        "builds", parse=positive_int)
    replicas: int = option(
        1, "--replicas", "containers of each strategy started at the same moment per start "
        "(default {default}); adds all_ready_s and summed memory. Registry replicas share one "
        "cache volume: one downloads, the others wait and reuse it", parse=positive_int)
    shared_cache: bool = option(
        TRIAL.shared_cache, "--replica-cache", "registry replicas: one cache volume for all "
        "(one downloads, the others wait on its lock) or one each (N downloads at once: the "
        "thundering herd). Default {default}", choices=("shared", "private"),
        parse=lambda text: text == "shared",
        show=lambda shared: "shared" if shared else "private")
    orchestrator: Orchestrator = option(
        "engine", "--orchestrator", "engine: plain containers; swarm: each start is a swarm "
        "service of --replicas tasks (a single-node swarm is created if none exists and left "
        "at the end; the run's network is then an attachable overlay that the tasks and the "
        "S3 server join); modelcar needs `engine`", choices=("engine", "swarm"))
    workers: int = option(
        TRIAL.workers, "--workers", "server worker processes per container (default "
        "{default}); adds per-worker PSS/USS samples", parse=positive_int)
    worker_mode: WorkerMode = option(
        TRIAL.worker_mode, "--worker-mode", "copy: uvicorn --workers, each worker loads its "
        "own model; preload: gunicorn --preload loads once, gc.freeze(), then forks (default "
        "{default})", choices=("copy", "preload"))
    # The API's default is the legacy builder (the same on every machine); the command
    # line's is auto, which --help says.
    builders: tuple[Builder, ...] = option(
        ("legacy",), "--builder", "image builder: legacy (docker-py), buildkit (docker CLI), "
        "both, or auto = both where BuildKit is available, else legacy (the command line's "
        "default)", choices=("legacy", "buildkit", "both", "auto"), parse=builders_of,
        cli_default="auto")
    drop_caches: bool = option(
        False, "--drop-caches", "drop the page cache before every container start (root "
        "only): cold-cache trials", switch=True)
    # Warm starts short of free memory for their load: drop the page cache first (as root);
    # False: the page cache as the last start left it (bench.host.machine_state).
    cache_reset: bool = option(
        True, "--no-cache-reset", "warm starts find the page cache as the previous start left "
        "it; by default (as root), when free memory is short of twice the model plus 2 GiB, "
        "it is dropped before the start, so that the load does not reclaim other files' pages "
        "as it allocates; the start's model files are read back either way", switch=True)
    keep: bool = option(False, "--keep", "keep the run's images (labelled) for inspection "
                        "until `clean`", switch=True)
    latency_requests: int = option(
        TRIAL.latency_requests, "--requests", "single-row /predict requests per trial for "
        "latency (default {default})", parse=positive_int)
    start_timeout_s: float = option(
        TRIAL.start_timeout_s, "--start-timeout", "give up on a container that is not serving "
        "after this (default {default})", parse=float, show=lambda s: f"{s:g}",
        metavar="SECONDS")
    memory_limit_bytes: int | None = option(
        TRIAL.memory_limit_bytes, "--memory-limit", "container memory limit, e.g. 2GB "
        "(default: none)", parse=parse_size, metavar="SIZE")
    cpus: float | None = option(TRIAL.cpus, "--cpus", "CPU limit per container, e.g. 0.5 "
                                "(default: none)", parse=float, metavar="N")
    rebuild_runtime: bool = option(False, "--rebuild-runtime", "rebuild the shared runtime "
                                   "image instead of reusing the cached one", switch=True)
    skip_disk_check: bool = option(
        False, "--skip-disk-check", "start even when the free disk looks too small for the "
        "planned run (the estimate is generous: images, copies, S3 data, caches)", switch=True)
    load_duration_s: float = option(  # --load: seconds of sustained load after each start
        TRIAL.load_duration_s, "--load", "after each start is measured, a sustained "
        "closed-loop load of /predict for this long, e.g. 60s or 2m (every tenth request 100 "
        "rows): throughput, p50/p95/p99, errors, RAM growth (default: none)",
        parse=parse_duration, metavar="DURATION")
    load_concurrency: int = option(
        TRIAL.load_concurrency, "--concurrency", "clients of the --load, each sending its next "
        "request when the last one answered (default {default})", parse=positive_int,
        metavar="C")
    find_memory_limit: bool = option(
        False, "--find-memory-limit", "after the trials, bisect the smallest --memory limit "
        "(no swap) under which each strategy still serves a correct prediction", switch=True)
    memory_search_starts: int = option(
        7, "--memory-search-starts", "container starts the memory-limit search may use "
        "(default {default})", parse=positive_int, metavar="N")
    results_root: Path = option(
        factory=_default_results, flag="--results", help="where run folders go (default: "
        "results/, or $MLBENCH_RESULTS)", parse=Path, metavar="DIR")
    options: StrategyOptions = field(default_factory=StrategyOptions)
    # True when --strategies named them: one that cannot take the model is then a usage
    # error; the default set skips it instead.
    strategies_named: bool = False
    fresh_node: bool = option(  # every start on a node without the strategy's images or files
        False, "--fresh-node", "every start on a node that holds nothing of the strategy: its "
        "images are removed and pulled by digest from an OCI registry, the model files of "
        "bind-mount strategies copied from the model store (an S3 server); model_ready_s then "
        "counts from there (the shared runtime image stays on the node)", switch=True)
    oci_registry: str | None = option(  # HOST:PORT of the user's registry (None: start one)
        None, "--oci-registry", "--fresh-node: push to and pull from this registry (the "
        "engine must trust it) instead of starting distribution (Debian's docker-registry) "
        "for the run", metavar="HOST:PORT")
    rollout: bool = option(  # after the trials, roll each strategy out to a new model version
        False, "--rollout", "after its trials, roll each strategy's running service out to a "
        "new model version and measure rollout_s and rollout_bytes until it answers with the "
        "new predictions (rebuild, compress, upload, push, pull, copy, restart: what the "
        "strategy needs). The new version: the synthetic model of seed+1, or NEW.joblib with "
        "--model", nargs="?", const="", fills=_rollout, metavar="NEW.joblib")
    rollout_model_path: Path | None = None  # the new version (None: synthetic, seed + 1)
    nodes: tuple[int, ...] = option(  # (): the harness's engine is the one node
        (), "--nodes", "--fresh-node on N nodes at once, each a Docker engine of its own (a "
        "dockerd in a network namespace of the run's making, joined by a veth to a bridge the "
        "run creates, its link shaped with --link-rate; all removed at the end): every start "
        "pulls and fetches on each node, measured per node, and all_ready_s is the last "
        "node's first correct prediction. A list (1,2,3) starts each trial on 1, then 2, then "
        "3 nodes: the report checks its scale-out projection against them (root; default: "
        "off)", parse=lambda text: tuple(positive_int(n) for n in comma_list(text)),
        metavar="N[,N...]",
        show=lambda counts: ",".join(map(str, counts)) if counts else "off")

    def __post_init__(self) -> None:
        """Usage errors, found before anything is built."""
        from bench.engine import buildkit_available
        from strategies import check_names

        check_names(list(self.strategies))
        if self.trials < 1 or self.build_trials < 1:
            raise UsageError("--trials and --build-trials must be at least 1")
        if self.order not in ORDERS:
            raise UsageError(f"unknown --order {self.order!r}: use {' or '.join(ORDERS)}")
        if self.replicas < 1:
            raise UsageError("--replicas must be at least 1")
        if self.orchestrator not in ("engine", "swarm"):
            raise UsageError(f"unknown orchestrator {self.orchestrator!r}: use engine or swarm")
        if self.workers < 1 or self.worker_mode not in ("copy", "preload"):
            raise UsageError("--workers must be at least 1 and --worker-mode copy or preload")
        if not self.builders or not set(self.builders) <= set(BUILDERS):
            raise UsageError(f"unknown builder in {self.builders}: use legacy or buildkit")
        if self.load_duration_s < 0 or self.load_concurrency < 1:
            raise UsageError("--load must be a duration >= 0 (e.g. 60s) and --concurrency at "
                             "least 1")
        if self.cpus is not None and not 0 < self.cpus <= 1024:
            raise UsageError(f"--cpus {self.cpus} is out of range: pass a positive number such "
                             "as 0.5 or 2")
        if self.model_path is not None:
            from bench.model.source import check_model_path

            if self.model_kind != MODEL_KINDS[0]:
                raise UsageError("--model-kind makes a synthetic model; with --model your own "
                                 "model is used as it is: leave one of them out")
            check_model_path(self.model_path)
            if self.model_code is not None:
                from bench.model.model_code import check_model_code

                check_model_code(self.model_code)
            if self.requirements is not None:
                from bench.model.serving_env import read_user_requirements

                read_user_requirements(self.requirements)
        elif self.model_code is not None:
            raise UsageError("--model-code is the code of your own --model: pass --model "
                             "PATH too, or leave --model-code out")
        elif self.requirements is not None:
            raise UsageError("--requirements pins the environment of your own --model (a "
                             "synthetic model is served with the runtime's own pins): pass "
                             "--model PATH too, or leave --requirements out")
        elif self.model_kind in BOOSTING_KINDS:
            missing = missing_library(self.model_kind)
            if missing is not None:
                raise UsageError(f"--model-kind {self.model_kind} trains with {missing}, which "
                                 f"this host cannot import: pip install {missing}"
                                 + ("-cpu" if missing == "xgboost" else ""))
        if self.options.link_rate is not None:
            from bench.servers.link import check_tools

            check_tools()
        if self.oci_registry is not None and not (self.fresh_node or self.rollout):
            raise UsageError("--oci-registry is where --fresh-node and --rollout push and pull: "
                             "add one of them or leave --oci-registry out")
        if self.rollout:
            self._check_rollout()
        if self.fresh_node or self.rollout:
            self._check_node_servers()
        if self.nodes:
            self._check_nodes()
        _check_results_folder(self.results_root)
        if "buildkit" in self.builders and not buildkit_available():
            raise UsageError("--builder buildkit needs `docker buildx` or a docker client older "
                             "than 23 (DOCKER_BUILDKIT=1); install docker-buildx or use legacy")
        if self.drop_caches and not page_cache.can_drop():
            raise UsageError("--drop-caches needs root (it writes /proc/sys/vm/drop_caches); "
                             "run as root or leave it out")

    def _check_rollout(self) -> None:
        from bench.model.source import check_model_path

        if self.rollout_model_path is not None:
            check_model_path(self.rollout_model_path)
        elif self.model_path is not None:
            raise UsageError("--rollout with --model needs the new version of your model: "
                             "--rollout NEW.joblib")

    def _check_node_servers(self) -> None:
        """--fresh-node and --rollout: a node fetches from an OCI registry and a model store."""
        if self.orchestrator == "swarm":
            raise UsageError("--fresh-node and --rollout provision the engine's own node: "
                             "leave out --orchestrator swarm")
        if self.oci_registry is None:
            from bench.servers.oci_registry import registry_binary

            try:
                registry_binary()
            except Exception as error:
                raise UsageError(f"--fresh-node/--rollout: {error}") from None
        if self.options.s3_endpoint is None:
            from bench.servers.s3 import rclone_binary

            try:
                rclone_binary()  # the model store a fresh node copies model files from
            except Exception as error:
                raise UsageError(f"--fresh-node/--rollout: {error}") from None

    def _check_nodes(self) -> None:
        """--nodes N: separate engines that fetch from the run's own servers."""
        from bench.host.node_engines import MAX_NODES, check_can_make_nodes

        if not all(1 <= n <= MAX_NODES for n in self.nodes):
            raise UsageError(f"--nodes {','.join(map(str, self.nodes))}: pass counts of 1 to "
                             f"{MAX_NODES} (each node is a dockerd on this host)")
        if not self.fresh_node:
            raise UsageError("--nodes N starts every strategy on N fresh nodes: add "
                             "--fresh-node")
        if self.replicas > 1:
            raise UsageError("--nodes N runs one replica a node: leave out --replicas")
        if self.oci_registry is not None or self.options.s3_endpoint is not None:
            raise UsageError("--nodes reaches the run's own registry and store on its bridge "
                             "network: leave out --oci-registry and --s3-endpoint")
        if os.geteuid() != 0:
            raise UsageError("--nodes starts engines in network namespaces: run as root")
        check_can_make_nodes()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["model_path"] = None if self.model_path is None else str(self.model_path)
        data["results_root"] = str(self.results_root)
        data["rollout_model_path"] = (None if self.rollout_model_path is None
                                      else str(self.rollout_model_path))
        return data


def _check_results_folder(root: Path) -> None:
    """Create --results (and its parents) now, or say in one line why it cannot be used."""
    if root.exists() and not root.is_dir():
        raise UsageError(f"--results {root} is a file, not a folder: pass a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"--results {root} cannot be created ({error.strerror}): pass a "
                         "folder you can write to") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise UsageError(f"--results {root} is not writable: pass a folder you can write to")
