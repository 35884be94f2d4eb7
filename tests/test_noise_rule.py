"""The noise rule (bench.results.noise), the A/A floor (bench.report.aa), who wins
(bench.report.ranking) and compare, on hand-made rounds and on the committed seed run
(results/seed-5.45GB-sequential, the seed run measured strategy after strategy before
interleaving existed; results/seed-5.45GB is its interleaved re-measurement). Each test
here failed on the rule it replaced: "min-max ranges do not overlap"."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from bench.report import aa
from bench.report.document import winners_markdown
from bench.report.labels import Labels
from bench.report.ranking import Entry, rank, ranking
from bench.report.view import RunView
from bench.results.compare import compare, parse_rule
from bench.results.noise import judge
from bench.results.store import load_run

SEED_RUN = Path(__file__).resolve().parents[1] / "results" / "seed-5.45GB-sequential"
IDENTICAL = ("volume", "dockerignore", "copyall", "copyall-dockerignore")


def rounds(*values: float) -> dict[int, float]:
    return dict(enumerate(values, start=1))


def old_rule_separates(a: dict[int, float], b: dict[int, float]) -> bool:
    """The rule this one replaced, kept here to show what it said."""
    return max(a.values()) < min(b.values()) or max(b.values()) < min(a.values())


def test_a_single_outlying_round_neither_makes_nor_hides_a_difference() -> None:
    a = rounds(10.0, 10.2, 9.9, 10.1, 10.0)
    spike = rounds(10.1, 50.0, 10.0, 10.2, 9.9)  # one round 5x, the rest identical
    assert not judge("model_ready_s", a, spike).differs
    regression = rounds(20.0, 20.5, 10.0, 19.8, 20.2)  # 2x in 4 of 5 rounds, one untouched
    assert old_rule_separates(a, regression) is False  # the old rule let one round hide it
    assert judge("model_ready_s", a, regression).differs


def test_consistent_small_effects_need_to_pass_the_floor_and_the_minimum_effect() -> None:
    a = rounds(10.0, 10.0, 10.0)
    b = rounds(10.5, 10.5, 10.5)  # 5% in every round: below the 10% minimum effect
    assert not judge("model_ready_s", a, b).differs
    c = rounds(13.0, 13.0, 13.0)  # 30% in every round
    assert judge("model_ready_s", a, c).differs
    assert not judge("model_ready_s", a, c, floor=1.4).differs  # inside a 1.4x A/A floor


def test_with_fewer_than_three_rounds_only_several_fold_effects_decide() -> None:
    assert not judge("model_ready_s", rounds(10.0, 10.0), rounds(15.0, 15.0)).differs
    assert judge("model_ready_s", rounds(10.0, 10.0), rounds(25.0, 25.0)).differs
    # Exact sizes decide from one value.
    assert judge("context_bytes", {1: 100.0}, {1: 200.0}).differs
    assert not judge("context_bytes", {1: 100.0}, {1: 100.5}).differs


@pytest.fixture(scope="module")
def seed_view() -> RunView:
    return RunView.of(load_run(SEED_RUN))


def test_the_seed_run_shows_identical_work_apart_and_is_flagged_noisy(
        seed_view: RunView) -> None:
    """Finding 1-2: volume, dockerignore, copyall and copyall-dockerignore start the same
    way; in the sequential seed run their first correct predictions are 1.57x apart, and the
    old rule called them different. The A/A table must say so and flag the run."""
    (start_up,) = [s for s in aa.spreads(seed_view) if s.metric == "model_ready_s"]
    assert set(start_up.medians) == set(IDENTICAL)
    assert start_up.spread > aa.NOISY_SPREAD
    volume = seed_view.rounds[("volume", "-", "-", "model_ready_s")]
    fastest = seed_view.rounds[("copyall-dockerignore", "-", "-", "model_ready_s")]
    assert old_rule_separates(volume, fastest)
    floor = aa.floor(seed_view, "model_ready_s")
    assert not judge("model_ready_s", volume, fastest, floor).differs
    from bench.report.drift import aa_markdown

    assert "This run is noisy" in aa_markdown(seed_view, Labels("en"))


def test_no_runner_up_beats_a_tie_member(seed_view: RunView) -> None:
    """Finding 4: the seed report's runner-up compressed-lz4 (21.49 s) had a better median
    than registry (22.34 s), a member of the tie; sharded-registry was not mentioned."""
    entries = [Entry("sharded", "-", 15.05, rounds(19.86, 15.05, 13.82)),
               Entry("registry", "warm", 22.34, rounds(22.34, 24.9, 19.34)),
               Entry("lz4", "-", 21.49, rounds(25.06, 20.61, 21.49)),
               Entry("sharded-registry", "-", 21.90, rounds(22.18, 21.21, 21.9)),
               Entry("gzip9", "-", 31.04, rounds(37.46, 31.04, 30.66))]
    found = rank("model_ready_s", "-", entries, floor=1.2)
    assert found.runner_up is not None
    assert all(found.runner_up.median >= e.median for e in found.tie)
    for metric in ("model_ready_s", "first_predict_s", "predict_p50_ms", "build_cold_s"):
        for builder in (["-"] if metric != "build_cold_s" else seed_view.builders()):
            measured = ranking(seed_view, metric, builder)
            assert measured is not None
            if measured.runner_up is not None:
                assert all(measured.runner_up.median >= e.median for e in measured.tie), metric


def test_identical_contexts_are_one_tie_or_one_worst(seed_view: RunView) -> None:
    """Finding 4: "Build context (legacy): worst copyall" while baked, volume and copyall
    sent byte-identical contexts."""
    found = ranking(seed_view, "context_bytes", "legacy")
    assert found is not None
    worst = {e.strategy for e in found.worst_group}
    assert {"baked", "volume", "copyall"} <= worst
    row = next(line for line in winners_markdown(seed_view, Labels("en")).splitlines()
               if line.startswith("| Build context (legacy"))
    assert all(name in row.split(" | ")[3] for name in ("baked", "volume", "copyall"))


def _edited_copy(tmp_path: Path, factors: dict[int, float]) -> Path:
    """The seed run with volume's model_ready_s multiplied per trial."""
    folder = tmp_path / "edited"
    shutil.copytree(SEED_RUN, folder, ignore=shutil.ignore_patterns("report-*"))
    path = folder / "samples.csv"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if (row["strategy"], row["metric"]) == ("volume", "model_ready_s"):
            row["value"] = repr(float(row["value"]) * factors.get(int(row["trial"]), 1.0))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return folder


def _volume_start_up_broken(tmp_path: Path, factors: dict[int, float]) -> bool:
    changes = compare(load_run(SEED_RUN), load_run(_edited_copy(tmp_path, factors)),
                      [parse_rule("median:50%")])
    return any(c.broken for c in changes
               if c.key == ("volume", "-", "-", "model_ready_s"))


def test_compare_catches_a_2x_regression_in_two_of_three_trials(tmp_path: Path) -> None:
    """Finding 5: doubling two of three trials (median 35.9 -> 70.1 s) exited 0, because the
    untouched third trial made the two min-max ranges touch."""
    assert _volume_start_up_broken(tmp_path, {1: 2.0, 2: 2.0})


def test_compare_ignores_one_5x_spike_with_an_unchanged_median(tmp_path: Path) -> None:
    assert not _volume_start_up_broken(tmp_path, {3: 5.0})
