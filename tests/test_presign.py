"""mmap-lazy's presigned URLs (docker/service/presign.py): signed without boto3 where the
credentials are keys, accepted by a real S3 server (rclone serve s3) for the object and a
range of it, refused with a wrong secret or another key, and boto3 not imported on that path
(its import is the time the signer saves)."""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from bench.host.paths import SERVICE_DIR, service_package
from bench.servers.s3 import publish_model
from tests.test_registry_faults import KEY, SECRET, Server

BODY = os.urandom(10_000)


def _presign() -> ModuleType:
    service_package()  # docker/service as the package `backend`, as the image imports it
    return importlib.import_module("backend.presign")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path)
    blob = tmp_path / "blob"
    blob.write_bytes(BODY)
    publish_model(running.endpoint, "models", "m/blob", blob, hashlib.sha256(BODY).hexdigest())
    yield running
    running.kill()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}),
                                    timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def test_a_url_signed_here_gets_the_object_and_a_wrong_one_is_refused(store: Server) -> None:
    presign = _presign()

    def url(secret: str, key: str = "m/blob") -> str:
        return str(presign.signed_url(store.url, "models", key, KEY, secret,
                                      region="us-east-1", expires_s=600))

    assert _get(url(SECRET)) == (200, BODY)
    status, part = _get(url(SECRET), {"Range": "bytes=4096-8191"})
    assert status in (200, 206) and part == BODY[4096:8192]
    assert _get(url(SECRET + "x"))[0] == 403
    signed = url(SECRET)
    assert _get(signed.replace("/m/blob?", "/m/blub?"))[0] in (403, 404)


def test_keys_from_a_credentials_file_sign_without_importing_boto3(
        store: Server, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(f"AWS_ACCESS_KEY_ID={KEY}\nAWS_SECRET_ACCESS_KEY={SECRET}\n")
    script = (
        "import sys, urllib.request\n"
        f"sys.path.insert(0, {str(SERVICE_DIR.parent)!r})\n"
        "from service.presign import presigned_get\n"
        f"url = presigned_get({store.url!r}, 'models', 'm/blob', {str(credentials)!r}, "
        "expires_s=600)\n"
        "body = urllib.request.urlopen(url, timeout=10).read()\n"
        "print(len(body), 'boto3' in sys.modules, 'botocore' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": ""})
    assert done.stdout.split() == [str(len(BODY)), "False", "False"]
