import json
from pathlib import Path

import pytest

from bench.errors import BenchError
from bench.results.metrics import Sample
from bench.results.store import SCHEMA_VERSION, ResultsStore, load_run
from bench.results.summary import summarize


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


def test_results_as_dataframes(tmp_path: Path) -> None:
    import statistics

    from bench.results.store import load_runs, load_samples, summarise
    from tests.stored_runs import write_run

    folder = write_run(tmp_path, "run-a")
    samples = load_samples(folder)
    assert len(samples) == len(load_run(folder).samples)
    assert str(samples["strategy"].dtype) == "category"
    assert samples["value"].dtype == "float64" and samples["trial"].dtype == "int64"
    summary = summarise(folder)
    row = summary[(summary.strategy == "volume") & (summary.metric == "model_ready_s")].iloc[0]
    raw = samples[(samples.strategy == "volume") & (samples.metric == "model_ready_s")]["value"]
    assert row["n"] == 3 and row["median"] == statistics.median(raw)
    assert row["min"] == min(raw) and row["max"] == max(raw)
    both = load_runs([folder, write_run(tmp_path, "run-b", slow=2.0)])
    assert set(both["run_id"]) == {"run-a", "run-b"}


def test_a_cached_file_written_under_a_partial_name_is_readable_by_others(tmp_path: Path) -> None:
    """The service reads cached model files as another uid, through a read-only mount."""
    import stat

    from bench.host.fsutil import partial_path

    first, second = partial_path(tmp_path / "m.gz"), partial_path(tmp_path / "m.gz")
    assert first != second  # two writers at once never share one
    assert stat.S_IMODE(first.stat().st_mode) & stat.S_IROTH
