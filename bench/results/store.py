"""The results store: one folder per run, rewritten atomically after every strategy.

``run.json`` holds the metadata (schema version, machine, engine, model, git, config) and each
strategy's status; ``samples.csv`` holds every raw sample in long format. An interrupted run
keeps everything measured up to its last finished strategy and is marked incomplete.

Schema history:
  1: first version (run.json + samples.csv with run_id, strategy, builder, condition, trial,
     metric, value, unit).
  2: strategies[*].not_measured (metric, condition, trial, reason); metrics[*].kind; build
     samples carry their repetition (1..--build-trials) as trial, not 0; readiness taken from
     the service's own stamps (a version-1 run's start-up figures include the old probe's
     slowdown). Version 1 stays readable: every addition is optional.
  3: the start-up timeline is stored as samples (at_<stamp>_s), no longer in run.json notes.
  4: samples.csv gains round (the plan's round, 0 outside rounds), started_at (UTC wall clock
     of the container start) and warmup (a strategy's warm-up start: stored, never
     summarised); run.json gains metadata.plan (order, seed, steps) and each strategy's
     start_key; a `machine` row holds the canary of every round. Schemas 1-3 load with
     round = trial for starts, no wall clock and no warm-up.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError
from bench.host.fsutil import write_atomic
from bench.results.metrics import METRICS, SERVICE_STAMPS, Sample, timeline_metric

if TYPE_CHECKING:
    import pandas as pd

SCHEMA_VERSION = 4
READABLE_SCHEMAS = (1, 2, 3, 4)
SAMPLE_COLUMNS = ("run_id", "strategy", "builder", "condition", "trial", "metric", "value", "unit",
                  "round", "started_at", "warmup")


@dataclass
class StrategyOutcome:
    name: str
    status: str = "pending"  # pending | ok | partial | failed
    failures: list[dict[str, str]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    # Metrics a trial could not measure, with the reason: never silently absent.
    not_measured: list[dict[str, Any]] = field(default_factory=list)
    # Strategies with the same key do the same work at start (identical-work group, the
    # run's A/A control); None: a start of its own.
    start_key: str | None = None


@dataclass
class RunRecord:
    run_id: str
    metadata: dict[str, Any]
    status: str = "running"  # running | complete | incomplete | interrupted
    strategies: dict[str, StrategyOutcome] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)


class ResultsStore:
    def __init__(self, folder: Path, record: RunRecord) -> None:
        self.folder = folder
        self.record = record

    @classmethod
    def create(cls, root: Path, run_id: str, metadata: dict[str, Any]) -> ResultsStore:
        folder = root / run_id
        folder.mkdir(parents=True, exist_ok=False)
        store = cls(folder, RunRecord(run_id, metadata))
        store.flush()
        return store

    def add(self, samples: list[Sample]) -> None:
        self.record.samples.extend(samples)

    def flush(self) -> None:
        """Write run.json and samples.csv; each file is replaced whole, never half-written."""
        record = self.record
        document = {
            "schema_version": SCHEMA_VERSION,
            "run_id": record.run_id,
            "status": record.status,
            "metadata": record.metadata,
            "strategies": {name: asdict(outcome) for name, outcome in record.strategies.items()},
            "metrics": {name: asdict(metric) for name, metric in METRICS.items()},
        }
        write_atomic(self.folder / "samples.csv", samples_to_csv(record.run_id, record.samples))
        write_atomic(self.folder / "run.json", json.dumps(document, indent=2, default=str) + "\n")


def samples_to_csv(run_id: str, samples: list[Sample]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SAMPLE_COLUMNS)
    for s in samples:
        writer.writerow((run_id, s.strategy, s.builder, s.condition, s.trial, s.metric,
                         repr(float(s.value)), s.unit, s.round, s.started_at,
                         "true" if s.warmup else ""))
    return buffer.getvalue()


@dataclass(frozen=True)
class StoredRun:
    folder: Path
    document: dict[str, Any]
    samples: list[Sample]


def load_run(folder: Path) -> StoredRun:
    """Read a stored run; refuse (never misread) a schema this version does not know."""
    meta_path = folder / "run.json"
    if not meta_path.exists():
        raise BenchError(f"{folder} is not a results folder (no run.json); "
                         "pass a folder written by `python -m bench run`")
    document = json.loads(meta_path.read_text())
    version = document.get("schema_version")
    if version not in READABLE_SCHEMAS:
        raise BenchError(f"{folder} has results schema {version}; this mlbench reads schemas "
                         f"{', '.join(map(str, READABLE_SCHEMAS))}: use the mlbench version "
                         "that wrote it")
    samples: list[Sample] = []
    with (folder / "samples.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            trial = int(row["trial"])
            # Before schema 4 every strategy's trial t ran in its own block; t is the only
            # place in time a sample has (round = trial, the block order unknown).
            round_ = int(row["round"]) if row.get("round") else trial
            samples.append(Sample(row["strategy"], row["builder"], row["condition"], trial,
                                  row["metric"], float(row["value"]), round_,
                                  row.get("started_at") or "",
                                  row.get("warmup") == "true"))
    if version < 3:
        samples += _timeline_samples(document)
    return StoredRun(folder, document, samples)


def _timeline_samples(document: dict[str, Any]) -> list[Sample]:
    """Schemas 1-2 kept the start-up timeline in each strategy's notes: read it as the
    samples schema 3 stores, so the report has one source for every run."""
    samples = []
    for name, outcome in document.get("strategies", {}).items():
        for entry in outcome.get("notes", {}).get("timelines", []):
            for stamp, value in entry["phases_s"].items():
                if stamp in SERVICE_STAMPS and stamp != "server_up":
                    samples.append(Sample(name, "-", entry["condition"], int(entry["trial"]),
                                          timeline_metric(stamp), float(value)))
    return samples


# -- results as pandas DataFrames: the API for notebooks, and the one summary code path ------

SUMMARY_COLUMNS = ("strategy", "builder", "condition", "metric", "unit", "n", "median", "min",
                   "max", "q1", "q3")
_GROUP = ["strategy", "builder", "condition", "metric"]
_CATEGORICAL = ("strategy", "builder", "condition", "metric", "unit", "kind")


def samples_frame(run_id: str, samples: Iterable[Sample]) -> pd.DataFrame:
    """The tidy long table of raw samples: one row per sample, typed columns, categorical
    labels (in order of first appearance)."""
    import pandas as pd

    rows = [(run_id, s.strategy, s.builder, s.condition, s.trial, s.metric, float(s.value),
             s.unit, METRICS[s.metric].kind, s.round, s.started_at, s.warmup) for s in samples]
    frame = pd.DataFrame(rows, columns=["run_id", "strategy", "builder", "condition", "trial",
                                        "metric", "value", "unit", "kind", "round",
                                        "started_at", "warmup"])
    frame = frame.astype({"trial": "int64", "value": "float64", "round": "int64",
                          "warmup": "bool"})
    for column in _CATEGORICAL:
        frame[column] = pd.Categorical(frame[column],
                                       categories=list(dict.fromkeys(frame[column])))
    return frame


def _stored(run: Path | str | StoredRun) -> StoredRun:
    return run if isinstance(run, StoredRun) else load_run(Path(run))


def load_samples(run: Path | str | StoredRun) -> pd.DataFrame:
    """Every raw sample of a stored run as a DataFrame (see samples_frame)."""
    stored = _stored(run)
    return samples_frame(str(stored.document.get("run_id", stored.folder.name)), stored.samples)


def load_runs(runs: Iterable[Path | str | StoredRun]) -> pd.DataFrame:
    """The raw samples of several runs in one DataFrame (run_id tells them apart)."""
    import pandas as pd

    frames = [load_samples(run) for run in runs]
    if not frames:
        raise BenchError("load_runs needs at least one run folder")
    frame = pd.concat(frames, ignore_index=True)
    for column in _CATEGORICAL:
        frame[column] = frame[column].astype("category")
    return frame


def summarise_frame(samples: pd.DataFrame) -> pd.DataFrame:
    """Median, min, max, quartiles and n per strategy x builder x condition x metric, in
    order of first appearance: the one place a summary is computed. Warm-up starts are
    stored but never summarised."""
    import pandas as pd

    if "warmup" in samples:
        samples = samples[~samples["warmup"]]
    grouped = samples.groupby(_GROUP, observed=True, sort=False)["value"]
    summary = pd.DataFrame(grouped.agg(n="count", median="median", min="min", max="max",
                                       q1=lambda v: v.quantile(0.25),
                                       q3=lambda v: v.quantile(0.75))).reset_index()
    summary["unit"] = [METRICS[m].unit for m in summary["metric"]]
    return summary[list(SUMMARY_COLUMNS)]


def summarise(run: Path | str | StoredRun) -> pd.DataFrame:
    return summarise_frame(load_samples(run))
