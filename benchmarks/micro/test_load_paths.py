"""How fast each way of loading the model is, in one process, against the disk's read speed.

Each load path is timed with pytest-benchmark in pedantic mode (fixed rounds, one load per
round: loads take seconds). Its peak memory comes from a fresh process per path (a high-water
mark cannot be reset), and every loaded model must predict exactly what the original does.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.host.page_cache import can_drop, drop
from bench.micro.load_paths import BY_NAME, PATHS, file_bytes, read_bytes
from bench.model.source import ModelArtifact


def warm_page_cache(file: Path) -> None:
    for part in sorted(file.iterdir()) if file.is_dir() else [file]:
        read_bytes(part)


def fresh_process_memory(name: str, file: Path) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "bench.micro.load_paths", name, str(file)],
                            capture_output=True, text=True, check=True)
    return dict(json.loads(result.stdout))


@pytest.mark.parametrize("name", [p.name for p in PATHS])
def test_load_path(benchmark: Any, name: str, model: ModelArtifact,
                   files: dict[str, tuple[Path, float]], rounds: int,
                   memory_paths: frozenset[str] | None) -> None:
    path = BY_NAME[name]
    if path.file not in files:
        pytest.skip(f"{path.file} is not available here (package not installed)")
    file, make_s = files[path.file]
    if name == "read-cold":
        if not can_drop():
            pytest.skip("dropping the page cache needs root")

        def cold() -> tuple[tuple[Path], dict[str, Any]]:
            drop()
            return (file,), {}

        result = benchmark.pedantic(path.run, setup=cold, rounds=rounds, iterations=1)
    else:
        warm_page_cache(file)  # every other path is measured with the file in memory
        gc.collect()
        result = benchmark.pedantic(path.run, args=(file,), rounds=rounds, iterations=1)
    info = benchmark.extra_info
    info.update(kind=path.kind, note=path.note, file=path.file, file_bytes=file_bytes(file),
                model_bytes=model.bytes, make_s=make_s)
    if path.kind == "load":
        rows = np.asarray(model.reference_rows)
        assert np.array_equal(result.predict(rows), np.asarray(model.reference_predictions)), \
            f"{name}: predictions differ from the original model's"
        info["exact_predictions"] = True
        del result
        gc.collect()
        if memory_paths is None or name in memory_paths:
            info.update(fresh_process_memory(name, file))
    else:
        assert result > 0
