"""Options declared once (bench/options.py): the parser is generated from RunConfig's and
StrategyOptions' fields, so the command line and the API meet the same defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bench import cli
from bench.errors import UsageError
from bench.options import given_fields
from bench.run.config import RunConfig, builders_of
from strategies.base import StrategyOptions


def config_of(argv: list[str]) -> RunConfig:
    return RunConfig(**given_fields(cli.build_parser().parse_args(["run", *argv]), RunConfig))


def test_a_run_from_the_command_line_defaults_like_one_from_the_api(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    """Every field left out takes the dataclass's default: the one declared difference is
    --builder (auto on the command line, which --help says)."""
    monkeypatch.setenv("MLBENCH_RESULTS", str(tmp_path / "results"))
    assert config_of([]) == RunConfig(builders=builders_of("auto"))


def test_each_option_sets_its_field() -> None:
    config = config_of(["--strategies", "volume,baked", "--trials", "2", "--no-warmup",
                        "--replica-cache", "private", "--model-size", "1MB", "--load", "2m",
                        "--download-chunk", "8MiB", "--shards", "1,4", "--rollout",
                        "--codec", "lz4", "--builder", "legacy", "--cpus", "0.5"])
    assert config.strategies == ("volume", "baked") and config.strategies_named
    assert (config.trials, config.warmup, config.shared_cache) == (2, False, False)
    assert (config.model_size_bytes, config.load_duration_s) == (1_000_000, 120.0)
    assert config.options == dataclasses.replace(
        StrategyOptions(), download_chunk_bytes=8 * 2**20, shards=(1, 4), codecs=("lz4",))
    assert config.rollout and config.rollout_model_path is None
    assert (config.builders, config.cpus) == (("legacy",), 0.5)
    assert not config_of([]).strategies_named


def test_every_field_of_the_run_is_an_option_or_says_why_not() -> None:
    """A new RunConfig field gets its flag from its declaration; these three are set by
    another option (--strategies, --rollout) or hold the strategy options."""
    not_options = {f.name for f in dataclasses.fields(RunConfig) if "option" not in f.metadata}
    assert not_options == {"options", "strategies_named", "rollout_model_path"}
    assert all("option" in f.metadata for f in dataclasses.fields(StrategyOptions))


@pytest.mark.parametrize(("argv", "message"), [
    (["--replica-cache", "both"], "invalid choice: 'both'"),
    (["--trials", "0"], "must be at least 1"),
    (["--model-size", "big"], "malformed size 'big'"),
    (["--shards", "x"], "malformed --shards 'x'"),
])
def test_a_bad_value_is_one_line_and_exit_2(argv: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["run", *argv]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    with pytest.raises(UsageError):
        config_of(argv)
