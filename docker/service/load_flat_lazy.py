"""MODEL_FORMAT=flat_lazy: serve the flat forest before it has arrived. Only the pinned page
manifest is downloaded whole (16 bytes a page: 4.7 MB for the 1.2 GB forest of 5.45 GB);
then the header and the small arrays (the roots, a classifier's class fractions come page by
page as its leaves need them) are fetched, and the service is ready. Each pass of a
prediction fetches the pages of its nodes that are missing, all at once (paged_file.py), and
a background fill brings the rest until the file is whole and local. The cache volume keeps
the pages and their marks: a restarted service fetches only what it lacks."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from .flat_forest import FlatForest, FlatModel, read_header
from .loading import LoadSteps
from .paged_file import MANIFEST_SUFFIX, PAGE, Manifest, PagedFile

log = logging.getLogger("service.model")

LIBRARIES: tuple[str, ...] = ()  # numpy only, as flat's


def load(steps: LoadSteps) -> Any:
    from .s3_download import _client, ensure_downloaded

    settings, story = steps.settings, steps.story
    if not settings.downloads or not settings.pinned_sha256:
        raise ValueError("MODEL_FORMAT=flat_lazy needs S3_BUCKET, S3_KEY and the manifest's "
                         "MODEL_SHA256")
    manifest_path = settings.model_path + MANIFEST_SUFFIX
    report = ensure_downloaded(
        endpoint=settings.s3_endpoint, bucket=settings.s3_bucket,
        key=settings.s3_key + MANIFEST_SUFFIX, destination=manifest_path,
        pinned_sha256=settings.pinned_sha256, credentials_file=settings.s3_credentials_file,
        concurrency=1, chunk_bytes=settings.download_chunk_bytes, downloader="ranged",
        budget_s=settings.download_budget_s)
    story.download_start, story.download_end = report.transfer_start, report.transfer_end
    story.downloaded, story.download_bytes = report.downloaded, report.bytes
    story.client_setup_s, story.verified_sha256 = report.client_setup_s, settings.pinned_sha256
    with open(manifest_path, "rb") as handle:
        manifest = Manifest.parse(handle.read())

    def fetcher() -> Any:
        # A client, and so a connection pool, for requests and another for the fill.
        client = _client(settings.s3_endpoint, settings.s3_credentials_file,
                         settings.page_budget_s)

        def fetch(offset: int, length: int) -> bytes:
            answer = client.get_object(Bucket=settings.s3_bucket, Key=settings.s3_key,
                                       Range=f"bytes={offset}-{offset + length - 1}")
            return bytes(answer["Body"].read())
        return fetch

    story.load_start = time.time()
    paged = PagedFile(settings.model_path, manifest, fetcher(), fetcher(),
                      concurrency=settings.page_concurrency, budget_s=settings.page_budget_s)
    forest = open_paged_forest(paged)
    story.load_end = time.time()
    paged.start_fill()
    log.info("serving %s on demand: %d pages, %d present", settings.model_path,
             manifest.pages, int(np.count_nonzero(paged.present)))
    return PagedFlatModel(forest, paged)


def open_paged_forest(paged: PagedFile) -> FlatForest:
    """The forest over a paged file: its header and roots fetched now, every other page when
    a gather is about to read it."""
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
    roots = arrays["roots"]
    paged.ensure_bytes(np.asarray([int(roots["offset"])]), max(1, _nbytes(roots)))
    # Where element i of each gathered array lives in the file, for the predictor's touch.
    spans = {name: (int(spec["offset"]), _itemsize(spec))
             for name, spec in arrays.items() if name in ("nodes", "leaf_proba")}

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
        answer = super().predict(rows)
        if self.at_first_prediction is None:
            self.at_first_prediction = self.paged.snapshot()
        return answer

    def paged_stats(self) -> dict[str, object]:
        return {**self.paged.snapshot(), "at_first_prediction": self.at_first_prediction}


def _itemsize(spec: dict[str, Any]) -> int:
    """Bytes of one element along the first axis (a node record; a leaf's row of fractions)."""
    dtype = np.lib.format.descr_to_dtype(spec["dtype"])
    return int(dtype.itemsize * int(np.prod(spec["shape"][1:], dtype=np.int64)))


def _nbytes(spec: dict[str, Any]) -> int:
    return _itemsize(spec) * int(spec["shape"][0])
