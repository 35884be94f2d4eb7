"""The committed 1 GB runs (results/interleaving-1GB/): every default strategy, 5 trials,
interleaved and then sequential, back to back, twice (46613d0 and 8bdac60 on 2026-12-01;
c08a935 on 2026-12-07, rerun-c08a935/). The rule and the report are tested on what the
machine really did, not on hand-made numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.report import aa
from bench.report.drift import aa_markdown
from bench.report.labels import Labels
from bench.report.ranking import ranking
from bench.report.view import RunView
from bench.results.noise import judge
from bench.results.store import load_run

RUNS = Path(__file__).resolve().parents[1] / "results" / "interleaving-1GB"
IDENTICAL = ("dockerignore", "copyall", "copyall-dockerignore", "volume-aa")
TIMINGS = ("model_ready_s", "load_s", "ready_s")


RERUN = "rerun-c08a935/"


def _view(folder: str) -> RunView:
    stored = load_run(RUNS / folder)
    assert stored.document["metadata"]["plan"]["order"] == folder.removeprefix(RERUN)
    assert stored.document["metadata"]["git"]["dirty"] is False
    return RunView.of(stored)


@pytest.fixture(scope="module", params=["interleaved", "sequential", f"{RERUN}interleaved",
                                        f"{RERUN}sequential"])
def view(request: pytest.FixtureRequest) -> RunView:
    return _view(request.param)


def _told_apart_from_volume(view: RunView) -> list[tuple[str, str]]:
    """The identical-work members the rule tells apart from volume on a start-up timing or
    memory, each with the floor measured on the OTHER members (left out, the member tests
    the rule instead of setting its floor)."""
    found = []
    for metric in (*TIMINGS, "predict_p50_ms", "mem_anon_bytes"):
        volume = view.rounds[("volume", "-", "-", metric)]
        for name in IDENTICAL:
            floor = aa.floor(view, metric, leave_out=name)
            rounds = aa.round_floors(view, metric, leave_out=name)
            other = view.rounds[(name, "-", "-", metric)]
            assert len(set(volume) & set(other)) == 5
            if judge(metric, volume, other, floor, rounds).differs:
                found.append((name, metric))
    return found


@pytest.mark.parametrize("folder", ["interleaved", "sequential", f"{RERUN}interleaved"])
def test_identical_work_is_tied_with_volume_under_the_rule(folder: str) -> None:
    """The A/A group comes out tied."""
    assert _told_apart_from_volume(_view(folder)) == []


def test_a_sequential_run_tells_identical_work_apart_where_the_interleaved_did_not() -> None:
    """Strategy confounded with time, on the record: run back to back with the interleaved
    run above (tied), the sequential run found copyall's first correct prediction and load
    apart from volume's, the same start on the same file."""
    assert _told_apart_from_volume(_view(f"{RERUN}sequential")) == [
        ("copyall", "model_ready_s"), ("copyall", "load_s")]


def test_the_report_says_how_far_identical_work_was_and_flags_a_noisy_run(
        view: RunView) -> None:
    (start_up,) = [s for s in aa.spreads(view) if s.metric == "model_ready_s"]
    assert set(start_up.medians) == {"volume", *IDENTICAL}
    text = aa_markdown(view, Labels("en"))
    assert f"Identical work differed by {start_up.spread:.2f}×" in text
    assert ("This run is noisy" in text) == (start_up.spread > aa.NOISY_SPREAD)


def test_no_runner_up_beats_a_tie_member_in_a_real_run(view: RunView) -> None:
    for metric in ("model_ready_s", "load_s", "predict_p50_ms", "mem_anon_bytes"):
        found = ranking(view, metric, "-")
        assert found is not None and found.runner_up is not None
        assert all(found.runner_up.median >= e.median for e in found.tie), metric
