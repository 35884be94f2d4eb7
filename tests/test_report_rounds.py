"""The report of an interleaved run (schema 4): the A/A table it opens with, the canary,
the drift chart, warm-ups stored but never summarised."""

from __future__ import annotations

import datetime
from pathlib import Path

from bench.report import render_report
from bench.report.view import RunView
from bench.results.metrics import MACHINE_ROW, Sample
from bench.results.store import ResultsStore, RunRecord, StoredRun, StrategyOutcome, load_run
from tests.stored_runs import metadata

KEY = "code image + bind-mounted joblib"
T0 = datetime.datetime(2026, 12, 1, 9, 0, tzinfo=datetime.UTC)


def write_interleaved(root: Path) -> Path:
    """Five rounds of volume, volume-aa, dockerignore (identical work) and gzip9 (slower);
    round 3 runs on a machine the canary finds 2x slower; a 60 s warm-up of volume."""
    plan = {"order": "interleaved", "seed": 42, "warmup": True,
            "rounds": {str(r): ["volume", "volume-aa", "dockerignore", "gzip9"]
                       for r in range(6)}}
    store = ResultsStore.create(root, "run-i", metadata(plan=plan))
    samples: list[Sample] = []
    base = {"volume": 2.00, "volume-aa": 2.02, "dockerignore": 1.99, "gzip9": 3.0}
    for name in base:
        outcome = StrategyOutcome(name, "ok", start_key=None if name == "gzip9" else KEY)
        if name == "volume-aa":
            outcome.notes["aa_of"] = "volume"
        store.record.strategies[name] = outcome
    minute = 0
    for round_ in range(0, 6):
        canary = 0.080 if round_ == 3 else 0.040
        if round_:
            samples.append(Sample(MACHINE_ROW, "-", "-", round_, "canary_cpu_s", canary,
                                  round_, (T0 + datetime.timedelta(minutes=minute)).isoformat()))
        for name, seconds in base.items():
            minute += 1
            slow = 2.0 if round_ == 3 else 1.0
            value = 60.0 if round_ == 0 else seconds * slow * (1 + 0.01 * round_)
            stamp = (T0 + datetime.timedelta(minutes=minute)).isoformat()
            for metric, v in (("model_ready_s", value), ("load_s", value / 2)):
                samples.append(Sample(name, "-", "-", round_, metric, v, round_, stamp,
                                      warmup=round_ == 0))
    store.add(samples)
    store.record.status = "complete"
    store.flush()
    return store.folder


def test_warm_ups_are_stored_but_never_summarised(tmp_path: Path) -> None:
    folder = write_interleaved(tmp_path)
    stored = load_run(folder)
    assert any(s.warmup and s.value == 60.0 for s in stored.samples)
    view = RunView.of(stored)
    summary = view.get("volume", "model_ready_s")
    assert summary is not None and summary.n == 5 and summary.maximum < 60


def test_the_report_opens_with_identical_work_and_shows_the_drift(tmp_path: Path) -> None:
    folder = write_interleaved(tmp_path)
    files = render_report(folder, formats=("svg",))
    report = files.report.read_text()
    aa_at = report.index("Noise: identical work")
    assert aa_at < report.index("Which strategy wins what")
    # volume 2.00-2.03 s vs dockerignore 1.99-2.02 s vs volume-aa: 1.02x apart.
    assert "Identical work differed by 1.02× in first correct prediction" in report
    assert "This run is noisy" not in report
    assert "drift" in files.charts and files.charts["drift"][0].stat().st_size > 1000
    # Round 3's canary took 2x the median: marked in the canary table and the tables' note.
    assert "| 3 ⚠ |" in report and "slow rounds (a canary above 1.5× its median): 3" in report
    assert "interleaved" in report and "seed 42" in report
    # gzip9 is 1.5x slower in every round: separated; the identical three are one tie.
    section = report[report.index("Which strategy wins what"):]
    winners = next(line for line in section.splitlines()
                   if line.startswith("| First correct prediction |"))
    leader, runner_up = winners.split(" | ")[1:3]
    assert "tie within noise" in leader and "gzip9" not in leader and "gzip9" in runner_up
    spanish = render_report(folder, lang="es", formats=("svg",)).report.read_text()
    assert "El mismo trabajo difirió 1,02×" in spanish


def test_start_up_unchanged_by_dockerignore_holds_on_identical_work(tmp_path: Path) -> None:
    """An A/A claim ("start-up ~40 s -> ~40 s with .dockerignore") must come out holds on
    identical work. Under the old min-max interval one outlying round (1.6x here, as a start
    right after another strategy's GB layer build loaded 2.8x slower) made it inconclusive;
    the rule needs ceil(2n/3) rounds, so one round decides nothing."""
    from bench.report.claims import evaluate, load_claims

    def with_outlier(samples: list[Sample]) -> list[Sample]:
        return [Sample(s.strategy, s.builder, s.condition, s.trial, s.metric,
                       s.value * (1.6 if (s.strategy, s.round) == ("dockerignore", 2) else 1),
                       s.round, s.started_at, s.warmup) for s in samples]

    folder = write_interleaved(tmp_path)
    stored = load_run(folder)
    edited = ResultsStore(folder, stored_record(stored, with_outlier(stored.samples)))
    edited.flush()
    seed_bytes, claims = load_claims()
    _factor, results = evaluate(RunView.of(load_run(folder)), claims, seed_bytes)
    unchanged = next(r for r in results if r.claim["id"] == "startup_unchanged")
    (evaluation,) = unchanged.evaluations
    assert evaluation.pairs == 5 and evaluation.high > 1.25  # the outlier is in the interval
    assert unchanged.verdict == "holds"


def stored_record(stored: StoredRun, samples: list[Sample]) -> RunRecord:
    document = stored.document
    outcomes = {name: StrategyOutcome(name, o["status"], start_key=o.get("start_key"),
                                      notes=o.get("notes", {}))
                for name, o in document["strategies"].items()}
    return RunRecord(document["run_id"], document["metadata"], document["status"], outcomes,
                     samples)
