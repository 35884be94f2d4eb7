"""The service's S3 download against a real S3 server (rclone serve s3 on loopback)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.host.fsutil import write_atomic
from bench.servers.s3 import S3Endpoint, publish_model, start_local_server
from tests.conftest import load_service

# Rates and time budgets: measured apart from the engine's tests (xdist group).
pytestmark = [pytest.mark.timing, pytest.mark.beside]

KEY, SECRET = "AKIDMLBENCHTEST00001", "testsecrettestsecrettestsecret0001"


@pytest.fixture
def s3_server(tmp_path: Path) -> Iterator[S3Endpoint]:
    yield from _serve(tmp_path)


def _serve(tmp_path: Path) -> Iterator[S3Endpoint]:
    (tmp_path / "s3").mkdir()
    process, url = start_local_server(tmp_path / "s3", KEY, SECRET)
    load_service({})  # the service package, imported as in the image
    yield S3Endpoint(url, url, KEY, SECRET, None)
    process.terminate()
    process.wait(timeout=10)


def download(endpoint: S3Endpoint, destination: Path, pin: str, tmp_path: Path,
             downloader: str = "ranged", on_bytes: Any = None) -> Any:
    from backend.s3_download import ensure_downloaded

    credentials = tmp_path / "credentials"
    # Replaced whole: replicas call this at once, and must never read a half-written file.
    write_atomic(credentials, f"AWS_ACCESS_KEY_ID={KEY}\nAWS_SECRET_ACCESS_KEY={SECRET}\n")
    return ensure_downloaded(endpoint=endpoint.host_url, bucket="models", key="m.joblib",
                             destination=str(destination), pinned_sha256=pin,
                             credentials_file=str(credentials), concurrency=4,
                             chunk_bytes=256 * 1024, downloader=downloader,
                             **({"on_bytes": on_bytes} if on_bytes else {}))


@pytest.mark.parametrize("downloader", ["ranged", "boto3"])
def test_the_bytes_told_as_they_arrive_add_up_to_the_object(
        s3_server: S3Endpoint, tmp_path: Path, downloader: str) -> None:
    """What the progress bar of an in-container download is drawn from (/ready's 503)."""
    payload = tmp_path / "model.bin"
    payload.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    sha = hashlib.sha256(payload.read_bytes()).hexdigest()
    publish_model(s3_server, "models", "m.joblib", payload, sha)
    told: list[tuple[int, int]] = []
    download(s3_server, tmp_path / "cache" / "m.joblib", sha, tmp_path, downloader,
             on_bytes=lambda received, total: told.append((received, total)))
    assert len(told) > 1  # in blocks, as they arrive
    assert sum(received for received, _ in told) == payload.stat().st_size
    assert {total for _, total in told} == {payload.stat().st_size}


def test_ranged_download_is_verified_and_cached(s3_server: S3Endpoint, tmp_path: Path) -> None:
    payload = tmp_path / "model.bin"
    payload.write_bytes(bytes(range(256)) * 10_000)  # 2.56 MB: several ranged GETs
    sha = hashlib.sha256(payload.read_bytes()).hexdigest()
    publish_model(s3_server, "models", "m.joblib", payload, sha)
    target = tmp_path / "cache" / "m.joblib"
    first = download(s3_server, target, sha, tmp_path)
    assert first.downloaded and target.read_bytes() == payload.read_bytes()  # type: ignore[attr-defined]
    second = download(s3_server, target, sha, tmp_path)
    assert not second.downloaded  # type: ignore[attr-defined]


@pytest.mark.parametrize("downloader", ["ranged", "boto3"])
def test_a_download_that_does_not_match_the_pin_is_refused(
        s3_server: S3Endpoint, tmp_path: Path, downloader: str) -> None:
    payload = tmp_path / "model.bin"
    payload.write_bytes(b"tampered" * 1000)
    publish_model(s3_server, "models", "m.joblib", payload, "0" * 64)
    from backend.s3_download import IntegrityError

    target = tmp_path / "cache" / "m.joblib"
    with pytest.raises(IntegrityError, match="does not match pinned"):
        download(s3_server, target, "1" * 64, tmp_path, downloader)
    # Neither the model nor its partial download (the real name: <target>.partial) is left.
    assert not target.exists()
    assert sorted(p.name for p in target.parent.iterdir()) == ["m.joblib.lock"]


def test_replicas_sharing_a_cache_download_once_and_a_dead_holder_never_blocks(
        s3_server: S3Endpoint, tmp_path: Path) -> None:
    import sys
    import threading

    payload = tmp_path / "model.bin"
    payload.write_bytes(bytes(range(256)) * 20_000)
    sha = hashlib.sha256(payload.read_bytes()).hexdigest()
    publish_model(s3_server, "models", "m.joblib", payload, sha)
    target = tmp_path / "shared" / "m.joblib"
    target.parent.mkdir()
    # A downloader that took the lock and was killed -9 mid-download.
    holder = subprocess.Popen([sys.executable, "-c",
                               "import fcntl, os, sys, time; "
                               f"fd = os.open({str(target) + '.lock'!r}, os.O_RDWR | os.O_CREAT); "
                               "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); "
                               "time.sleep(600)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    (target.parent / "m.joblib.partial").write_bytes(b"half a download")
    holder.kill()
    holder.wait()
    reports: list[Any] = []

    def replica() -> None:
        reports.append(download(s3_server, target, sha, tmp_path))

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [r.downloaded for r in reports].count(True) == 1
    assert len(reports) == 4
    assert hashlib.sha256(target.read_bytes()).hexdigest() == sha
