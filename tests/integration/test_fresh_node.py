"""A fresh node and a rollout on the real engine, with a real OCI registry (distribution,
Debian's docker-registry) and a real S3 model store, on tiny models."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.engine import RUN_LABEL, Engine
from bench.measure.fresh_node import FreshNode
from bench.measure.spec import StartSpec
from bench.model.source import ModelArtifact
from bench.results.store import load_run
from bench.servers.oci_registry import start_oci_registry
from bench.servers.s3 import start_rclone_server
from tests.integration.scoped import scoped_run
from tests.integration.test_end_to_end import assert_nothing_labelled, failures_of, run_bench

pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(shutil.which("docker-registry") is None,
                       reason="needs Debian's docker-registry (apt-get install docker-registry)"),
]


@pytest.fixture
def servers(engine: Engine, runtime_ref: str, tmp_path: Path) -> Iterator[FreshNode]:
    with scoped_run(engine, "freshnode") as (run_id, labels):
        network = f"mlbench-{run_id}"
        engine.create_network(network, labels)
        registry = start_oci_registry(engine, runtime_ref, run_id, network, labels)
        store = start_rclone_server(engine, runtime_ref, run_id, network, dict(labels),
                                    alias="modelstore")
        yield FreshNode(engine, registry, store, "models", tmp_path, run_id)


@pytest.mark.beside
def test_a_fresh_node_pulls_an_image_it_did_not_hold_and_fetches_the_model_files(
        engine: Engine, servers: FreshNode, runtime_ref: str, tmp_path: Path) -> None:
    # An image of its own on top of the runtime (a layer of 3 MB of random bytes), and a
    # model file for a bind mount.
    context = tmp_path / "context"
    context.mkdir()
    (context / "payload").write_bytes(secrets.token_bytes(3_000_000))
    (context / "Dockerfile").write_text("ARG RUNTIME_IMAGE\nFROM ${RUNTIME_IMAGE}\n"
                                        "COPY payload /app/payload\n")
    # Removed by its label at the end: after the pulls the engine knows it by its digest only.
    with scoped_run(engine, "freshnode-img") as (image_run, labels):
        tag = f"mlbench-freshnode-test:{secrets.token_hex(3)}"
        engine.build(context, "Dockerfile", tag, labels, builder="legacy", no_cache=True,
                     build_args={"RUNTIME_IMAGE": runtime_ref})
        model = tmp_path / "model.joblib"
        model.write_bytes(secrets.token_bytes(500_000))
        from bench.engine import BindMount

        start = StartSpec("-", model_binds=[BindMount(str(model), "/app/model.joblib")])
        pinned = servers.pin(tag, "mlbench-freshnode-test")
        assert pinned.push.bytes is not None and pinned.push.bytes >= 3_000_000
        assert engine.image_inspect(pinned.ref) is not None  # on the node before
        ref, rewritten, fetch = servers.provision(tag, start, "t1")
        assert ref == pinned.ref and fetch.images_absent_before
        assert engine.image_inspect(ref) is not None  # and pulled again
        # What crossed the registry's link: at least the layer (gzip cannot shrink random
        # bytes), not the runtime layers the node kept.
        assert fetch.pull_bytes is not None
        assert 3_000_000 <= fetch.pull_bytes < engine.image_bytes(runtime_ref)
        # Checked against the registry's own account of the image: the manifest's size of
        # its top layer (the one the node lacked), plus the manifest, the config and HTTP.
        layer = _top_layer_bytes(pinned.ref)
        assert layer <= fetch.pull_bytes <= layer * 1.05 + 256 * 1024
        (bind,) = rewritten.model_binds
        assert Path(bind.source).read_bytes() == model.read_bytes()
        assert Path(bind.source) != model and fetch.fetch_bytes == model.stat().st_size
        assert fetch.started[0] < fetch.pulled_at <= fetch.fetched_at
        servers.release(fetch)
        assert not Path(bind.source).exists()
        # The next start names the image as the strategy does, though the node now knows it
        # by its digest only: a fresh node again.
        _ref, _start, again = servers.provision(tag, start, "t1b")
        assert again.images_absent_before and again.pull_bytes is not None
        assert again.pull_bytes >= 3_000_000
        servers.release(again)
        # A reference already on the node (a running version, in a rollout) is kept.
        _ref, _start, kept = servers.provision(pinned.ref, StartSpec("-"), "t2",
                                               on_node={pinned.ref})
        assert kept.pull_s == 0 and kept.pull_bytes == 0
    assert engine.labelled(f"{RUN_LABEL}={image_run}")["images"] == []


def _top_layer_bytes(ref: str) -> int:
    """The compressed size of an image's last layer, as its manifest in the registry says."""
    import requests

    address, _, digest = ref.partition("@")
    host, _, repository = address.partition("/")
    manifest = requests.get(f"http://{host}/v2/{repository}/manifests/{digest}", timeout=10,
                            headers={"Accept": "application/vnd.docker.distribution."
                                               "manifest.v2+json"}).json()
    return int(manifest["layers"][-1]["size"])


def test_fresh_node_starts_and_a_rollout_to_the_next_version(
        engine: Engine, tiny_model: ModelArtifact, tmp_path: Path) -> None:
    strategies = ("baked", "volume", "registry", "modelcar")
    run = run_bench(engine, strategies, tmp_path, builders=("legacy",), fresh_node=True,
                    rollout=True)
    stored = load_run(tmp_path / run.run_id)
    assert stored.document["status"] == "complete", failures_of(stored)
    # The next version: the synthetic model of the same size, seed + 1.
    assert run.next_version.details["target_bytes"] == tiny_model.details["target_bytes"]
    assert run.next_version.details["seed"] == tiny_model.details["seed"] + 1
    assert run.next_version.reference_predictions != tiny_model.reference_predictions
    samples = stored.samples
    for name in strategies:
        mine = [s for s in samples if s.strategy == name]
        starts = {s.condition for s in mine if s.metric == "model_ready_s"}
        assert starts and all("fresh node" in c for c in starts), starts
        assert "warm cache volume, fresh node" not in starts  # a fresh node has no cache
        value = {(s.condition, s.metric): s.value for s in mine}
        for condition in starts:
            # The clock ran from provisioning: the start includes its pull and fetch.
            assert value[(condition, "pull_bytes")] > 0
            assert value[(condition, "model_ready_s")] > (
                value[(condition, "pull_s")] + value[(condition, "node_fetch_s")])
            assert value[(condition, "at_container_start_s")] >= value[(condition,
                                                                        "at_pull_end_s")]
        # The rollout ended with the next version's predictions (the start checks them).
        assert value[("-", "rollout_s")] > 0
        assert value[("-", "rollout_bytes")] > 0
        assert "rollout" in stored.document["strategies"][name]["notes"]
    by = {(s.strategy, s.condition, s.metric): s.value for s in samples}
    # A model in the image travels in the pull (gzip-compressed, as the registry stores
    # layers); a mounted one is copied to the node, byte for byte.
    assert by[("baked", "fresh node", "pull_bytes")] > by[("volume", "fresh node",
                                                           "pull_bytes")]
    assert by[("volume", "fresh node", "node_fetch_bytes")] == tiny_model.bytes
    assert "node_fetch_bytes" not in {s.metric for s in samples if s.strategy == "baked"
                                      and s.value > 0}
    assert by[("modelcar", "model image", "push_s")] > 0
    # The volume rollout copies the new file up to the store and down to the node.
    assert by[("volume", "-", "rollout_bytes")] >= 2 * run.next_version.bytes
    assert_nothing_labelled(engine)


@pytest.mark.beside
def test_a_fresh_node_pulls_from_a_registry_the_harness_did_not_start(
        engine: Engine, tiny_model: ModelArtifact, tmp_path: Path) -> None:
    """--oci-registry HOST:PORT: the user's registry (here distribution run on the host, as
    a team's own registry would be). The run pushes to it and pulls from it by digest,
    leaves it running, and says it cannot count the bytes of a link it does not own."""
    import socket
    import subprocess
    import time

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "registry.yml"
    config.write_text("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: "
                      f"{tmp_path / 'storage'}\nhttp:\n  addr: 127.0.0.1:{port}\n")
    registry = subprocess.Popen([str(shutil.which("docker-registry")), "serve", str(config)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://{address}/v2/", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        run = run_bench(engine, ("volume",), tmp_path / "results", builders=("legacy",),
                        fresh_node=True, oci_registry=address)
        stored = load_run(tmp_path / "results" / run.run_id)
        assert stored.document["status"] == "complete", failures_of(stored)
        value = {s.metric: s.value for s in stored.samples if s.strategy == "volume"
                 and s.condition == "fresh node"}
        assert value["pull_s"] > 0 and value["model_ready_s"] > value["pull_s"]
        unmeasured = {e["metric"] for e in stored.document["strategies"]["volume"][
            "not_measured"]}
        assert "pull_bytes" in unmeasured and "pull_bytes" not in value
        catalog = requests.get(f"http://{address}/v2/_catalog", timeout=5).json()
        assert any("volume" in name for name in catalog["repositories"]), catalog
        assert registry.poll() is None  # still serving: the run did not stop it
        assert_nothing_labelled(engine)
    finally:
        registry.terminate()
        registry.wait(timeout=30)
