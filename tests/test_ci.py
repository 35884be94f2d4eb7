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
