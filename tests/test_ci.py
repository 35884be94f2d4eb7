"""Every CI runs the same entry point, and under CI=true nothing may be skipped."""

from __future__ import annotations

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


def test_the_engine_tests_run_on_one_worker_in_order(pytester: pytest.Pytester,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """`nox -s tests` runs two xdist workers; every test that touches the engine (marked, by
    fixture or under tests/integration) or the page cache must run on one of them, never
    beside another such test."""
    text = (ROOT / "tests" / "conftest.py").read_text()
    start = text.index("# Fixtures that reach the real engine")
    end = text.index("# Under CI=true a skipped test is a failure")
    pytester.makeconftest("from pathlib import Path\n\nimport pytest\n\n" + text[start:end])
    pytester.makeini("[pytest]\nmarkers =\n    engine: e\n    page_cache: p\n")
    record = ("import os, time\n\ndef _log(name):\n"
              "    with open(os.environ['LOG'], 'a') as f:\n"
              "        f.write(f\"{name} {os.environ['PYTEST_XDIST_WORKER']} {time.time()}\\n\")\n"
              "    time.sleep(0.3)\n")
    pytester.makepyfile(
        test_engine=record + "import pytest\npytestmark = pytest.mark.engine\n"
        + "".join(f"def test_e{i}():\n    _log('engine')\n" for i in range(3)),
        test_cache=record + "import pytest\npytestmark = pytest.mark.page_cache\n"
        "def test_c():\n    _log('engine')\n",
        test_unit=record + "".join(f"def test_u{i}():\n    _log('unit')\n" for i in range(4)))
    log = pytester.path / "log"
    monkeypatch.setenv("LOG", str(log))
    pytester.runpytest_subprocess("-n", "2", "--dist", "loadgroup").assert_outcomes(passed=8)
    rows = [line.split() for line in log.read_text().splitlines()]
    engine_workers = {worker for kind, worker, _t in rows if kind == "engine"}
    assert len([r for r in rows if r[0] == "engine"]) == 4
    assert len(engine_workers) == 1
    # The unit tests did not wait for them: some ran on the other worker.
    assert {worker for kind, worker, _t in rows if kind == "unit"} - engine_workers
