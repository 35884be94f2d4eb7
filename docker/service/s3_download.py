"""Download the model from an S3-compatible registry with concurrent ranged GETs.

The file is written under a temporary name and renamed only after its SHA-256 matches the
pinned value, so a half download or a tampered object is never loaded (joblib.load executes
code), and the temporary file is removed on every failure, so none is ever left in the cache.
Transient errors (connection lost, server errors, timeouts) are retried with exponential
backoff, a bounded number of times and within the download's time budget, and counted;
a client error (403 wrong credentials, 404 no such object or bucket) fails at once: retrying
cannot fix it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("service.download")

ATTEMPTS = 5
DEFAULT_BUDGET_S = 3600.0
# HTTP statuses of a client error that a retry can fix (timeout, too many requests).
RETRYABLE_CLIENT_STATUSES = (408, 429)


class IntegrityError(RuntimeError):
    """The downloaded bytes do not match the pinned SHA-256."""


class DownloadFailed(RuntimeError):
    """The download could not complete: the reason, and the retries it took, in one line."""


class _Attempts:
    """Retries with exponential backoff, counted, bounded in number and by a deadline."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline  # time.monotonic() value
        self.retries = 0
        self._lock = threading.Lock()
        self.cancelled = threading.Event()  # another range failed for good: stop this one

    def check_deadline(self, budget_s: float) -> None:
        if self.cancelled.is_set():
            raise DownloadFailed("cancelled: another part of the download failed")
        if time.monotonic() > self.deadline:
            raise DownloadFailed(f"download exceeded its time budget of {budget_s:.0f} s "
                                 f"(after {self.retries} retries)")

    def run(self, action: Any, what: str, budget_s: float) -> Any:
        delay = 0.2
        for attempt in range(1, ATTEMPTS + 1):
            self.check_deadline(budget_s)
            try:
                return action()
            except (IntegrityError, DownloadFailed):
                raise
            except Exception as error:  # botocore raises many types; see _retryable
                if attempt == ATTEMPTS or not _retryable(error):
                    raise DownloadFailed(f"{what} failed: {_reason(error)} (after "
                                         f"{self.retries} retries)") from error
                with self._lock:
                    self.retries += 1
                log.warning("%s failed (%s), retry %d/%d in %.1fs", what, _reason(error),
                            attempt, ATTEMPTS, delay)
                time.sleep(min(delay, max(0.0, self.deadline - time.monotonic())))
                delay *= 2
        raise AssertionError("unreachable")


def _status(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status else None
    return None


def _retryable(error: BaseException) -> bool:
    status = _status(error)
    return status is None or status >= 500 or status in RETRYABLE_CLIENT_STATUSES


def _reason(error: BaseException) -> str:
    status = _status(error)
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return f"HTTP {status}: {text}" if status else f"{type(error).__name__}: {text}"


@dataclass(frozen=True)
class DownloadReport:
    """What one ensure_downloaded did. The transfer is timed alone: from the first ranged GET
    sent to the last byte written (epoch seconds, so the harness can place it on its
    timeline); client setup (import, client, HEAD) and verification are apart."""

    downloaded: bool
    bytes: int
    client_setup_s: float
    transfer_start: float
    transfer_end: float
    verify_s: float  # hashing left after the last byte (the rest overlapped the transfer)
    retries: int = 0  # transient failures retried on the way

    @property
    def download_s(self) -> float:
        return self.transfer_end - self.transfer_start


def credentials_of(credentials_file: str) -> dict[str, str]:
    """A credentials file's keys as boto3's client arguments (presign.py signs with them too);
    none without a file."""
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


def _client(endpoint: str, credentials_file: str, budget_s: float = DEFAULT_BUDGET_S) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        # Retries are ours (_Attempts): counted, bounded by the budget, none on a 4xx.
        retries={"total_max_attempts": 1, "mode": "standard"},
        # A read stuck on a dead link ends within the budget, not 60 s later (the budget is
        # checked as bytes arrive, and no bytes arrive on a dead link).
        connect_timeout=min(10.0, budget_s), read_timeout=min(60.0, budget_s),
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
        **credentials_of(credentials_file),
    )


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
    downloader: str = "boto3",
    budget_s: float = DEFAULT_BUDGET_S,
    on_bytes: Callable[[int, int], None] = lambda _received, _total: None,
) -> DownloadReport:
    """Make ``destination`` hold the verified object, downloading it only when needed;
    ``on_bytes(received, total)`` is told each block's bytes as they arrive (progress).

    Replicas sharing a cache volume take an exclusive flock first: one downloads, the others
    wait and then find the verified file. The kernel drops the lock when its holder dies, so
    a crashed downloader never blocks the others (its partial file is simply replaced).

    ``downloader`` "ranged" is this module's concurrent ranged GETs with the SHA-256 computed
    while the bytes arrive; "boto3" is boto3's own transfer manager (download_file with the
    same concurrency and chunk), hashed after the transfer. Both are kept so that the
    benchmark can measure them against each other on the same server."""
    if not pinned_sha256:
        raise IntegrityError("MODEL_SHA256 is not set: refusing to download an unpinned model")
    os.makedirs(os.path.dirname(destination) or ".", exist_ok=True)
    with _exclusive(f"{destination}.lock"):
        if os.path.exists(destination):
            started = time.perf_counter()
            if sha256_of(destination) == pinned_sha256:
                return DownloadReport(False, os.path.getsize(destination), 0.0, 0.0, 0.0,
                                      time.perf_counter() - started)
            log.warning("cached model at %s does not match the pin; downloading again", destination)
            os.unlink(destination)

        attempts = _Attempts(time.monotonic() + budget_s)
        setup_started = time.perf_counter()
        client = _client(endpoint, credentials_file, budget_s)
        head = attempts.run(lambda: client.head_object(Bucket=bucket, Key=key),
                            f"HEAD s3://{bucket}/{key}", budget_s)
        size = int(head["ContentLength"])
        client_setup_s = time.perf_counter() - setup_started
        partial = f"{destination}.partial"  # only the lock holder writes it
        try:
            if downloader == "boto3":
                report = _download_with_transfer_manager(
                    client, bucket, key, size, partial, pinned_sha256, concurrency,
                    chunk_bytes, attempts, budget_s, lambda received: on_bytes(received, size))
            else:
                report = _download_ranged(client, bucket, key, size, partial, pinned_sha256,
                                          concurrency, chunk_bytes, attempts, budget_s,
                                          lambda received: on_bytes(received, size))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(partial)  # never a partial file left in the cache
            raise
        os.replace(partial, destination)
        return DownloadReport(True, size, client_setup_s, report.transfer_start,
                              report.transfer_end, report.verify_s, attempts.retries)


def _download_ranged(client: Any, bucket: str, key: str, size: int, partial: str,
                     pinned_sha256: str, concurrency: int, chunk_bytes: int,
                     attempts: _Attempts, budget_s: float,
                     on_bytes: Callable[[int], None]) -> DownloadReport:
    """Concurrent ranged GETs into ``partial``, hashed while the bytes arrive; a range that
    fails midway is fetched again from its start."""
    fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, size)
        hasher = _InOrderHasher(fd, size, chunk_bytes)

        def fetch(offset: int) -> None:
            end = min(offset + chunk_bytes, size) - 1

            def attempt() -> None:
                response = client.get_object(Bucket=bucket, Key=key,
                                             Range=f"bytes={offset}-{end}")
                body = response["Body"]
                position = offset
                while data := body.read(1024 * 1024):
                    attempts.check_deadline(budget_s)
                    os.pwrite(fd, data, position)
                    on_bytes(len(data))
                    position += len(data)
                if position != end + 1:
                    raise OSError(f"short read for range {offset}-{end}: got "
                                  f"{position - offset} bytes")

            attempts.run(attempt, f"GET bytes {offset}-{end}", budget_s)
            hasher.chunk_written(offset)

        hasher.start()
        transfer_start = time.time()
        pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
        try:
            list(pool.map(fetch, range(0, size, chunk_bytes)))
        except BaseException:
            # The first range that failed for good ends the download: the queued ranges are
            # dropped and the ones in flight stop at their next read.
            attempts.cancelled.set()
            pool.shutdown(wait=True, cancel_futures=True)
            hasher.abandon()
            raise
        pool.shutdown()
        transfer_end = time.time()
        actual = hasher.result()  # the tail the hasher had not reached yet
        verify_s = time.time() - transfer_end
        os.fsync(fd)
    finally:
        os.close(fd)
    if actual != pinned_sha256:
        raise IntegrityError(
            f"downloaded model sha256 {actual} does not match pinned {pinned_sha256}; not loaded"
        )
    return DownloadReport(True, size, 0.0, transfer_start, transfer_end, verify_s)


def _download_with_transfer_manager(
    client: Any, bucket: str, key: str, size: int, partial: str, pinned_sha256: str,
    concurrency: int, chunk_bytes: int, attempts: _Attempts, budget_s: float,
    on_bytes: Callable[[int], None],
) -> DownloadReport:
    from boto3.s3.transfer import TransferConfig

    # num_download_attempts=1: the transfer manager would retry a timed-out read 5 times on
    # its own, past the budget and uncounted; the retries are ours (attempts).
    config = TransferConfig(multipart_threshold=chunk_bytes, multipart_chunksize=chunk_bytes,
                            max_concurrency=max(1, concurrency), num_download_attempts=1)
    transfer_start = time.time()
    # The transfer manager calls back as bytes arrive: the budget is checked there (raising
    # in the callback cancels the transfer).
    # A failed transfer (a read timed out on a dead link, the server restarted) starts
    # again, counted and within the budget, like a failed range of the ranged downloader.
    def arrived(received: int) -> None:
        attempts.check_deadline(budget_s)
        on_bytes(received)

    attempts.run(lambda: client.download_file(bucket, key, partial, Config=config,
                                              Callback=arrived),
                 f"GET s3://{bucket}/{key}", budget_s)
    transfer_end = time.time()
    actual = sha256_of(partial)
    verify_s = time.time() - transfer_end
    if os.path.getsize(partial) != size or actual != pinned_sha256:
        raise IntegrityError(
            f"downloaded model sha256 {actual} does not match pinned {pinned_sha256}; not loaded")
    return DownloadReport(True, size, 0.0, transfer_start, transfer_end, verify_s)


class _InOrderHasher:
    """SHA-256 of a file being written out of order by ranged GETs, computed while the bytes
    arrive: a thread hashes the written prefix as soon as it is contiguous, reading it back
    from the page cache, so only the last chunks are left to hash when the transfer ends
    (instead of re-reading the whole file afterwards: 4.9 s at 5.41 GB here)."""

    def __init__(self, fd: int, size: int, chunk_bytes: int) -> None:
        self._fd, self._size, self._chunk = fd, size, chunk_bytes
        self._written: set[int] = set()
        self._condition = threading.Condition()
        self._abandoned = False
        self._digest = hashlib.sha256()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def chunk_written(self, offset: int) -> None:
        with self._condition:
            self._written.add(offset)
            self._condition.notify()

    def abandon(self) -> None:
        with self._condition:
            self._abandoned = True
            self._condition.notify()
        self._thread.join()

    def result(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._digest.hexdigest()

    def _run(self) -> None:
        try:
            for offset in range(0, self._size, self._chunk):
                with self._condition:
                    while offset not in self._written and not self._abandoned:
                        self._condition.wait()
                    if self._abandoned:
                        return
                end = min(offset + self._chunk, self._size)
                position = offset
                while position < end:
                    data = os.pread(self._fd, min(8 * 1024 * 1024, end - position), position)
                    if not data:
                        raise OSError(f"short read at {position} while hashing")
                    self._digest.update(data)
                    position += len(data)
        except BaseException as error:  # handed to result()
            self._error = error


def object_reader(*, endpoint: str, bucket: str, prefix: str, credentials_file: str) -> Any:
    """A function name -> bytes of the object prefix/name (one GET, retried): what the sharded
    loader reads shards with. Integrity is checked by the caller against its manifest."""
    client = _client(endpoint, credentials_file)
    attempts = _Attempts(time.monotonic() + DEFAULT_BUDGET_S)

    def read(name: str) -> bytes:
        key = f"{prefix}/{name}" if prefix else name
        data: bytes = attempts.run(
            lambda: client.get_object(Bucket=bucket, Key=key)["Body"].read(), f"GET {key}",
            DEFAULT_BUDGET_S)
        return data

    return read
