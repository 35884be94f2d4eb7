"""bench.micro.flat_profile on the tiny model's flat file: the walk it traces and the pages
it counts, and (as root) the cold first prediction."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from bench.host import page_cache
from bench.host.paths import cache_dir
from bench.micro import flat_profile
from bench.model.flat_forest import convert
from bench.model.source import ModelArtifact

# The page cache is the host's: dropped here, it would be dropped under the engine's tests.
pytestmark = pytest.mark.page_cache


def test_the_profile_traces_every_tree_and_counts_pages_of_the_file(
        tiny_model: ModelArtifact) -> None:
    flat = convert(tiny_model.path, tiny_model.sha256, cache_dir(), "test-flat-profile")
    one = flat_profile.profile(flat.path, tiny_model.reference_rows[:1])
    trees = int(tiny_model.details["n_estimators"])
    assert one["rows"] == 1 and one["trees"] == trees
    # A row walks every tree from its root: at least one visit a tree, one pass a level.
    assert one["node_visits"] >= trees and one["passes"] >= 1
    assert 1 <= one["pages_touched"] <= math.ceil(flat.bytes / flat_profile.PAGE)
    # One record a node never touches more pages than one array per field.
    assert one["pages_touched"] <= one["pages_touched_one_array_per_field"]
    many = flat_profile.profile(flat.path, tiny_model.reference_rows)
    assert many["node_visits"] > one["node_visits"]


@pytest.mark.skipif(not page_cache.can_drop(), reason="--cold drops the page cache: root only")
def test_the_cold_first_prediction_reads_the_file_back_from_disk(
        tiny_model: ModelArtifact, tmp_path: Path) -> None:
    flat = convert(tiny_model.path, tiny_model.sha256, cache_dir(), "test-flat-profile")
    # A copy no other test maps: a page another process maps survives the drop (the cached
    # flat file is shared with the tests running beside this one).
    alone = tmp_path / flat.path.name
    shutil.copyfile(flat.path, alone)
    found = flat_profile.cold(alone, tiny_model.reference_rows[:1])
    assert set(found) == {"readahead", "madv_random"}
    for runs in found.values():
        assert len(runs) == flat_profile.COLD_REPEATS
        # After the drop the prediction read its pages from disk: this process's own major
        # faults (the machine's page cache moves with whatever runs beside the test).
        assert all(run["major_faults"] >= 1 for run in runs)
