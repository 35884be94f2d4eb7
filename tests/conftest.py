"""Shared fixtures. Integration tests use the real Docker engine and tiny models."""

from __future__ import annotations

import fcntl
import importlib
import os
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.host.paths import cache_dir, models_dir, service_package
from bench.model.source import ModelArtifact, synthetic_model
from bench.progress import Progress

pytest_plugins = ["pytester"]  # tests/test_ci.py runs a suite of its own

TINY_MODEL_BYTES = 1_000_000


@pytest.fixture(scope="session")
def tiny_model() -> ModelArtifact:
    return synthetic_model(TINY_MODEL_BYTES, 0, models_dir(), cache_dir(), Progress(quiet=True))


@pytest.fixture(scope="session")
def engine() -> Iterator[object]:
    from bench.engine import DockerEngine

    engine = DockerEngine.connect()  # fails loudly when no engine runs: these tests need one
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def runtime_ref(engine: Any) -> str:
    """The harness's runtime image (base + the service's dependencies), made or found."""
    from bench.prepare.base_image import ensure_base_image
    from bench.prepare.runtime_image import ensure_runtime_image

    progress = Progress(quiet=True)
    base = ensure_base_image(engine, progress)
    return ensure_runtime_image(engine, base, cache_dir(), progress).ref


def load_service(env: dict[str, str]) -> types.ModuleType:
    """Import docker/service as the package `backend` (as in the image) with this env."""
    os.environ.update(env)
    service_package()
    return importlib.import_module("backend.app")


@pytest.fixture
def service_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every variable the service reads is put back after the test. Found: a hand-written
    list without MODEL_FORMAT let a sharded test's setting leak into the next service."""
    from bench.service_env import READ_BY_SERVICE

    saved = {key: os.environ.get(key) for key in READ_BY_SERVICE}
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def project_path(*parts: str) -> Path:
    return Path(__file__).resolve().parent.parent.joinpath(*parts)


@pytest.fixture
def s3_download() -> types.ModuleType:
    """The service's download module, imported as in the image."""
    load_service({})
    return importlib.import_module("backend.s3_download")


# -- the registry fault table: each fault test adds its row; printed at the end of the run ---

FAULT_ROWS: list[tuple[str, str, float, str]] = []


@pytest.fixture
def fault_table() -> Callable[[str, str, float, str], None]:
    """Record one fault case: (case, outcome, seconds to the outcome, retries)."""
    def record(case: str, outcome: str, seconds: float, retries: str) -> None:
        FAULT_ROWS.append((case, outcome, seconds, retries))
    return record


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FAULT_ROWS:
        return
    terminalreporter.section("registry fault table")
    terminalreporter.write_line("| case | outcome | time to outcome | retries |")
    terminalreporter.write_line("|---|---|--:|--:|")
    for case, outcome, seconds, retries in FAULT_ROWS:
        terminalreporter.write_line(f"| {case} | {outcome} | {seconds:.2f} s | {retries} |")


# Fixtures that reach the real engine (tests/integration's own fixtures are there by path).
ENGINE_FIXTURES = frozenset({"engine", "runtime_ref"})


def touches_engine(item: pytest.Item) -> bool:
    fixtures = set(getattr(item, "fixturenames", ()))
    return (item.get_closest_marker("engine") is not None
            or item.get_closest_marker("page_cache") is not None
            or item.get_closest_marker("timing") is not None
            or bool(fixtures & ENGINE_FIXTURES) or "integration" in Path(str(item.path)).parts)


# The engine tests run in two lanes (CI time), each one test after another. `beside` marks
# a test that may run in the second lane, beside the first: it touches only objects of its
# own runs, each held by its run's lock (bench.run.liveness: `clean` in the other lane
# leaves them); it builds with the legacy builder only (a run prunes the BuildKit entries
# added while it ran, and tests compare the build cache before and after); it neither
# drops the page cache nor times a rate; and it asserts nothing engine-wide. Every other
# engine test runs in the first lane, where engine-wide checks (swarm networks, volumes, the
# build cache) hold.
ENGINE_LANES = {False: "engine", True: "engine-beside"}


def engine_lane(item: pytest.Item) -> str | None:
    if not touches_engine(item):
        return None
    return ENGINE_LANES[item.get_closest_marker("beside") is not None]


@pytest.hookimpl(tryfirst=True)  # before xdist's worker reads the groups into node ids
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`nox -s tests`: -n 3 --dist loadgroup), every test that touches
    the engine goes to one of two groups (ENGINE_LANES), each run by one worker in order:
    they share the engine, the page cache some drop and the objects `bench clean` sweeps.
    The others spread freely."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        lane = engine_lane(item)
        if lane is not None:
            item.add_marker(pytest.mark.xdist_group(lane))


# -- the engine as a whole, once, where no lane is running: the suite left no run behind ---

LEFT_BEHIND_KEY = pytest.StashKey[set[str]]()


def _labelled_runs() -> set[str] | None:
    """Run ids carrying objects in the engine; None when no engine answers (unit tests only)."""
    from bench.engine import RUN_LABEL, DockerEngine

    try:
        engine = DockerEngine.connect()
    except Exception:
        return None
    try:
        return engine.run_labels(RUN_LABEL)
    finally:
        engine.close()


def pytest_sessionstart(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # the controller (or a run without xdist)
        before = _labelled_runs()
        if before is not None:
            session.config.stash[LEFT_BEHIND_KEY] = before


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Every run and server a test made is gone once every lane has ended (each test checks
    only its own runs: the other lane's are alive meanwhile)."""
    before = session.config.stash.get(LEFT_BEHIND_KEY, None)
    if before is None:
        return
    left = (_labelled_runs() or set()) - before
    if left:
        session.config.stash[LEFT_BEHIND_KEY] = set()
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        sys.stderr.write(f"\nthe tests left objects of these runs in the engine: "
                         f"{sorted(left)} (`python -m bench clean` removes them)\n")


# Under CI=true a skipped test is a failure: CI installs every tool and runs as root, so a
# skip there means a check silently did not run (the workflow once ran the suite unprivileged,
# where the link-fault, export and fresh-node tests all skipped and the job stayed green).
SKIP_IS_FAILURE = os.environ.get("CI") == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    outcome = yield
    report = outcome.get_result()
    if SKIP_IS_FAILURE and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where nothing may be skipped: {reason}"


def require_both_builders(builders: list[str]) -> None:
    """The BuildKit checks of a run: skipped (with the reason) where BuildKit is missing,
    never silently left out; under CI=true that skip is a failure."""
    if "buildkit" not in builders or "legacy" not in builders:
        pytest.skip(f"the run built with {builders} only: install docker-buildx or a docker "
                    "client older than 23 for the BuildKit checks")


# Making the harness's engine a swarm manager and leaving again touches every network of it:
# in CI a run of the beside lane lost its S3 server's connection ("Could not connect to the
# endpoint URL http://s3:8080/...") twice while the other lane made and left swarms. A test
# marked swarm_maker holds this lock alone; every test of the beside lane holds it shared.
SWARM_LOCK = Path("/tmp/mlbench-tests-swarm.lock")


@pytest.fixture(autouse=True)
def _swarms_apart_from_the_beside_lane(request: pytest.FixtureRequest) -> Iterator[None]:
    maker = request.node.get_closest_marker("swarm_maker") is not None
    if not maker and engine_lane(request.node) != ENGINE_LANES[True]:
        yield
        return
    with SWARM_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX if maker else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
