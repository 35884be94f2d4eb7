"""Synthetic stored runs for tests of what reads results (report, compare): written with the
real ResultsStore, so they are exactly what `bench run` leaves on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.results.metrics import Sample
from bench.results.store import ResultsStore, StrategyOutcome

MODEL_BYTES = 100_000_000
BUILDERS = ("legacy", "buildkit")


def metadata(**overrides: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "started_at": "2026-11-26T00:00:00+00:00",
        "machine": {"cpu": "Test CPU", "logical_cpus": 2, "ram_bytes": 8e9, "hostname": "h",
                    "kernel": "6", "disk_total_bytes": 1e11, "disk_free_bytes": 5e10},
        "engine": {"server_version": "20.10", "api_version": "1.41", "storage_driver": "overlay2",
                   "cgroup_version": "1", "operating_system": "Debian"},
        "builders": list(BUILDERS),
        "base_image": {"ref": "base:1", "origin": "debootstrap"},
        "runtime_image": {"ref": "rt:1", "image_bytes": 600e6},
        "model": {"bytes": MODEL_BYTES, "kind": "synthetic", "n_features": 110,
                  "sha256": "ab" * 32, "details": {"n_estimators": 40}},
        "page_cache": "warm (not dropped)",
        "git": {"commit": "0" * 40, "dirty": False},
        "config": {"trials": 3},
    }
    meta.update(overrides)
    return meta


def write_run(root: Path, run_id: str, *, slow: float = 1.0, meta: dict[str, Any] | None = None,
              trials: tuple[float, ...] = (1.0, 1.02, 0.98),
              edit: Callable[[list[Sample]], list[Sample]] | None = None) -> Path:
    """Three strategies shaped like a real run; `slow` multiplies every start-up time; `edit`
    rewrites the samples before they are stored."""
    store = ResultsStore.create(root, run_id, meta or metadata())
    samples: list[Sample] = []
    context = {"volume": {"legacy": MODEL_BYTES + 2e6, "buildkit": 18e3},
               "dockerignore": {"legacy": 50e3, "buildkit": 18e3},
               "compressed-gzip9": {"legacy": 28e6, "buildkit": 18e3}}
    load = {"volume": 0.6, "dockerignore": 0.6, "compressed-gzip9": 0.7}
    for strategy in ("volume", "dockerignore", "compressed-gzip9"):
        outcome = StrategyOutcome(strategy, "ok")
        file_bytes = 28e6 if strategy.startswith("compressed") else MODEL_BYTES
        samples.append(Sample(strategy, "-", "-", 0, "model_file_bytes", file_bytes))
        for builder in BUILDERS:
            big = context[strategy][builder] > 1e6
            for metric, value in (("context_bytes", context[strategy][builder]),
                                  ("build_cold_s", 2.0 if big else 0.3),
                                  ("build_warm_s", 1.8 if big else 0.2),
                                  ("image_bytes", 600e6 + 18e3), ("image_added_bytes", 18e3)):
                samples.append(Sample(strategy, builder, "-", 0, metric, value))
        for trial, jitter in enumerate(trials, start=1):
            ready = 0.7 * jitter * slow
            model_ready = ready + load[strategy] * jitter * slow
            for metric, value in (("ready_s", ready), ("model_ready_s", model_ready),
                                  ("first_predict_s", 0.02), ("load_s", load[strategy] * jitter),
                                  ("predict_p50_ms", 5.0), ("server_pss_bytes", 300e6),
                                  ("server_rss_peak_bytes", 310e6),
                                  ("mem_working_set_bytes", 280e6), ("disk_bytes", file_bytes)):
                samples.append(Sample(strategy, "-", "-", trial, metric, value))
            for metric, value in (("at_process_start_s", ready * 0.9),
                                  ("at_load_start_s", ready * 0.95),
                                  ("at_load_end_s", model_ready - 0.01)):
                samples.append(Sample(strategy, "-", "-", trial, metric, value))
        store.record.strategies[strategy] = outcome
    # The in-process reference row the runner stores beside the strategies.
    samples += [Sample("scikit-learn", "-", "in-process", 0, "inproc_predict_p50_ms", 2.5),
                Sample("scikit-learn", "-", "in-process", 0, "inproc_predict_100_p50_ms", 3.2)]
    store.add(edit(samples) if edit else samples)
    store.record.status = "complete"
    store.flush()
    return store.folder
