"""A quick run of the micro-benchmark suite on a tiny model (the real one is `nox -s micro`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.micro.load_paths import PATHS
from tests.conftest import project_path

MEMORY_PATHS = ("joblib", "flat")


def test_micro_benchmarks_run_and_every_load_path_predicts_exactly(tmp_path: Path) -> None:
    output = tmp_path / "micro.json"
    result = subprocess.run(
        # Without read-cold, the one path that drops the host's page cache: this smoke then
        # needs no engine lane and runs beside the engine's tests (CI time); `nox -s micro`
        # measures it.
        [sys.executable, "-m", "pytest", "benchmarks/micro", "-q", "-p", "no:cacheprovider",
         "-p", "no:xdist", "--model-size", "1MB", "--rounds", "1", "-k", "not read-cold",
         # Peak memory in fresh processes of two paths (the reader is one function for
         # all; each path costs a Python start with scikit-learn: 40 s of CI's CPU for 12).
         "--memory-paths", ",".join(MEMORY_PATHS), f"--benchmark-json={output}"],
        # Run from an xdist worker (nox -s tests), the inner pytest must not look like one:
        # pytest-benchmark disables itself there and writes an empty file.
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")},
        cwd=project_path(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    document = json.loads(output.read_text())
    ran = {b["param"]: b["extra_info"] for b in document["benchmarks"]}
    loads = [p.name for p in PATHS if p.kind == "load"]
    assert set(loads) <= set(ran)
    for name in loads:
        assert ran[name]["exact_predictions"] is True
    assert {name for name in loads if "rss_peak" in ran[name]} == set(MEMORY_PATHS)
    for name in MEMORY_PATHS:
        info = ran[name]
        # The load raised the process's high-water mark above where it stood before it: the
        # mark was reset to the RSS just before the load (VmHWM is never below VmRSS, so
        # without the reset a peak "above the RSS before" could not fail).
        assert info["peak_reset"] is True and info["hwm_before"] <= info["rss_before"] * 1.01
        assert info["rss_peak"] > info["hwm_before"] > 0
    assert ran["gzip9-seed"]["file_bytes"] < ran["joblib"]["file_bytes"]
    table = subprocess.run([sys.executable, "-m", "bench.micro.table", str(output)],
                           cwd=project_path(), capture_output=True, text=True, check=True)
    assert "| sharded |" in table.stdout and output.with_suffix(".md").exists()
