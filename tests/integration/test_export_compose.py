"""An exported project, as a user would run it: Debian's docker-compose brings the profile
up from the exported folder, and the service answers with the model's own predictions."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from bench.export import export
from bench.measure.probes import predictions_match
from bench.model.source import ModelArtifact

pytestmark = pytest.mark.skipif(shutil.which("docker-compose") is None,
                                reason="needs docker-compose (apt-get install docker-compose)")


@pytest.mark.parametrize("strategy", ["compressed-gzip9"])  # a mount and a codec: the most parts
def test_an_exported_project_comes_up_with_docker_compose_and_predicts(
        engine: object, runtime_ref: str, tiny_model: ModelArtifact, tmp_path: Path,
        strategy: str) -> None:
    folder = tmp_path / "project"
    export(strategy, folder, tiny_model.path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # The runtime Dockerfile needs the package index; the harness's runtime image is the
    # same dependencies, built offline.
    env = {**os.environ, "RUNTIME_IMAGE": runtime_ref, "PORT": str(port),
           "COMPOSE_PROJECT_NAME": f"mlbenchexport{secrets.token_hex(3)}"}
    compose = ["docker-compose", "--profile", strategy]
    up = subprocess.run([*compose, "up", "-d", "--build"], cwd=folder, env=env,
                        capture_output=True, text=True, timeout=600)
    try:
        assert up.returncode == 0, up.stderr[-2000:]
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        answer = requests.post(f"{url}/predict", json={"rows": tiny_model.reference_rows},
                               timeout=60)
        assert answer.status_code == 200, answer.text
        assert predictions_match(answer.json()["predictions"], tiny_model.reference_predictions)
    finally:
        down = subprocess.run([*compose, "down", "-v", "--rmi", "all"], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=300)
        assert down.returncode == 0, down.stderr[-2000:]
