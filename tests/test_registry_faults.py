"""The registry download under faults, against a real S3 server (rclone serve s3 on
loopback): the model is either downloaded whole and verified, or the download fails with a
one-line reason; never a partial or unverified file left in the cache; retries bounded and
counted; client errors (403, 404) not retried."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.host.fsutil import write_atomic
from bench.servers.s3 import S3Endpoint, publish_model, start_local_server

# Rates and time budgets: measured apart from the engine's tests (xdist group).
pytestmark = [pytest.mark.timing, pytest.mark.beside]

KEY, SECRET = "AKIDMLBENCHTEST00001", "testsecrettestsecrettestsecret0001"


class Server:
    """rclone serve s3 on a fixed port, which a test can kill and start again."""

    def __init__(self, root: Path, *extra: str) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.root, self.extra = root, extra
        (root / "s3").mkdir(exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        self.process, _ = start_local_server(self.root / "s3", KEY, SECRET, *self.extra,
                                             port=self.port)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    @property
    def endpoint(self) -> S3Endpoint:
        return S3Endpoint(self.url, self.url, KEY, SECRET, None)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path)
    yield running
    running.kill()


@pytest.fixture
def slow_server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path, "--bwlimit", "256K")  # 256 KiB/s
    yield running
    running.kill()


def publish_random(endpoint: S3Endpoint, tmp_path: Path, size: int) -> tuple[Path, str]:
    """`size` random bytes published as models/m.joblib with their SHA-256."""
    payload = tmp_path / "model.bin"
    payload.write_bytes(os.urandom(size))
    sha = hashlib.sha256(payload.read_bytes()).hexdigest()
    publish_model(endpoint, "models", "m.joblib", payload, sha)
    return payload, sha


def download(module: Any, endpoint: S3Endpoint, url: str, tmp_path: Path, pin: str, *,
             secret: str | None = None, key: str = "m.joblib", bucket: str = "models",
             budget_s: float = 60.0, downloader: str = "ranged",
             chunk_bytes: int = 256 * 1024) -> Any:
    """The service's own download of models/m.joblib into tmp_path/cache/m."""
    credentials = tmp_path / "credentials"
    write_atomic(credentials, f"AWS_ACCESS_KEY_ID={endpoint.access_key}\n"
                              f"AWS_SECRET_ACCESS_KEY={secret or endpoint.secret_key}\n")
    return module.ensure_downloaded(
        endpoint=url, bucket=bucket, key=key, destination=str(tmp_path / "cache" / "m"),
        pinned_sha256=pin, credentials_file=str(credentials), concurrency=2,
        chunk_bytes=chunk_bytes, downloader=downloader, budget_s=budget_s)


def _publish(server: Server, tmp_path: Path, size: int) -> tuple[Path, str]:
    return publish_random(server.endpoint, tmp_path, size)


def _download(module: Any, server: Server, tmp_path: Path, pin: str, **options: Any) -> Any:
    return download(module, server.endpoint, server.url, tmp_path, pin, **options)


def _cache_holds_nothing_but_the_lock(tmp_path: Path) -> None:
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["m.lock"]


# Both downloaders: the service's default is boto3, and the README's fault table states the
# recovery for both (the retry path after a restart ran only for the hand-written one).
@pytest.mark.parametrize("downloader", ["ranged", "boto3"])
def test_a_server_killed_mid_download_and_restarted_delivers_the_pinned_model(
        s3_download: Any, tmp_path: Path, fault_table: Any, downloader: str) -> None:
    running = Server(tmp_path, "--bwlimit", "1M")
    started = time.monotonic()
    try:
        payload, sha = _publish(running, tmp_path, 3 * 1024 * 1024)  # about 3 s at 1 MiB/s
        outcome: dict[str, Any] = {}

        def download() -> None:
            try:
                outcome["report"] = _download(s3_download, running, tmp_path, sha,
                                              downloader=downloader)
            except Exception as error:  # handed to the assertion below
                outcome["error"] = error

        thread = threading.Thread(target=download)
        thread.start()
        time.sleep(1.0)
        running.kill()  # mid-download
        time.sleep(0.5)
        running.start()
        thread.join(timeout=120)
    finally:
        running.kill()
    assert "error" not in outcome, outcome.get("error")
    report = outcome["report"]
    assert report.downloaded and report.retries >= 1
    assert (tmp_path / "cache" / "m").read_bytes() == payload.read_bytes()
    fault_table(f"server killed mid-download, restarted 0.5 s later ({downloader})",
                "pinned model downloaded and verified", time.monotonic() - started,
                str(report.retries))


@pytest.mark.parametrize("downloader", ["ranged", "boto3"])
def test_a_server_slower_than_the_budget_fails_in_time_and_leaves_nothing(
        s3_download: Any, slow_server: Server, tmp_path: Path, downloader: str,
        fault_table: Any) -> None:
    _payload, sha = _publish(slow_server, tmp_path, 4 * 1024 * 1024)  # 16 s at 256 KiB/s
    started = time.monotonic()
    with pytest.raises(s3_download.DownloadFailed, match="time budget of 2 s") as failure:
        _download(s3_download, slow_server, tmp_path, sha, budget_s=2.0,
                  downloader=downloader)
    assert time.monotonic() - started < 10
    _cache_holds_nothing_but_the_lock(tmp_path)
    _record_failure(fault_table, f"server at 256 KiB/s, 4 MiB, 2 s budget ({downloader})",
                    failure.value, started)


@pytest.mark.parametrize("downloader", ["ranged", "boto3"])
def test_an_object_truncated_after_the_pin_is_never_loaded(
        s3_download: Any, server: Server, tmp_path: Path, fault_table: Any,
        downloader: str) -> None:
    payload, sha = _publish(server, tmp_path, 1024 * 1024)
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(payload.read_bytes()[:300_000])
    publish_model(server.endpoint, "models", "m.joblib", truncated, sha)  # same pin, fewer bytes
    started = time.monotonic()
    with pytest.raises(s3_download.IntegrityError, match="does not match pinned") as failure:
        _download(s3_download, server, tmp_path, sha, downloader=downloader)
    _cache_holds_nothing_but_the_lock(tmp_path)
    _record_failure(fault_table, f"object truncated after the pin was taken ({downloader})",
                    failure.value, started)


@pytest.mark.parametrize(("case", "status"), [("wrong credentials", 403),
                                               ("missing object", 404),
                                               ("missing bucket", 404)])
def test_client_errors_fail_at_once_with_the_status(
        s3_download: Any, server: Server, tmp_path: Path, case: str, status: int,
        fault_table: Any) -> None:
    _payload, sha = _publish(server, tmp_path, 64 * 1024)
    arguments = {"wrong credentials": {"secret": "rotated" + SECRET[7:]},
                 "missing object": {"key": "no-such-model.joblib"},
                 "missing bucket": {"bucket": "no-such-bucket"}}[case]
    started = time.monotonic()
    with pytest.raises(s3_download.DownloadFailed,
                       match=f"HTTP {status}.*after 0 retries") as failure:
        _download(s3_download, server, tmp_path, sha, **arguments)
    assert time.monotonic() - started < 5  # not retried: a retry cannot fix a 4xx
    _cache_holds_nothing_but_the_lock(tmp_path)
    _record_failure(fault_table, f"{case} (HTTP {status})", failure.value, started)


def _record_failure(fault_table: Any, case: str, error: BaseException, started: float) -> None:
    """A failed case's row: the one-line reason, and the retries it names."""
    retries = re.search(r"after (\d+) retr", str(error))
    fault_table(case, f"refused: {str(error).splitlines()[0][:90]}",
                time.monotonic() - started, retries.group(1) if retries else "0")
