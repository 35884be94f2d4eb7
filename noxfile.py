"""nox sessions: bench (the main job), tests, lint.

    nox -s bench                  # benchmark baked and volume on a small default model
    nox -s bench -- --model-size 256MB --trials 3
    nox -s tests                  # unit + integration tests (needs a Docker engine)
    nox -s report -- latest --lang es   # tables, charts, claims, report.md of a stored run
    nox -s compare -- RUN_A RUN_B --fail-on median:10%
    nox -s micro -- --model-size 256MB  # in-process load-path micro-benchmarks (slow)
    nox -s lint                   # ruff, mypy, workflow schema and security checks
"""

from __future__ import annotations

import time
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
# uv makes the venv and installs the dependencies in seconds where pip takes 90 s (CI time);
# without uv on PATH, the standard venv and pip.
nox.options.default_venv_backend = "uv|venv"


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmark; arguments after -- go to `python -m bench run`."""
    session.install("-e", ".")
    session.run("python", "-m", "bench", "run", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests and the integration tests against the real Docker engine.

    Three pytest-xdist workers: the tests that touch the engine run in two lanes, each on
    one worker in order (tests/conftest.py, ENGINE_LANES: what may run beside what); the
    unit tests run on the third meanwhile (CI time). The tiny model they share is made first,
    so that the two workers never write it at once. The base and runtime images are made by
    the first engine test that needs them, once (bench.host.made_once: the other lane waits
    for them): debootstrap and the runtime's pip install each keep one core busy, and the unit
    tests use the other meanwhile (made before pytest, the second core sat idle)."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "bench", "model", "--model-size", "1MB")
    session.run("python", "-m", "pytest", "-ra", "-n", "3", "--dist", "loadgroup",
                "--durations=25", *session.posargs)


@nox.session
def micro(session: nox.Session) -> None:
    """In-process micro-benchmarks of every load path (pytest-benchmark, pedantic rounds).

    nox -s micro -- --model-size 256MB --rounds 3
    nox -s micro -- --benchmark-compare --benchmark-compare-fail=median:25%   # vs last saved
    Raw JSON and a Markdown table go to results/micro/; runs are also saved for comparison.
    """
    session.install("-e", ".[test]")
    folder = Path("results/micro")
    folder.mkdir(parents=True, exist_ok=True)
    output = folder / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    session.run("python", "-m", "pytest", "benchmarks/micro", "-q", "-p", "no:cacheprovider",
                f"--benchmark-json={output}", f"--benchmark-storage={folder / 'storage'}",
                "--benchmark-autosave", "--benchmark-sort=name", *session.posargs)
    session.run("python", "-m", "bench.micro.table", str(output))


@nox.session
def report(session: nox.Session) -> None:
    """Render a stored run's report; arguments go to `python -m bench report` (default: latest)."""
    session.install("-e", ".")
    session.run("python", "-m", "bench", "report", *(session.posargs or ["latest"]))


@nox.session
def compare(session: nox.Session) -> None:
    """Compare two stored runs; arguments go to `python -m bench compare`."""
    session.install("-e", ".")
    session.run("python", "-m", "bench", "compare", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff and mypy over the harness, strategies, service, generator and tests."""
    session.install("-e", ".[test,lint]")
    session.run("ruff", "check", ".")
    session.run("mypy", "bench", "strategies", "datos", "benchmarks", "noxfile.py")
    session.run("mypy", "docker/service")
    workflows = sorted(str(p) for p in Path(".github/workflows").glob("*.yml"))
    # actionlint's PyPI package downloads its binary from GitHub at install time; these two
    # install from PyPI alone: the GitHub workflow JSON schema, and zizmor's security audits.
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
    session.run("zizmor", "--offline", ".github/workflows")
