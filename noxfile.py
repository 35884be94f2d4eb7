"""nox sessions: bench (the main job), tests, lint.

    nox -s bench                  # benchmark baked and volume on a small default model
    nox -s bench -- --model-size 256MB --trials 3
    nox -s tests                  # unit + integration tests (needs a Docker engine)
    nox -s lint                   # ruff + mypy
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "venv"


@nox.session
def bench(session: nox.Session) -> None:
    """Run the benchmark; arguments after -- go to `python -m bench run`."""
    session.install("-e", ".")
    session.run("python", "-m", "bench", "run", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests and the integration tests against the real Docker engine."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-ra", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff and mypy over the harness, strategies, service, generator and tests."""
    session.install("-e", ".[test,lint]")
    session.run("ruff", "check", ".")
    session.run("mypy", "bench", "strategies", "datos", "noxfile.py")
    session.run("mypy", "docker/service")
