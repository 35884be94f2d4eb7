"""Bad input: one clear line, exit 2, before any engine or build is touched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize(("args", "fragment"), [
    (("run", "--model-size", "5.45XB"), "malformed size '5.45XB'"),
    (("run", "--strategies", "baked,teleport"), "unknown strategy teleport"),
    (("run", "--model", "/nonexistent/model.joblib"), "does not exist"),
    (("run", "--trials", "0"), "must be at least 1"),
    (("run", "--bogus"), "unrecognized arguments"),
    (("run", "--shards", "0,x"), "malformed --shards"),
    (("run", "--cpus", "-1"), "out of range"),
    (("run", "--link-rate", "fast"), "is not a rate: pass e.g. 1Gbit"),
    (("run", "--link-rate", "10bit"), "below 64kbit"),
    (("run", "--oci-registry", "127.0.0.1:5000"), "add one of them"),
    (("run", "--rollout", "--model", __file__), "needs the new version of your model"),
    (("run", "--fresh-node", "--orchestrator", "swarm"), "leave out --orchestrator swarm"),
    (("run", "--nodes", "2"), "add --fresh-node"),
    (("run", "--nodes", "1,17", "--fresh-node"), "counts of 1 to 16"),
    (("run", "--nodes", "2", "--fresh-node", "--replicas", "2"), "one replica a node"),
    (("run", "--nodes", "x"), "'x' is not a whole number"),
    (("report", "latest", "--egress-model", "lots"), "--egress-model 'lots' is not a rate"),
])
def test_usage_errors_are_one_line_and_exit_2(args: tuple[str, ...], fragment: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]


def test_a_file_that_is_not_joblib_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.joblib"
    fake.write_text("not a model")
    result = run_cli("model", "--model", str(fake))
    assert result.returncode == 2
    assert "is not a joblib/pickle file" in result.stderr


def test_help_explains_each_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every subcommand says what it does and explains every option it takes."""
    from bench.cli import build_parser

    # One width for the child and this process (argparse wraps to the terminal's, which a
    # pipe does not have and a developer's shell does).
    monkeypatch.setenv("COLUMNS", "100")

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    # The help as `python -m bench` prints it, once for real; every command's from the same
    # parser in this process (a Python start each cost the suite 14 s).
    result = run_cli("run", "--help")
    assert result.returncode == 0
    assert result.stdout == commands.choices["run"].format_help()  # type: ignore[index]
    for command, sub in commands.choices.items():  # type: ignore[union-attr]
        text = sub.format_help()
        assert f"usage: python -m bench {command}" in text
        assert sub.description and sub.description.split()[0] in text, command
        for action in sub._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{command} {action.option_strings[0]} has no help"
                assert action.option_strings[-1] in text


def test_latest_is_the_run_that_started_last_not_the_last_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A committed folder such as `seed-5.45GB` sorts after every run id by name."""
    from bench.cli import _resolve_run_folder
    from tests.stored_runs import metadata, write_run

    monkeypatch.setenv("MLBENCH_RESULTS", str(tmp_path))
    write_run(tmp_path, "seed-5.45GB", meta=metadata(started_at="2026-11-20T00:00:00+00:00"))
    newest = write_run(tmp_path, "20261127T090000Z-abcd",
                       meta=metadata(started_at="2026-11-27T09:00:00+00:00"))
    assert _resolve_run_folder(Path("latest")) == newest
