"""MODEL_FORMAT=flat_lazy: serve the flat forest before it has arrived. Only the pinned page
manifest is downloaded whole (16 bytes a page: 4.7 MB for the 1.2 GB forest of 5.45 GB);
then the header and the small arrays (the roots, a classifier's class fractions come page by
page as its leaves need them) are fetched, and the service is ready. Each pass of a
prediction fetches the pages of its nodes that are missing, all at once (paged_file.py), and
a background fill brings the rest until the file is whole and local. The cache volume keeps
the pages and their marks: a restarted service fetches only what it lacks."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

import numpy as np

from .flat_forest import FlatForest, FlatModel, leaf_rows_array, read_header
from .loading import LoadSteps, LoadStory
from .page_manifest import MANIFEST_SUFFIX, PAGE, Manifest
from .paged_file import RANGE_ATTEMPTS, FetchMany, PagedFile, PageUnavailable, Received
from .presign import presigned_get
from .range_pipeline import RangeConnection, UnexpectedAnswer

log = logging.getLogger("service.model")

LIBRARIES: tuple[str, ...] = ()  # numpy only, as flat's


def load(steps: LoadSteps) -> Any:
    settings, story = steps.settings, steps.story
    if not settings.downloads or not settings.pinned_sha256:
        raise ValueError("MODEL_FORMAT=flat_lazy needs S3_BUCKET, S3_KEY and the manifest's "
                         "MODEL_SHA256")
    manifest = _pinned_manifest(settings, story)
    story.load_start = time.time()
    model = paged_model(settings, manifest)
    story.load_end = time.time()
    model.paged.start_fill()
    log.info("serving %s on demand: %d pages, %d present", settings.model_path,
             manifest.pages, int(np.count_nonzero(model.paged.present)))
    return model


# A ranged GET of the whole manifest asks this much: an S3 server answers a range that runs
# past the object's end with the bytes there are (RFC 9110, section 14.1.2).
MANIFEST_RANGE = 1 << 40


def _pinned_manifest(settings: Any, story: LoadStory) -> Manifest:
    """The page manifest, from the cache volume if it is there and matches MODEL_SHA256, else
    one GET of its presigned URL (no boto3: presign.py), verified, written whole."""
    from .s3_download import IntegrityError

    path = settings.model_path + MANIFEST_SUFFIX
    story.verified_sha256 = settings.pinned_sha256
    if os.path.exists(path):
        with open(path, "rb") as handle:
            data = handle.read()
        if hashlib.sha256(data).hexdigest() == settings.pinned_sha256:
            story.downloaded, story.download_bytes = False, len(data)
            return Manifest.parse(data)
        log.warning("cached manifest at %s does not match the pin; fetching it again", path)
    started = time.perf_counter()
    fetch = _UrlSigner(settings, settings.s3_key + MANIFEST_SUFFIX).fetcher()
    story.client_setup_s = time.perf_counter() - started
    story.download_start = time.time()
    got: list[bytes] = []
    for attempt in range(1, RANGE_ATTEMPTS + 1):
        try:
            fetch([(0, MANIFEST_RANGE)], lambda _index, body: got.append(body))
            break
        except OSError as error:  # a time-out, a reset; an HTTP error is final
            story.download_retries += 1
            if attempt == RANGE_ATTEMPTS:
                raise PageUnavailable(f"the page manifest could not be fetched: "
                                      f"{type(error).__name__}: {error}") from None
    story.download_end = time.time()
    data = got[0]
    actual = hashlib.sha256(data).hexdigest()
    if actual != settings.pinned_sha256:
        raise IntegrityError(f"page manifest sha256 {actual} does not match pinned "
                             f"{settings.pinned_sha256}")
    partial = f"{path}.partial-{os.getpid()}"  # replicas sharing the volume: one name each
    with open(partial, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)
    story.downloaded, story.download_bytes = True, len(data)
    return Manifest.parse(data)


def paged_model(settings: Any, manifest: Manifest) -> PagedFlatModel:
    """The model over a paged copy at MODEL_PATH whose pages come from the store S3_* names,
    header and whole arrays fetched, its fill not started (the micro tools build it here too:
    bench/micro/lazy_exact.py, fuse_pages.py)."""
    signer = _UrlSigner(settings, settings.s3_key)
    # Connections of their own for requests' pages and for the fill (a thread's each).
    paged = PagedFile(settings.model_path, manifest, signer.fetcher(), signer.fetcher(),
                      connections=settings.page_connections, budget_s=settings.page_budget_s)
    return PagedFlatModel(open_paged_forest(paged), paged)


class _UrlSigner:
    """Ranged GETs of one object's presigned URL (SigV4, presign.py; signed again well before
    it expires), pipelined on a persistent connection of each calling thread
    (range_pipeline.py). A prediction of the 5.45 GB forest asks thousands of ranges, so a
    request's CPU decides its time: boto3's get_object cost 4.2 ms a request against this S3
    server, a plain GET 2.1 ms (rclone's own share included): botocore signs and parses every
    call, a presigned URL once."""

    LIFETIME_S = 3600

    def __init__(self, settings: Any, key: str) -> None:
        self._settings, self._key = settings, key
        self._lock = threading.Lock()
        self._url, self._signed_at = urllib.parse.urlsplit(""), -float("inf")

    def url(self) -> urllib.parse.SplitResult:
        with self._lock:
            if time.monotonic() - self._signed_at > self.LIFETIME_S / 2:
                settings = self._settings
                self._url = urllib.parse.urlsplit(presigned_get(
                    settings.s3_endpoint, settings.s3_bucket, self._key,
                    settings.s3_credentials_file, expires_s=self.LIFETIME_S))
                self._signed_at = time.monotonic()
            return self._url

    def fetcher(self) -> FetchMany:
        """A FetchMany whose every calling thread keeps one connection (a PagedFile's pool
        of N threads: N connections)."""
        budget = float(self._settings.page_budget_s)
        local = threading.local()

        def fetch_many(ranges: Sequence[tuple[int, int]], received: Received) -> None:
            url = self.url()
            held: RangeConnection | None = getattr(local, "connection", None)
            if held is None:
                held = local.connection = RangeConnection(url.scheme, url.hostname or "",
                                                          url.port, timeout=budget)

            def answered(index: int, status: int, body: bytes) -> None:
                if status not in (200, 206):  # rclone answers a range with 200
                    offset, length = ranges[index]
                    raise PageUnavailable(f"the model store answered HTTP {status} for "
                                          f"bytes {offset}-{offset + length - 1}")
                received(index, body)  # PagedFile checks the length and every page

            try:
                held.get(f"{url.path}?{url.query}", url.netloc, ranges, answered)
            except UnexpectedAnswer as error:
                raise PageUnavailable(f"the model store's answer: {error}") from None
        return fetch_many


# Small arrays every prediction reads whole (each tree's root; a boosting model's column of
# each tree); the others are gathered a pass at a time (FlatForest's touch).
WHOLE_ARRAYS = frozenset({"roots", "tree_column"})


def open_paged_forest(paged: PagedFile) -> FlatForest:
    """The forest over a paged file: its header and whole arrays fetched now, every other
    page when a gather is about to read it."""
    paged.ensure(np.arange(1))  # the header's length is in the first page
    with open(paged.path, "rb") as handle:
        head = handle.read(16)
    header_end = 16 + int.from_bytes(head[8:16], "little")
    paged.ensure(np.arange((header_end + PAGE - 1) // PAGE))
    header = read_header(paged.path)
    if header.get("preprocessing"):
        raise ValueError("flat_lazy serves one file; this forest has a preprocessing pickle "
                         "beside it: use MODEL_FORMAT=flat")
    arrays = header["arrays"]
    for whole in WHOLE_ARRAYS & arrays.keys():  # read whole by every prediction: now
        spec = arrays[whole]
        paged.ensure_bytes(np.asarray([int(spec["offset"])]), max(1, _nbytes(spec)))
    # Where element i of each gathered array lives in the file, for the predictor's touch.
    spans = {name: (int(spec["offset"]), element_bytes(spec))
             for name, spec in arrays.items() if name in ("nodes", leaf_rows_array(header))}

    def touch(name: str, indices: np.ndarray) -> None:
        offset, itemsize = spans[name]
        paged.ensure_bytes(offset + indices.astype(np.int64) * itemsize, itemsize)

    return FlatForest.open(paged.path, touch=touch)


class PagedFlatModel(FlatModel):
    """The flat model over a paged file: what it fetched, and what before its first answer."""

    def __init__(self, forest: FlatForest, paged: PagedFile) -> None:
        super().__init__(forest)
        self.paged = paged
        self.at_first_prediction: dict[str, object] | None = None

    def predict(self, rows: Any) -> np.ndarray:
        with self.paged.demand():  # every pass of it before the fill's next chunk
            answer = super().predict(rows)
        if self.at_first_prediction is None:
            self.at_first_prediction = self.paged.snapshot()
        return answer

    def _predict_proba(self, rows: Any) -> np.ndarray:
        with self.paged.demand():
            return super()._predict_proba(rows)

    def paged_stats(self) -> dict[str, object]:
        return {**self.paged.snapshot(), "at_first_prediction": self.at_first_prediction}

    def close(self) -> None:
        """Stop the background fill (the server is shutting down)."""
        self.paged.close()


def element_bytes(spec: dict[str, Any]) -> int:
    """Bytes of one element along an array's first axis, from its header entry (a node
    record; a leaf's row)."""
    dtype = np.lib.format.descr_to_dtype(spec["dtype"])
    return int(dtype.itemsize * int(np.prod(spec["shape"][1:], dtype=np.int64)))


def _nbytes(spec: dict[str, Any]) -> int:
    return element_bytes(spec) * int(spec["shape"][0])
