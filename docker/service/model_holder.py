"""Holds the model and the story of how it was loaded.

One load at a time (single flight): concurrent first requests of a lazy service wait on the
lock for the load already under way instead of loading again. Every phase is stamped with
wall-clock epoch seconds so the harness can draw a start-up timeline against container start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import joblib

from .codecs_io import open_model_stream
from .s3_download import IntegrityError, ensure_downloaded, object_reader, sha256_of
from .settings import Settings

log = logging.getLogger("service.model")


def import_model_libraries(model_format: str) -> None:
    """scikit-learn's estimators are imported at start-up, as any real service does: otherwise
    the first unpickle pays about a second of imports and load_s would not scale with the
    model. The flat forest needs numpy only (a Pipeline's pinned preprocessing imports what it
    needs when it is unpickled): leaving out scikit-learn and SciPy keeps each process's
    private memory small, and that is what --workers and --replicas multiply."""
    if model_format != "flat":
        import sklearn.ensemble
        import sklearn.pipeline  # noqa: F401


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


class ModelHolder:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.story = LoadStory()
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def failed(self) -> bool:
        return self.story.error is not None

    def get(self) -> Any:
        """Return the model, loading it first if nobody has (single flight)."""
        if self._model is not None:
            return self._model
        with self._lock:
            if self._model is None and self.story.error is None:
                self._load_locked()
            if self._model is None:
                raise RuntimeError(self.story.error or "model not loaded")
            return self._model

    def note_request(self) -> None:
        if self._model is None:
            self.story.requests_before_loaded += 1

    def load_in_background(self) -> None:
        threading.Thread(target=self._load_quietly, name="model-loader", daemon=True).start()

    def _load_quietly(self) -> None:
        with contextlib.suppress(Exception):  # recorded in story.error and logged
            self.get()

    def _load_locked(self) -> None:
        settings = self.settings
        try:
            if settings.model_format == "sharded":
                self._load_sharded(settings)
                return
            if settings.model_format == "flat":
                self._load_flat(settings)
                return
            if settings.downloads:
                self._download(settings)
            elif settings.pinned_sha256:
                self._verify_local(settings)
            self.story.load_start = time.time()
            log.info("loading model %s (codec %s)", settings.model_path, settings.codec)
            if settings.load_delay_s:  # tests only: a load long enough to watch the probe
                time.sleep(settings.load_delay_s)
            with open_model_stream(settings.model_path, settings.codec) as stream:
                model = joblib.load(stream)
            self.story.load_end = time.time()
            self.story.load_count += 1
            if not hasattr(model, "predict"):
                raise TypeError(f"{type(model).__name__} has no predict(): not a model")
            self._model = model
            log.info("model loaded in %.2fs", self.story.load_end - self.story.load_start)
        except Exception as error:
            self.story.error = f"{type(error).__name__}: {error}"
            log.error("model load failed: %s", self.story.error)
            raise

    def _load_flat(self, settings: Settings) -> None:
        """Map the flat forest: no unpickling, no copy. A download is verified whole against
        its pin before it is mapped; a local read-only mount is trusted, as volume's is."""
        from .flat_forest import open_model

        if settings.downloads:
            self._download(settings)
        self.story.load_start = time.time()
        log.info("mapping flat forest %s (prefetch %s)", settings.model_path, settings.prefetch)
        model = open_model(settings.model_path, verify=False, prefetch=settings.prefetch)
        self.story.load_end = time.time()
        self.story.load_count += 1
        self._model = model
        log.info("flat forest mapped in %.4fs", self.story.load_end - self.story.load_start)

    def _load_sharded(self, settings: Settings) -> None:
        from .sharded import ShardedLoadReport, load_sharded, local_reader

        if settings.downloads:
            if not settings.pinned_sha256:
                raise IntegrityError("MODEL_SHA256 is not set: refusing an unpinned download")
            read = object_reader(endpoint=settings.s3_endpoint, bucket=settings.s3_bucket,
                                 prefix=os.path.dirname(settings.s3_key),
                                 credentials_file=settings.s3_credentials_file)
        else:
            read = local_reader(os.path.dirname(settings.model_path))
        report = ShardedLoadReport()
        self.story.load_start = time.time()
        log.info("loading sharded model from %s", settings.s3_key or settings.model_path)
        model = load_sharded(read, settings.pinned_sha256, report)
        self.story.load_end = time.time()
        self.story.load_count += 1
        self.story.verify_s = report.verify_s if report.verify else None
        self.story.verified_sha256 = settings.pinned_sha256 or None
        if settings.downloads:  # overlapped with the load: the timeline shows both
            self.story.download_start = report.read_start
            self.story.download_end = report.read_end
            self.story.downloaded = True
            self.story.download_bytes = report.bytes_read
            self.story.download_active_s = report.read_active_s
        self._model = model
        log.info("sharded model (%d shards) loaded in %.2fs", report.shards,
                 self.story.load_end - self.story.load_start)

    def _download(self, settings: Settings) -> None:
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
            on_bytes=self._download_progress,
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

    def _download_progress(self, received: int, total: int) -> None:
        self.story.download_received_bytes += received  # approximate across threads: a bar
        self.story.download_total_bytes = total

    def _verify_local(self, settings: Settings) -> None:
        started = time.perf_counter()
        actual = sha256_of(settings.model_path)
        self.story.verify_s = time.perf_counter() - started
        if actual != settings.pinned_sha256:
            raise IntegrityError(f"model sha256 {actual} does not match pinned {settings.pinned_sha256}")
        self.story.verified_sha256 = actual

    def describe(self) -> dict[str, Any]:
        model = self._model
        info: dict[str, Any] = {
            "loaded": model is not None,
            "loading": self.settings.loading,
            "codec": self.settings.codec,
            "model_path": self.settings.model_path,
            "model_sha256": self.story.verified_sha256,
            "story": self.story.__dict__,
        }
        if self.story.load_start is not None and self.story.load_end is not None:
            info["load_s"] = self.story.load_end - self.story.load_start
        if model is not None:
            info["model_class"] = type(model).__name__
            info["n_features"] = expected_features(model)
            names = getattr(model, "feature_names_in_", None)
            info["feature_names"] = None if names is None else [str(n) for n in names]
        return info


def expected_features(model: Any) -> int | None:
    """Feature count of any fitted scikit-learn estimator or pipeline."""
    count = getattr(model, "n_features_in_", None)
    if count is None and hasattr(model, "steps"):
        count = getattr(model.steps[0][1], "n_features_in_", None)
    return None if count is None else int(count)


def feature_names(model: Any) -> list[str] | None:
    """The names the model was fitted with (a DataFrame's columns), if any."""
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(name) for name in names]


def first_step(model: Any) -> Any:
    """The estimator that sees the request's values first (a Pipeline's first step)."""
    return model.steps[0][1] if hasattr(model, "steps") else model


def compares_in_float32(estimator: Any) -> bool:
    """Trees (scikit-learn's and the flat forest) cast their input to float32: a finite
    float64 beyond its range becomes inf there. A linear model takes any finite float64."""
    module = type(estimator).__module__
    return module.startswith(("sklearn.tree", "sklearn.ensemble._forest",
                              "sklearn.ensemble._gb")) or module.endswith("flat_forest")
