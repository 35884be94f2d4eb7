"""bench.micro.lazy_exact on the tiny model: mmap-lazy's paged reader, served by a real S3
server on loopback, predicts unseen rows as scikit-learn does. No engine, no page cache: it
runs beside the unit tests."""

from __future__ import annotations

from bench.micro import lazy_exact
from bench.model.source import ModelArtifact
from bench.progress import Progress
from datos.synthetic_fifa import generate


def test_pages_fetched_from_a_real_s3_store_predict_as_scikit_learn_does(
        tiny_model: ModelArtifact) -> None:
    """bench.micro.lazy_exact on the tiny model: the rows are players it never saw."""
    rows = generate(n_players=300, seed=lazy_exact.ROWS_SEED).features
    found = lazy_exact.compare(tiny_model.path, tiny_model.sha256, rows, 0.5, Progress())
    for when in ("half_filled", "whole"):
        assert found[when]["equal_to_sklearn"] and found[when]["rows_differing"] == 0
    assert found["whole"]["present_before"] == 1.0 and found["whole"]["demand_requests"] == 0
