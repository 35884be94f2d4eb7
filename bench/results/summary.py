"""Summaries of raw samples: median with min and max per (strategy, builder, condition,
metric). Never a lone mean; the raw samples stay in samples.csv."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.results import units
from bench.results.metrics import METRICS, Sample


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
    q1: float
    q3: float


def summarize(samples: Iterable[Sample]) -> list[Summary]:
    """The summaries of raw samples, computed by bench.results.store.summarise_frame (pandas)."""
    from bench.results.store import samples_frame, summarise_frame

    samples = list(samples)
    if not samples:
        return []
    frame = summarise_frame(samples_frame("-", samples))
    rows: list[dict[str, Any]] = frame.to_dict("records")  # type: ignore[assignment]
    return [Summary(str(r["strategy"]), str(r["builder"]), str(r["condition"]),
                    str(r["metric"]), int(r["n"]), float(r["median"]), float(r["min"]),
                    float(r["max"]), float(r["q1"]), float(r["q3"])) for r in rows]


def format_value(metric: str, value: float) -> str:
    return units.format_quantity(METRICS[metric].unit, value)
