"""MODEL_FORMAT=sharded: rebuild the estimator shard by shard from its manifest
(sharded.py), read from the mount or downloaded while it loads, each shard verified."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from .loading import LoadSteps
from .s3_download import IntegrityError, object_reader

log = logging.getLogger("service.model")

LIBRARIES = ("sklearn.ensemble", "sklearn.pipeline")


def load(steps: LoadSteps) -> Any:
    from .sharded import ShardedLoadReport, load_sharded, local_reader

    settings, story = steps.settings, steps.story
    if settings.downloads:
        if not settings.pinned_sha256:
            raise IntegrityError("MODEL_SHA256 is not set: refusing an unpinned download")
        read = object_reader(endpoint=settings.s3_endpoint, bucket=settings.s3_bucket,
                             prefix=os.path.dirname(settings.s3_key),
                             credentials_file=settings.s3_credentials_file)
    else:
        read = local_reader(os.path.dirname(settings.model_path))
    report = ShardedLoadReport()
    story.load_start = time.time()
    log.info("loading sharded model from %s", settings.s3_key or settings.model_path)
    model = load_sharded(read, settings.pinned_sha256, report)
    story.load_end = time.time()
    story.verify_s = report.verify_s if report.verify else None
    story.verified_sha256 = settings.pinned_sha256 or None
    if settings.downloads:  # overlapped with the load: the timeline shows both
        story.download_start = report.read_start
        story.download_end = report.read_end
        story.downloaded = True
        story.download_bytes = report.bytes_read
        story.download_active_s = report.read_active_s
    log.info("%d shards", report.shards)
    return model
