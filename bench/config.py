"""The configuration of one benchmark run, as parsed from the command line."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from strategies.base import StrategyOptions


@dataclass(frozen=True)
class RunConfig:
    strategies: tuple[str, ...]
    model_path: Path | None  # None: a synthetic model of model_size_bytes
    model_size_bytes: int
    seed: int = 0
    trials: int = 3
    build_trials: int = 1  # cold + warm builds per builder (3 to publish build claims)
    replicas: int = 1  # containers of a strategy started at the same moment per start
    shared_cache: bool = True  # registry replicas share one cache volume (else one each)
    orchestrator: str = "engine"  # engine: containers; swarm: a swarm service of N tasks
    workers: int = 1  # server processes per container
    worker_mode: str = "copy"  # copy: each loads the model; preload: load once, then fork
    builders: tuple[str, ...] = ("legacy",)
    drop_caches: bool = False
    keep: bool = False
    latency_requests: int = 50
    start_timeout_s: float = 600.0
    memory_limit_bytes: int | None = None
    cpus: float | None = None
    rebuild_runtime: bool = False
    skip_disk_check: bool = False
    find_memory_limit: bool = False
    memory_search_starts: int = 7
    results_root: Path = Path("results")
    options: StrategyOptions = field(default_factory=StrategyOptions)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["model_path"] = None if self.model_path is None else str(self.model_path)
        data["results_root"] = str(self.results_root)
        return data
