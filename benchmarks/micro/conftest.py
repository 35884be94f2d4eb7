"""Options and fixtures of the micro-benchmarks (not part of `nox -s tests`: they are slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.host.paths import cache_dir, models_dir
from bench.micro.load_paths import make_files
from bench.model.source import ModelArtifact, synthetic_model
from bench.progress import Progress
from bench.results.units import parse_size


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mlbench micro-benchmarks")
    group.addoption("--model-size", default="256MB",
                    help="synthetic model size (default 256MB; decimal units)")
    group.addoption("--rounds", type=int, default=3,
                    help="timed loads per path (pedantic mode; default 3)")
    group.addoption("--memory-paths", default="all",
                    help="load paths whose peak memory is read in a fresh process of their "
                         "own, comma-separated (default all; each costs a Python start with "
                         "scikit-learn imported)")


@pytest.fixture(scope="session")
def model(request: pytest.FixtureRequest) -> ModelArtifact:
    size = parse_size(str(request.config.getoption("--model-size")))
    return synthetic_model(size, 0, models_dir(), cache_dir(), Progress())


@pytest.fixture(scope="session")
def files(model: ModelArtifact) -> dict[str, tuple[Path, float]]:
    return make_files(model.path, model.sha256, cache_dir())


@pytest.fixture(scope="session")
def memory_paths(request: pytest.FixtureRequest) -> frozenset[str] | None:
    """The paths whose memory is measured; None for every one."""
    names = str(request.config.getoption("--memory-paths"))
    return None if names == "all" else frozenset(n for n in names.split(",") if n)


@pytest.fixture(scope="session")
def rounds(request: pytest.FixtureRequest) -> int:
    return int(request.config.getoption("--rounds"))

