"""compare: ratios, rules, the noise guard, metadata warnings and exit codes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench import cli
from bench.errors import UsageError
from bench.results import compare as compare_module
from bench.results.compare import Rule, compare, metadata_differences, parse_rule
from bench.results.metrics import Sample
from bench.results.store import load_run
from tests.stored_runs import metadata, write_run


def test_rules_parse_and_malformed_rules_are_usage_errors() -> None:
    assert parse_rule("median:10%") == Rule(None, "median", 0.10)
    assert parse_rule("build_cold_s:min:15.5%") == Rule("build_cold_s", "min", 0.155)
    for bad in ("median:10", "mean:10%", "speed:median:5%", "10%"):
        with pytest.raises(UsageError):
            parse_rule(bad)


def test_same_runs_pass_and_a_slowed_run_breaks_the_rule(tmp_path: Path) -> None:
    a = load_run(write_run(tmp_path, "a"))
    same = load_run(write_run(tmp_path, "same", trials=(0.99, 1.0, 1.03)))
    slow = load_run(write_run(tmp_path, "slow", slow=3.0))
    rules = [parse_rule("median:10%")]
    assert not [c for c in compare(a, same, rules) if c.broken]
    broken = {(c.key[0], c.key[3]) for c in compare(a, slow, rules) if c.broken}
    assert ("volume", "model_ready_s") in broken and ("volume", "ready_s") in broken
    assert all(metric.endswith("_s") for _s, metric in broken)
    improved = {(c.key[0], c.key[3]) for c in compare(slow, a, rules) if c.better}
    assert ("volume", "model_ready_s") in improved


def test_overlapping_trials_and_tiny_differences_are_noise(tmp_path: Path) -> None:
    a = load_run(write_run(tmp_path, "a", trials=(0.8, 1.0, 1.3)))
    b = load_run(write_run(tmp_path, "b", trials=(1.0, 1.2, 1.4)))  # median +20%, ranges overlap
    assert not [c for c in compare(a, b, [parse_rule("median:10%")]) if c.broken]


def test_a_metric_rule_overrides_the_general_rule(tmp_path: Path) -> None:
    a = load_run(write_run(tmp_path, "a"))
    slow = load_run(write_run(tmp_path, "slow", slow=1.5))
    rules = [parse_rule("median:10%"), parse_rule("model_ready_s:median:100%")]
    broken = {c.key[3] for c in compare(a, slow, rules) if c.broken}
    assert "ready_s" in broken and "model_ready_s" not in broken


def test_metadata_differences_ignore_volatile_fields(tmp_path: Path) -> None:
    base = metadata()
    other = metadata(started_at="later", git={"commit": "1" * 40})
    other["machine"] = dict(base["machine"], disk_free_bytes=1, cpu="Other CPU")
    a = load_run(write_run(tmp_path, "a", meta=base))
    b = load_run(write_run(tmp_path, "b", meta=other))
    assert metadata_differences(a, b) == [("machine.cpu", "Test CPU", "Other CPU")]


def test_compare_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, same = write_run(tmp_path, "a"), write_run(tmp_path, "same")
    slow = write_run(tmp_path, "slow", slow=3.0)
    assert cli.main(["compare", str(a), str(same), "--fail-on", "median:10%"]) == 0
    assert cli.main(["compare", str(a), str(slow), "--fail-on", "median:10%"]) == 1
    captured = capsys.readouterr()
    assert "BROKEN" in captured.out and "FAIL" in captured.err
    assert cli.main(["compare", str(a), str(slow), "--fail-on", "fast:1%"]) == 2
    assert cli.main(["compare", str(a), str(tmp_path / "missing")]) == 2


def test_a_small_size_that_grows_tenfold_breaks_a_size_rule(tmp_path: Path) -> None:
    """Found: the absolute 1 MB floor let a dockerignore context grow from 71.7 KB to 900 KB
    (12.6x) pass context_bytes:median:2%."""
    def grow(samples: list[Sample]) -> list[Sample]:
        return [dataclasses.replace(s, value=s.value * 12.6)
                if (s.strategy, s.builder, s.metric) == ("dockerignore", "legacy",
                                                         "context_bytes") else s
                for s in samples]

    a = load_run(write_run(tmp_path, "a"))
    b = load_run(write_run(tmp_path, "b", edit=grow))
    broken = {c.key for c in compare(a, b, [parse_rule("context_bytes:median:2%")]) if c.broken}
    assert broken == {("dockerignore", "legacy", "-", "context_bytes")}


def test_a_strategy_or_metric_missing_in_b_fails_compare(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Found: dropping a strategy and every memory metric from run B broke 0 rules."""
    def drop(samples: list[Sample]) -> list[Sample]:
        return [s for s in samples if s.strategy != "compressed-gzip9"
                and not s.metric.endswith(("pss_bytes", "working_set_bytes"))]

    a, b = write_run(tmp_path, "a"), write_run(tmp_path, "b", edit=drop)
    missing = compare_module.missing_in_b(load_run(a), load_run(b))
    assert ("compressed-gzip9", "legacy", "-", "build_cold_s") in missing
    assert ("volume", "-", "-", "server_pss_bytes") in missing
    assert cli.main(["compare", str(a), str(b), "--fail-on", "median:50%"]) == 1
    assert "missing in B" in capsys.readouterr().err
    assert cli.main(["compare", str(a), str(b), "--fail-on", "median:50%",
                     "--allow-missing"]) == 0


def test_runs_of_another_model_config_or_machine_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Found: runs of different models or configs only warned, so any passing run became the
    next baseline."""
    a = write_run(tmp_path, "a")
    other_model = metadata()
    other_model["model"] = dict(other_model["model"], sha256="cd" * 32)
    b = write_run(tmp_path, "b", meta=other_model)
    c = write_run(tmp_path, "c", meta=metadata(config={"trials": 5}))
    for other in (b, c):
        assert cli.main(["compare", str(a), str(other)]) == 2
        assert "not comparable" in capsys.readouterr().err
        assert cli.main(["compare", str(a), str(other), "--allow-mismatch"]) == 0
