"""The seed's other strategies end to end on the real engine with a real S3 server."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.engine import RUN_LABEL, ContainerSpec, Engine
from bench.model.source import ModelArtifact
from bench.results.store import StoredRun, load_run
from bench.run.cleanup import run_labels
from bench.run.runner import BenchmarkRun
from tests.conftest import require_both_builders
from tests.integration.test_end_to_end import assert_nothing_labelled, run_bench

pytestmark = pytest.mark.engine


def test_dockerignore_matrix_and_compressed_strategies(
        every_strategy: StoredRun, tiny_model: ModelArtifact) -> None:
    stored = every_strategy
    outcomes = stored.document["strategies"]
    assert {name: o["status"] for name, o in outcomes.items() if o["status"] != "ok"} == {}
    by = {(s.strategy, s.builder, s.metric): s.value for s in stored.samples}
    builders = stored.document["metadata"]["builders"]
    model_bytes = tiny_model.bytes
    for builder in builders:
        # The .dockerignore keeps the model out of the context and the image.
        assert 1_000 < by[("dockerignore", builder, "context_bytes")] < model_bytes
        assert by[("copyall-dockerignore", builder, "image_added_bytes")] < model_bytes
        # COPY . . without it puts the model into the image.
        assert by[("copyall", builder, "image_added_bytes")] >= model_bytes
    for codec in ("gzip9", "zstd9", "lz4"):
        name = f"compressed-{codec}"
        assert 0 < by[(name, "-", "compression_ratio")] < 1
        assert by[(name, "-", "model_file_bytes")] < model_bytes
        # Lazy: the first prediction pays the load, which the service measured.
        first = [s.value for s in stored.samples if s.strategy == name
                 and s.metric == "first_predict_s"]
        load = [s.value for s in stored.samples if s.strategy == name and s.metric == "load_s"]
        assert first and load and first[0] >= load[0]
    require_both_builders(builders)
    # The BuildKit cache entries this run added were counted (kept with --keep; a run
    # without it removes them: test_failing_strategies_are_recorded_and_the_run_goes_on).
    assert stored.document["metadata"]["build_cache"]["entries"] > 0


def test_registry_downloads_once_verifies_and_keeps_credentials_out_of_the_image(
        every_run: EveryStrategy, tiny_model: ModelArtifact, tmp_path: Path,
        runtime_ref: str) -> None:
    run, stored = every_run.run, every_run.stored
    assert stored.document["strategies"]["registry"]["status"] == "ok"
    registry_samples = [s for s in stored.samples if s.strategy == "registry"]
    cold = {s.metric for s in registry_samples if s.condition == "cold cache volume"}
    warm = {s.metric for s in registry_samples if s.condition == "warm cache volume"}
    assert {"download_s", "download_mb_per_s", "verify_s", "model_ready_s"} <= cold
    assert "download_s" not in warm and "model_ready_s" in warm  # reused the cached copy
    assert any(s.metric == "upload_s" for s in registry_samples)
    # Memory split (found: the cgroup figure counted the downloaded file's page cache as
    # RAM): the file just written sits in the page cache, apart from the anonymous memory.
    values = {(s.condition, s.metric): s.value for s in registry_samples}
    assert values[("cold cache volume", "mem_page_cache_bytes")] >= tiny_model.bytes
    assert 0 < values[("cold cache volume", "mem_anon_bytes")] <= values[
        ("cold cache volume", "mem_working_set_bytes")]
    # The host's boto3 reference of the same object was measured in the same run.
    assert values[("-", "reference_download_mb_per_s")] > 0

    (registry,) = [s for s in run.strategies if s.name == "registry"]
    endpoint = registry._endpoint  # type: ignore[attr-defined]
    secrets = [endpoint.access_key, endpoint.secret_key]
    images = subprocess.run(
        ["docker", "images", "--filter", f"label=mlbench.run={run.run_id}", "--format",
         "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True, check=True
    ).stdout.split()
    service_images = [i for i in images if i.startswith("mlbench-registry-")]
    assert service_images
    for image in service_images:
        history = subprocess.run(["docker", "history", "--no-trunc", image],
                                 capture_output=True, text=True, check=True).stdout
        config = subprocess.run(["docker", "image", "inspect", image], capture_output=True,
                                text=True, check=True).stdout
        files = own_layer_files(image, runtime_ref, tmp_path / "image.tar")
        assert files, "the strategy's own layers hold no file: nothing was scanned"
        for secret in secrets:
            assert secret not in history and secret not in config
            for name, content in files.items():
                assert secret.encode() not in content, name


def own_layer_files(image: str, runtime_image: str, saved: Path) -> dict[str, bytes]:
    """Every file in the layers the strategy adds on top of the runtime image, read through
    tarfile (each layer compressed or not, as `docker save` and the image store write it),
    so a scan finds a secret in a file whatever the layer's encoding, and reads only the
    strategy's own layers (not the 600 MB runtime, copied whole into memory before)."""
    import json

    runtime_layers = int(subprocess.run(
        ["docker", "image", "inspect", "--format", "{{len .RootFS.Layers}}", runtime_image],
        capture_output=True, text=True, check=True).stdout)
    subprocess.run(["docker", "save", "-o", str(saved), image], check=True)
    found: dict[str, bytes] = {}
    with tarfile.open(saved) as outer:
        manifest = outer.extractfile("manifest.json")
        assert manifest is not None
        layers = json.load(manifest)[0]["Layers"]
        assert len(layers) > runtime_layers
        for layer in layers[runtime_layers:]:
            blob = outer.extractfile(layer)
            assert blob is not None
            with tarfile.open(fileobj=blob, mode="r:*") as inner:
                for member in inner.getmembers():
                    handle = inner.extractfile(member)
                    if handle is not None:
                        found[f"{layer}:{member.name}"] = handle.read()
    return found


@dataclass(frozen=True)
class EveryStrategy:
    run: BenchmarkRun
    stored: StoredRun
    volumes_before: set[str]


def _volumes() -> set[str]:
    """The engine's volumes that carry no run label: a run makes none (modelcar's model
    volumes carry the run's labels: tests/integration/test_model_container.py), and none may
    be left. Labelled ones are checked by their run (the other engine lane's runs make theirs
    meanwhile)."""
    rows = subprocess.run(["docker", "volume", "ls", "--format",
                           '{{.Name}}|{{.Label "' + RUN_LABEL + '"}}'],
                          capture_output=True, text=True, check=True).stdout.split()
    return {name for name, _, run in (row.partition("|") for row in rows) if not run}


@pytest.fixture(scope="module")
def every_run(engine: Engine, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[EveryStrategy]:
    """One run of every default strategy (one trial, both builders where BuildKit is
    available, images kept for inspection), shared by every test of this module: one run
    instead of four (CI time). Its end: `bench clean` removes every image, container and
    volume it left, and the BuildKit cache it added is pruned."""
    from strategies import DEFAULT_STRATEGIES

    results = tmp_path_factory.mktemp("every-strategy")
    volumes_before, cache_before = _volumes(), set(engine.build_cache())
    # No warm-ups here (CI time: one start less per strategy); the warm-up path on the real
    # engine is test_baked_and_volume_measure_every_metric's.
    run = run_bench(engine, DEFAULT_STRATEGIES, results, trials=1, keep=True)
    yield EveryStrategy(run, load_run(results / run.run_id), volumes_before)
    cleaned = subprocess.run([sys.executable, "-m", "bench", "clean"], capture_output=True,
                             text=True, timeout=300)
    assert cleaned.returncode == 0, cleaned.stderr
    assert_nothing_labelled(engine)
    assert _volumes() <= volumes_before  # the volumes filled from the model image are gone
    added = [entry for entry in engine.build_cache() if entry not in cache_before]
    if added:  # kept with the images (--keep); a test run leaves none behind
        engine.prune_build_cache(added)


@pytest.fixture(scope="module")
def every_strategy(every_run: EveryStrategy) -> StoredRun:
    return every_run.stored


def test_every_catalogued_metric_is_produced_or_marked_optional(
        every_strategy: StoredRun) -> None:
    """The metric catalogue and the measurements cannot drift apart: a default run of every
    strategy produces every metric the catalogue does not mark optional (before,
    mem_cgroup_peak_bytes and server_uss_bytes were stored and shown nowhere, and
    rollout_bytes was defined and never produced)."""
    from bench.results.metrics import METRICS

    stored = every_strategy
    produced = {s.metric for s in stored.samples}
    not_measured = {entry["metric"] for outcome in stored.document["strategies"].values()
                    for entry in outcome["not_measured"]}
    required = {m.name for m in METRICS.values() if m.optional is None}
    assert required - produced - not_measured == set()


def test_mmap_strategies_map_the_flat_forest_and_serve_exact_predictions(
        every_strategy: StoredRun, tiny_model: ModelArtifact) -> None:
    """The flat forest is served from a read-only mount (without and with prefetch) and after
    a verified download; every start's first prediction was checked against the model's own
    predictions by the trial."""
    stored = every_strategy
    for name in ("mmap", "mmap-registry"):
        assert stored.document["strategies"][name]["status"] == "ok", stored.document[
            "strategies"][name]
    starts = {(s.strategy, s.condition) for s in stored.samples if s.metric == "model_ready_s"
              and s.strategy.startswith("mmap")}
    assert starts == {("mmap", "no prefetch"), ("mmap", "prefetch"),
                      ("mmap-registry", "cold cache volume"),
                      ("mmap-registry", "warm cache volume")}
    by = {(s.strategy, s.condition, s.metric): s.value for s in stored.samples}
    # Plain arrays take fewer bytes than the pickled forest.
    assert by[("mmap", "-", "model_file_bytes")] < tiny_model.bytes
    assert ("mmap-registry", "cold cache volume", "download_s") in by


def test_sharded_strategies_serve_the_same_predictions_from_disk_and_from_s3(
        every_strategy: StoredRun, tiny_model: ModelArtifact) -> None:
    stored = every_strategy
    by = {(s.strategy, s.metric): s.value for s in stored.samples}
    for name in ("sharded", "sharded-registry"):
        assert stored.document["strategies"][name]["status"] == "ok"
        # model_ready_s exists only once /predict returned the model's own predictions.
        assert (name, "model_ready_s") in by
    # Streamed from S3: every shard was downloaded (zstd: fewer bytes than the model) and
    # verified; nothing but the container layer stays on disk.
    assert 0 < by[("sharded-registry", "model_file_bytes")] < tiny_model.bytes
    assert by[("sharded-registry", "download_s")] > 0 and by[("sharded-registry", "verify_s")] > 0
    assert by[("sharded-registry", "disk_bytes")] < tiny_model.bytes


def test_modelcar_serves_from_a_read_only_volume_of_the_model_image(
        engine: Engine, every_run: EveryStrategy, tiny_model: ModelArtifact) -> None:
    """(The module's run ends with `bench clean`: the volumes filled from the model image
    go with it, which every_run checks.)"""
    run, stored = every_run.run, every_run.stored
    assert stored.document["strategies"]["modelcar"]["status"] == "ok"
    values = {s.metric: s.value for s in stored.samples if s.strategy == "modelcar"}
    assert values["model_container_create_s"] > 0
    assert values["model_image_bytes"] >= tiny_model.bytes
    # The node holds the model twice: in the model image and in the volume filled from it.
    assert values["disk_bytes"] >= 2 * tiny_model.bytes

    # With the kept images: a service mounting the model container's volumes reads the
    # model and cannot write there.
    labels = run_labels(run.run_id, keep=True)
    tag = run.run_id.lower()
    model = engine.create_container(ContainerSpec(
        f"mlbench-modelcar-model:{tag}-{tiny_model.sha256[:12]}", f"mlbench-{tag}-check-model",
        labels,
        container_port=None, command=["never-run"], hardened=False))
    service = engine.create_container(ContainerSpec(
        f"mlbench-modelcar-legacy:{tag}", f"mlbench-{tag}-check-service", labels,
        container_port=None, command=["python", "-c", "import time; time.sleep(120)"],
        volumes_from=[model]))
    engine.start_container(service)
    read = engine.exec_in(service, ["python", "-c",
                                    "print(len(open('/models/modelo_fifa.joblib','rb').read()))"])
    write = engine.exec_in(service, ["python", "-c", "open('/models/x', 'w')"])
    assert read == (0, f"{tiny_model.bytes}\n")
    assert write[0] != 0 and "Read-only file system" in write[1]



def test_every_strategy_ran_interleaved_with_its_own_cold_caches(
        every_strategy: StoredRun) -> None:
    """The default run on the real engine: interleaved, every cold cache volume really cold
    (its start downloaded the model: registry and mmap-registry share a round and must not
    share a cache), the warm starts' model files resident before the start (mincore), the
    canary stored, the A/A control measured."""
    import os

    stored = every_strategy
    plan = stored.document["metadata"]["plan"]
    assert plan["order"] == "interleaved" and plan["warmup"] is False
    measured = [s for s in stored.samples if s.metric == "model_ready_s"]
    names = {s.strategy for s in measured}
    assert {"volume", "volume-aa", "registry", "mmap-registry"} <= names
    for name in names:
        assert {(s.round, s.warmup) for s in measured if s.strategy == name} == {
            (1, False)}, name
    for name in ("registry", "mmap-registry"):
        downloads = {(s.condition, s.round) for s in stored.samples
                     if s.strategy == name and s.metric == "download_s"}
        assert downloads == {("cold cache volume", 1)}, name
    resident = {s.strategy: s.value for s in stored.samples
                if s.metric == "model_resident_fraction" and not s.warmup}
    if os.geteuid() == 0:  # the page cache is dropped and the model read back as root
        for name in ("volume", "volume-aa", "dockerignore", "baked", "mmap"):
            assert resident[name] == 1.0, name
    assert {s.metric for s in stored.samples if s.strategy == "machine"} == {
        "canary_cpu_s", "canary_read_s", "canary_memory_s", "round_steal_fraction",
        "round_iowait_fraction"}
    assert all(s.value > 0 for s in stored.samples if s.metric == "start_canary_memory_s")
    outcomes = stored.document["strategies"]
    assert outcomes["volume-aa"]["notes"]["aa_of"] == "volume"


def test_no_superseded_cold_image_is_left_on_the_node(every_run: EveryStrategy) -> None:
    """A warm build moves the tag to a new image; the cold one it replaced (at full size a
    second copy of the model for baked) is removed at once. The run kept its images: the
    only untagged images it could have are the cold builds it did not remove."""
    run_id = every_run.run.run_id
    tagged = subprocess.run(
        ["docker", "images", "-q", "--filter", f"label={RUN_LABEL}={run_id}"],
        capture_output=True, text=True, check=True).stdout.split()
    dangling = subprocess.run(
        ["docker", "images", "-q", "--filter", f"label={RUN_LABEL}={run_id}",
         "--filter", "dangling=true"], capture_output=True, text=True, check=True).stdout.split()
    assert tagged  # the kept images are there to look at
    assert dangling == []
