"""The Kubernetes manifests are valid against the Kubernetes schemas and as hardened as the
Docker runs (no cluster runs here: see docker/k8s/README.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.conftest import project_path

MANIFESTS = sorted(project_path("docker", "k8s").glob("*.yaml"))
KUBERNETES_VERSION = "1.31"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("path", MANIFESTS, ids=[p.name for p in MANIFESTS])
def test_manifest_is_valid_kubernetes(path: Path) -> None:
    for document in documents(path):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_a_broken_manifest_is_caught() -> None:
    (deployment,) = documents(project_path("docker", "k8s", "volume.yaml"))
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("path", [p for p in MANIFESTS if p.name != "service.yaml"],
                         ids=lambda p: p.name)
def test_every_deployment_is_hardened_and_probed(path: Path) -> None:
    (deployment,) = documents(path)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert "memory" in container["resources"]["limits"]
        for mount in container["volumeMounts"]:
            if mount["name"] in ("models", "s3-credentials"):
                assert mount["readOnly"] is True
