"""mmap-lazy on the real engine: a code-only container that serves the flat forest before
the file has arrived (pages from the run's S3 server as predictions touch them), exactly, and
fills the rest; a restart on its cache volume fetches nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.engine import Engine
from bench.model.source import ModelArtifact
from bench.results.store import load_run
from tests.integration.test_end_to_end import assert_nothing_labelled, failures_of, run_bench

pytestmark = [pytest.mark.engine, pytest.mark.beside]


def test_mmap_lazy_serves_from_pages_on_demand_and_a_warm_restart_fetches_nothing(
        engine: Engine, tiny_model: ModelArtifact, tmp_path: Path) -> None:
    run = run_bench(engine, ("mmap-lazy",), tmp_path, builders=("legacy",))
    stored = load_run(tmp_path / run.run_id)
    assert stored.document["status"] == "complete", failures_of(stored)
    value = {(s.condition, s.metric): s.value for s in stored.samples
             if s.strategy == "mmap-lazy"}
    flat_bytes = value[("-", "model_file_bytes")]
    cold, warm = "cold cache volume", "warm cache volume"
    # Every start answered the reference rows exactly (the trial checks it) ...
    assert (cold, "model_ready_s") in value and (warm, "model_ready_s") in value
    # ... the cold one from pages fetched for it, and the file then filled in whole ...
    assert 0 < value[(cold, "paged_first_bytes")] <= flat_bytes
    assert value[(cold, "paged_first_requests")] >= 1
    # No GET failed on an unshaped link: recorded, and none asked again (tests/test_paged_file.py
    # fails them on purpose).
    assert value[(cold, "paged_range_retries")] == 0
    assert value[(cold, "paged_fill_bytes")] >= flat_bytes
    assert value[(cold, "file_whole_s")] > 0
    # ... the warm one from the volume the cold one filled: nothing fetched.
    assert value[(warm, "paged_first_bytes")] == 0 and value[(warm, "paged_fill_bytes")] == 0
    assert_nothing_labelled(engine)
