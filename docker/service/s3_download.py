"""Download the model from an S3-compatible registry with concurrent ranged GETs.

The file is written under a temporary name and renamed only after its SHA-256 matches the
pinned value, so a half download or a tampered object is never loaded (joblib.load executes
code). Transient errors are retried with exponential backoff.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("service.download")

ATTEMPTS = 5


class IntegrityError(RuntimeError):
    """The downloaded bytes do not match the pinned SHA-256."""


@dataclass(frozen=True)
class DownloadReport:
    downloaded: bool
    bytes: int
    download_s: float
    verify_s: float


def _credentials(credentials_file: str) -> dict[str, str]:
    if credentials_file:
        pairs: dict[str, str] = {}
        with open(credentials_file, encoding="utf-8") as handle:
            for line in handle:
                key, _, value = line.strip().partition("=")
                if key:
                    pairs[key] = value
        return {
            "aws_access_key_id": pairs["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": pairs["AWS_SECRET_ACCESS_KEY"],
        }
    return {}  # boto3 falls back to AWS_* environment variables


def _client(endpoint: str, credentials_file: str) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": ATTEMPTS, "mode": "standard"},
        max_pool_connections=64,
        s3={"addressing_style": "path"},
        # A ranged GET may carry the whole object's checksum header (rclone does): boto3 >= 1.36
        # would reject every range. Integrity is the pinned SHA-256 of the whole file instead.
        response_checksum_validation="when_required",
        request_checksum_calculation="when_required",
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=config,
        **_credentials(credentials_file),
    )


def _with_retries(action: Any, what: str) -> Any:
    delay = 0.2
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return action()
        except Exception as error:  # botocore raises many types; all are retried the same way
            if attempt == ATTEMPTS:
                raise
            log.warning("%s failed (%s), retry %d/%d in %.1fs", what, error, attempt, ATTEMPTS, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def _exclusive(lock_path: str) -> Iterator[None]:
    """An flock held until the block ends; closing the file (or dying) releases it."""
    import fcntl

    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure_downloaded(
    *,
    endpoint: str,
    bucket: str,
    key: str,
    destination: str,
    pinned_sha256: str,
    credentials_file: str,
    concurrency: int,
    chunk_bytes: int,
) -> DownloadReport:
    """Make ``destination`` hold the verified object, downloading it only when needed.

    Replicas sharing a cache volume take an exclusive flock first: one downloads, the others
    wait and then find the verified file. The kernel drops the lock when its holder dies, so
    a crashed downloader never blocks the others (its partial file is simply replaced)."""
    if not pinned_sha256:
        raise IntegrityError("MODEL_SHA256 is not set: refusing to download an unpinned model")
    os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
    with _exclusive(f"{destination}.lock"):
        if os.path.exists(destination):
            started = time.perf_counter()
            if sha256_of(destination) == pinned_sha256:
                return DownloadReport(False, os.path.getsize(destination), 0.0,
                                      time.perf_counter() - started)
            log.warning("cached model at %s does not match the pin; downloading again", destination)
            os.unlink(destination)

        client = _client(endpoint, credentials_file)
        head = _with_retries(lambda: client.head_object(Bucket=bucket, Key=key), "HEAD")
        size = int(head["ContentLength"])
        partial = f"{destination}.partial"  # only the lock holder writes it
        started = time.perf_counter()
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, size)

            def fetch(offset: int) -> None:
                end = min(offset + chunk_bytes, size) - 1
                response = _with_retries(
                    lambda: client.get_object(Bucket=bucket, Key=key, Range=f"bytes={offset}-{end}"),
                    f"GET bytes {offset}-{end}",
                )
                body = response["Body"]
                position = offset
                while data := body.read(1024 * 1024):
                    os.pwrite(fd, data, position)
                    position += len(data)
                if position != end + 1:
                    raise OSError(f"short read for range {offset}-{end}: got {position - offset} bytes")

            with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
                list(pool.map(fetch, range(0, size, chunk_bytes)))
            os.fsync(fd)
        finally:
            os.close(fd)
        download_s = time.perf_counter() - started

        verify_started = time.perf_counter()
        actual = sha256_of(partial)
        verify_s = time.perf_counter() - verify_started
        if actual != pinned_sha256:
            os.unlink(partial)
            raise IntegrityError(
                f"downloaded model sha256 {actual} does not match pinned {pinned_sha256}; not loaded"
            )
        os.replace(partial, destination)
        return DownloadReport(True, size, download_s, verify_s)


def object_reader(*, endpoint: str, bucket: str, prefix: str, credentials_file: str) -> Any:
    """A function name -> bytes of the object prefix/name (one GET, retried): what the sharded
    loader reads shards with. Integrity is checked by the caller against its manifest."""
    client = _client(endpoint, credentials_file)

    def read(name: str) -> bytes:
        key = f"{prefix}/{name}" if prefix else name
        data: bytes = _with_retries(
            lambda: client.get_object(Bucket=bucket, Key=key)["Body"].read(), f"GET {key}")
        return data

    return read
