import json
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.metrics import Sample
from bench.results import SCHEMA_VERSION, ResultsStore, load_run
from bench.summary import summarize


def test_store_round_trips_every_raw_sample(tmp_path: Path) -> None:
    store = ResultsStore.create(tmp_path, "run-1", {"machine": {"cpu": "x"}})
    samples = [Sample("baked", "-", "-", t, "ready_s", 0.5 + t) for t in (1, 2, 3)]
    store.add(samples)
    store.flush()
    loaded = load_run(tmp_path / "run-1")
    assert loaded.samples == samples
    assert loaded.document["schema_version"] == SCHEMA_VERSION
    assert not [p for p in (tmp_path / "run-1").iterdir() if p.name.startswith(".")]


def test_an_unknown_schema_is_refused_not_misread(tmp_path: Path) -> None:
    store = ResultsStore.create(tmp_path, "old", {})
    document = json.loads((store.folder / "run.json").read_text())
    document["schema_version"] = 99
    (store.folder / "run.json").write_text(json.dumps(document))
    with pytest.raises(BenchError, match="schema 99"):
        load_run(store.folder)


def test_undefined_metric_is_rejected() -> None:
    with pytest.raises(ValueError, match="undefined metric"):
        Sample("baked", "-", "-", 1, "speediness", 1.0)


def test_summary_is_median_min_max() -> None:
    samples = [Sample("s", "-", "-", t, "ready_s", v) for t, v in enumerate((3.0, 1.0, 2.0, 10.0))]
    (summary,) = summarize(samples)
    assert (summary.median, summary.minimum, summary.maximum, summary.n) == (2.5, 1.0, 10.0, 4)
