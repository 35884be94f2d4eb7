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
from bench.run.plan import ORDERS, Order
from strategies.base import StrategyOptions

Builder = Literal["legacy", "buildkit"]
BUILDERS: tuple[Builder, ...] = ("legacy", "buildkit")
WorkerMode = Literal["copy", "preload"]
Orchestrator = Literal["engine", "swarm"]


@dataclass(frozen=True)
class RunConfig:
    strategies: tuple[str, ...]
    model_path: Path | None  # None: a synthetic model of model_size_bytes
    model_size_bytes: int
    seed: int = 0
    trials: int = 3
    order: Order = "interleaved"  # bench.run.plan: rounds shuffled per round, or one strategy after another
    order_seed: int | None = None  # None: drawn at random, recorded in run.json
    warmup: bool = True  # one unrecorded-in-statistics start per strategy after its build
    build_trials: int = 1  # cold + warm builds per builder (3 to publish build claims)
    replicas: int = 1  # containers of a strategy started at the same moment per start
    shared_cache: bool = True  # registry replicas share one cache volume (else one each)
    orchestrator: Orchestrator = "engine"  # engine: containers; swarm: a service of N tasks
    workers: int = 1  # server processes per container
    worker_mode: WorkerMode = "copy"  # copy: each loads the model; preload: load, then fork
    builders: tuple[Builder, ...] = ("legacy",)
    drop_caches: bool = False
    # Warm starts short of free memory for their load: drop the page cache first (as root);
    # False: the page cache as the last start left it (bench.host.machine_state).
    cache_reset: bool = True
    keep: bool = False
    latency_requests: int = 50
    start_timeout_s: float = 600.0
    memory_limit_bytes: int | None = None
    cpus: float | None = None
    rebuild_runtime: bool = False
    skip_disk_check: bool = False
    load_duration_s: float = 0.0  # --load: seconds of sustained load after each start
    load_concurrency: int = 4  # --concurrency: closed-loop clients of the load
    find_memory_limit: bool = False
    memory_search_starts: int = 7
    results_root: Path = Path("results")
    options: StrategyOptions = field(default_factory=StrategyOptions)
    # True when --strategies named them: one that cannot take the model is then a usage
    # error; the default set skips it instead.
    strategies_named: bool = False
    fresh_node: bool = False  # every start on a node without the strategy's images or files
    oci_registry: str | None = None  # HOST:PORT of the user's registry (None: start one)
    rollout: bool = False  # after the trials, roll each strategy out to a new model version
    rollout_model_path: Path | None = None  # the new version (None: synthetic, seed + 1)

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

            check_model_path(self.model_path)
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
