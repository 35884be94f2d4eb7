"""modelcar's model container on the real engine: the volume it fills carries its run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.engine import RUN_LABEL, Engine
from bench.host.paths import DOCKER_DIR
from bench.measure.trial import ModelContainer
from strategies.base import MODEL_NAME_IN_REPO

from .test_end_to_end import assert_nothing_labelled


@pytest.mark.beside
def test_a_model_container_fills_a_volume_labelled_with_its_run(
        engine: Engine, tmp_path: Path) -> None:
    """Creating a container of a model image fills a volume with the image's model. That
    volume used to be the anonymous one the image's VOLUME makes, with no label: the tests
    compared the engine's unlabelled volumes before and after, which another lane's modelcar
    start would break, and `clean` could not tell whose it was."""
    payload = b"model bytes " * 1000
    context = tmp_path / "context"
    context.mkdir()
    shutil.copyfile(DOCKER_DIR / "Dockerfile.modelcar", context / "Dockerfile")
    (context / MODEL_NAME_IN_REPO).write_bytes(payload)
    run_id = f"model-container-{tmp_path.name}"
    labels = {RUN_LABEL: run_id}
    tag = f"mlbench-test-modelcar:{tmp_path.name.lower()}"
    engine.build(context, "Dockerfile", tag, labels, builder="legacy", no_cache=True)
    try:
        model = ModelContainer.create(engine, tag, f"mlbench-{run_id}", labels)
        try:
            volumes = [m for m in engine.container_inspect(model.id)["Mounts"]
                       if m["Type"] == "volume"]
            assert [m["Destination"] for m in volumes] == ["/models"]
            assert engine.labelled(f"{RUN_LABEL}={run_id}")["volumes"] == [volumes[0]["Name"]]
            # Filled from the image, as the VOLUME alone filled it.
            assert model.volume_bytes(engine) == len(payload)
        finally:
            engine.remove_container(model.id)
    finally:
        engine.remove_image(tag, every_name=True)
    assert_nothing_labelled(engine, run_id)
