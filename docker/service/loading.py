"""Loading a model, one loader module per MODEL_FORMAT: `load_<format>.py` declares the
libraries it imports at start-up (LIBRARIES) and `load(steps)`, which returns the model and
stamps the load on the story. The steps loaders share (download, verify) are here, so a new
format is one module and nothing else names it.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from types import ModuleType

from .s3_download import IntegrityError, ensure_downloaded, sha256_of
from .settings import Settings


@dataclass
class LoadStory:
    process_start: float = field(default_factory=time.time)
    server_up: float | None = None  # the server accepts connections from here on
    client_setup_s: float | None = None  # import boto3, client, HEAD: not part of the transfer
    download_start: float | None = None  # first ranged GET sent
    download_end: float | None = None  # last byte written
    # Seconds with bytes in flight between the two (a streamed load pauses its reads while it
    # unpickles); None when the transfer never paused.
    download_active_s: float | None = None
    downloaded: bool | None = None
    download_bytes: int | None = None
    download_retries: int = 0  # transient failures the download retried (bounded)
    verify_s: float | None = None
    load_start: float | None = None
    load_end: float | None = None
    load_count: int = 0
    error: str | None = None
    verified_sha256: str | None = None
    # HTTP requests the service received before its model could serve: the harness's probe
    # must stay a small fraction of what it measures (tests bound this count).
    requests_before_loaded: int = 0
    # A download under way: bytes received so far (a retried block counts again) and in all,
    # shown in /ready's 503 so the harness can draw a progress bar without reading logs.
    download_received_bytes: int = 0
    download_total_bytes: int | None = None


def loader_for(model_format: str) -> ModuleType:
    """The module that loads MODEL_FORMAT (`load_<format>.py` beside this one)."""
    if not model_format.isidentifier():
        raise ValueError(f"MODEL_FORMAT={model_format!r} is not a format name")
    try:
        return importlib.import_module(f".load_{model_format}", __package__)
    except ModuleNotFoundError:
        raise ValueError(f"no loader for MODEL_FORMAT={model_format!r} (a load_{model_format}.py "
                         "beside the service)") from None


@dataclass
class LoadSteps:
    """What a loader works with: the settings, the story it stamps, and the shared steps."""

    settings: Settings
    story: LoadStory

    def download(self) -> None:
        """Fetch MODEL_PATH from S3 (once: a warm cache is verified and kept), verified against
        its pin."""
        settings = self.settings
        report = ensure_downloaded(
            endpoint=settings.s3_endpoint,
            bucket=settings.s3_bucket,
            key=settings.s3_key,
            destination=settings.model_path,
            pinned_sha256=settings.pinned_sha256,
            credentials_file=settings.s3_credentials_file,
            concurrency=settings.download_concurrency,
            chunk_bytes=settings.download_chunk_bytes,
            downloader=settings.downloader,
            budget_s=settings.download_budget_s,
            on_bytes=self._progress,
        )
        if report.downloaded:  # epoch stamps of the transfer alone (setup and verify apart)
            self.story.download_start = report.transfer_start
            self.story.download_end = report.transfer_end
            self.story.client_setup_s = report.client_setup_s
        self.story.downloaded = report.downloaded
        self.story.download_retries = report.retries
        self.story.download_bytes = report.bytes
        self.story.verify_s = report.verify_s
        self.story.verified_sha256 = settings.pinned_sha256

    def _progress(self, received: int, total: int) -> None:
        self.story.download_received_bytes += received  # approximate across threads: a bar
        self.story.download_total_bytes = total

    def verify_local(self) -> None:
        """A local file pinned by MODEL_SHA256: hashed before it is loaded."""
        settings = self.settings
        started = time.perf_counter()
        actual = sha256_of(settings.model_path)
        self.story.verify_s = time.perf_counter() - started
        if actual != settings.pinned_sha256:
            raise IntegrityError(f"model sha256 {actual} does not match pinned {settings.pinned_sha256}")
        self.story.verified_sha256 = actual
