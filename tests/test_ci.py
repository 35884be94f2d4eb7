"""Every CI runs the same entry point, and under CI=true nothing may be skipped."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_the_workflow_runs_the_ci_entry_point_as_root_with_ci_set() -> None:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    steps = workflow["jobs"]["tests"]["steps"]
    runs = [step for step in steps if "run" in step]
    entry = [step for step in runs if "bash .ci/run" in step["run"]]
    assert len(entry) == 1, runs
    assert entry[0]["run"].startswith("sudo -E")
    assert entry[0]["env"]["CI"] == "true"
    # No second way to run the tests beside it.
    assert not [step for step in runs if "nox -s tests" in step["run"]]
    assert "python3 -m nox -s tests" in (ROOT / ".ci" / "run").read_text()


def test_a_skip_is_a_failure_under_ci(pytester: pytest.Pytester,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeconftest(_hook_source())
    pytester.makepyfile("import pytest\n\ndef test_x():\n    pytest.skip('no tool')\n")
    monkeypatch.setenv("CI", "true")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*skipped under CI=true*no tool*"])
    monkeypatch.setenv("CI", "false")
    pytester.runpytest_subprocess().assert_outcomes(skipped=1)


def _hook_source() -> str:
    """The conftest's hook and its switch, as they are written there."""
    text = (ROOT / "tests" / "conftest.py").read_text()
    start = text.index("SKIP_IS_FAILURE =")
    end = text.index("def require_both_builders")
    return "import os\nfrom typing import Any\n\nimport pytest\n\n" + text[start:end]


def test_each_engine_lane_runs_on_one_worker_in_order(pytester: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """`nox -s tests` runs three xdist workers; every test that touches the engine (marked, by
    fixture or under tests/integration) or the page cache runs in one of two lanes (`beside`
    marks the second), each on one worker, never beside another test of its lane; the unit
    tests do not wait for them."""
    text = (ROOT / "tests" / "conftest.py").read_text()
    start = text.index("# Fixtures that reach the real engine")
    end = text.index("# -- the engine as a whole")
    pytester.makeconftest("from pathlib import Path\n\nimport pytest\n\n" + text[start:end])
    pytester.makeini("[pytest]\nmarkers =\n    engine: e\n    page_cache: p\n    beside: b\n")
    record = ("import os, time\n\ndef _log(name):\n"
              "    began = time.time()\n"
              "    time.sleep(0.3)\n"
              "    with open(os.environ['LOG'], 'a') as f:\n"
              "        f.write(f\"{name} {os.environ['PYTEST_XDIST_WORKER']} {began} {time.time()}\\n\")\n")
    pytester.makepyfile(
        test_engine=record + "import pytest\npytestmark = pytest.mark.engine\n"
        + "".join(f"def test_e{i}():\n    _log('engine')\n" for i in range(3)),
        test_cache=record + "import pytest\npytestmark = pytest.mark.page_cache\n"
        "def test_c():\n    _log('engine')\n",
        test_beside=record + "import pytest\npytestmark = [pytest.mark.engine, pytest.mark.beside]\n"
        + "".join(f"def test_b{i}():\n    _log('beside')\n" for i in range(3)),
        test_unit=record + "".join(f"def test_u{i}():\n    _log('unit')\n" for i in range(4)))
    log = pytester.path / "log"
    monkeypatch.setenv("LOG", str(log))
    pytester.runpytest_subprocess("-n", "3", "--dist", "loadgroup").assert_outcomes(passed=11)
    rows = [(kind, worker, float(began), float(ended)) for kind, worker, began, ended
            in (line.split() for line in log.read_text().splitlines())]
    for lane, count in (("engine", 4), ("beside", 3)):
        mine = sorted((began, ended, worker) for kind, worker, began, ended in rows
                      if kind == lane)
        assert len(mine) == count
        assert len({worker for _b, _e, worker in mine}) == 1, mine
        # One after another: no test of the lane began before the one before it ended.
        assert all(later[0] >= earlier[1] for earlier, later in itertools.pairwise(mine)), mine
    engine_workers = {worker for kind, worker, _b, _e in rows if kind == "engine"}
    # The unit tests did not wait for them: some ran on another worker.
    assert {worker for kind, worker, _b, _e in rows if kind == "unit"} - engine_workers


@pytest.mark.engine
def test_a_run_left_in_the_engine_fails_the_suite(pytester: pytest.Pytester) -> None:
    """Each test checks only its own runs (the other lane's are alive meanwhile): the
    engine as a whole is checked once, at the suite's end, against what it held before."""
    text = (ROOT / "tests" / "conftest.py").read_text()
    start = text.index("# -- the engine as a whole")
    end = text.index("# Under CI=true a skipped test is a failure")
    pytester.makeconftest("import sys\n\nimport pytest\n\n" + text[start:end])
    pytester.makepyfile(test_leak=(
        "from bench.engine import DockerEngine\n"
        "from bench.run.cleanup import run_labels\n"
        "def test_leaves_a_network():\n"
        "    engine = DockerEngine.connect()\n"
        "    engine.create_network('mlbench-left-behind', run_labels('left-behind', False))\n"))
    try:
        result = pytester.runpytest_subprocess()
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(["*1 passed*"])  # the test passed; the suite did not
        result.stderr.fnmatch_lines(["*left objects of these runs*left-behind*bench clean*"])
    finally:
        from bench.engine import RUN_LABEL, DockerEngine

        engine = DockerEngine.connect()
        engine.remove_labelled(f"{RUN_LABEL}=left-behind")
        engine.close()


def test_a_swarm_maker_never_runs_beside_a_test_of_the_beside_lane(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test that makes the harness's engine a swarm (marked swarm_maker, in the first
    lane) and the tests of the beside lane take turns (tests/conftest.py, SWARM_LOCK)."""
    text = (ROOT / "tests" / "conftest.py").read_text()
    lanes = text[text.index("# Fixtures that reach the real engine"):
                 text.index("# -- the engine as a whole")]
    apart = text[text.index("# Making the harness's engine a swarm manager"):]
    pytester.makeconftest("import fcntl\nfrom collections.abc import Iterator\n"
                          "from pathlib import Path\n\nimport pytest\n\n" + lanes + apart)
    pytester.makeini("[pytest]\nmarkers =\n    engine: e\n    page_cache: p\n    beside: b\n"
                     "    swarm_maker: s\n")
    record = ("import os, time\n\ndef _log(name):\n"
              "    began = time.time()\n"
              "    time.sleep(0.4)\n"
              "    with open(os.environ['LOG'], 'a') as f:\n"
              "        f.write(f\"{name} {began} {time.time()}\\n\")\n")
    pytester.makepyfile(
        test_engine=record + "import pytest\npytestmark = pytest.mark.engine\n"
        "def test_e0():\n    _log('engine')\n"
        "@pytest.mark.swarm_maker\ndef test_maker():\n    _log('maker')\n"
        "def test_e1():\n    _log('engine')\n",
        test_beside=record + "import pytest\npytestmark = [pytest.mark.engine, pytest.mark.beside]\n"
        + "".join(f"def test_b{i}():\n    _log('beside')\n" for i in range(4)))
    log = pytester.path / "log"
    monkeypatch.setenv("LOG", str(log))
    pytester.runpytest_subprocess("-n", "3", "--dist", "loadgroup").assert_outcomes(passed=7)
    rows = [(kind, float(began), float(ended)) for kind, began, ended
            in (line.split() for line in log.read_text().splitlines())]
    ((_, made, left),) = [row for row in rows if row[0] == "maker"]
    beside = [(began, ended) for kind, began, ended in rows if kind == "beside"]
    assert len(beside) == 4
    assert all(ended <= made or began >= left for began, ended in beside), (made, left, beside)
