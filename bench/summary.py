"""Summaries of raw samples: median with min and max per (strategy, builder, condition,
metric). Never a lone mean; the raw samples stay in samples.csv."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from bench.metrics import METRICS, Sample
from bench.units import format_bytes, format_seconds


@dataclass(frozen=True)
class Summary:
    strategy: str
    builder: str
    condition: str
    metric: str
    n: int
    median: float
    minimum: float
    maximum: float


def summarize(samples: Iterable[Sample]) -> list[Summary]:
    groups: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    order: list[tuple[str, str, str, str]] = []
    for s in samples:
        key = (s.strategy, s.builder, s.condition, s.metric)
        if key not in groups:
            order.append(key)
        groups[key].append(s.value)
    return [Summary(*key, len(groups[key]), statistics.median(groups[key]), min(groups[key]),
                    max(groups[key])) for key in order]


def format_value(metric: str, value: float) -> str:
    unit = METRICS[metric].unit
    if unit == "bytes":
        return format_bytes(value)
    if unit == "s":
        return format_seconds(value)
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "ratio":
        return f"{value:.3f}"
    return f"{value:.1f} {unit}"


TABLE_METRICS = (
    "runtime_build_s", "context_bytes", "build_cold_s", "build_warm_s", "image_bytes",
    "image_added_bytes",
    "ready_s", "model_ready_s", "first_predict_s", "predict_p50_ms", "predict_p95_ms",
    "load_s", "mem_anon_bytes", "mem_page_cache_bytes", "mem_working_set_bytes",
    "server_rss_peak_bytes", "server_pss_bytes", "probe_requests",
    "disk_bytes", "model_file_bytes", "compression_ratio", "compress_s", "upload_s",
    "client_setup_s", "download_s", "download_mb_per_s", "reference_download_mb_per_s",
    "verify_s", "all_ready_s", "replicas_pss_total_bytes",
    "replicas_mem_total_bytes", "worker_pss_bytes", "worker_uss_bytes", "min_memory_limit_bytes",
)


def render_text_table(summaries: list[Summary]) -> str:
    """A plain-text table for the terminal: one row per (strategy, builder, condition)."""
    rows: dict[tuple[str, str, str], dict[str, Summary]] = defaultdict(dict)
    for s in summaries:
        rows[(s.strategy, s.builder, s.condition)][s.metric] = s
    lines = []
    for (strategy, builder, condition), metrics in rows.items():
        label = strategy + ("" if builder == "-" else f" [{builder}]")
        label += "" if condition == "-" else f" ({condition})"
        lines.append(label)
        for name in TABLE_METRICS:
            if name in metrics:
                s = metrics[name]
                spread = ("" if s.n == 1 else
                          f"  [{format_value(name, s.minimum)} .. {format_value(name, s.maximum)}"
                          f", n={s.n}]")
                lines.append(f"    {name:<24}{format_value(name, s.median):>12}{spread}")
    return "\n".join(lines)
