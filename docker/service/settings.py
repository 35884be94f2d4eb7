"""Service configuration, read once from the environment.

Everything a strategy changes about how the model reaches the process is an environment
variable, so one service serves every strategy. Credentials come only from the environment
or a mounted file at run time, never from the image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    model_path: str
    loading: str  # "eager": load in the background at start-up; "lazy": on the first request
    codec: str  # "none", "gzip", "zstd", "lz4": how the file at model_path is compressed
    model_format: str  # "joblib": one file; "sharded": a shard manifest; "flat": a mapped forest
    pinned_sha256: str  # empty: not verified (local file); required for anything downloaded
    s3_endpoint: str
    s3_bucket: str
    s3_key: str
    s3_credentials_file: str
    download_concurrency: int
    download_chunk_bytes: int
    downloader: str  # "boto3" (the transfer manager) or "ranged" (ranged GETs, hashed in flight)
    download_budget_s: float  # the whole download, retries included, must fit in this
    max_batch_rows: int
    preload: bool  # load at import, before a pre-forking server (gunicorn --preload) forks
    load_delay_s: float  # tests only: seconds added to the load, to observe the probe
    prefetch: bool  # flat forest: ask the kernel to read the mapped file ahead

    @property
    def downloads(self) -> bool:
        return bool(self.s3_bucket)


def load_settings() -> Settings:
    env = os.environ.get
    return Settings(
        model_path=env("MODEL_PATH", "/app/datos/modelos/modelo_fifa.joblib"),
        loading=env("MODEL_LOADING", "eager"),
        codec=env("MODEL_CODEC", "none"),
        model_format=env("MODEL_FORMAT", "joblib"),
        pinned_sha256=env("MODEL_SHA256", "").lower(),
        s3_endpoint=env("S3_ENDPOINT", ""),
        s3_bucket=env("S3_BUCKET", ""),
        s3_key=env("S3_KEY", ""),
        s3_credentials_file=env("S3_CREDENTIALS_FILE", ""),
        download_concurrency=int(env("DOWNLOAD_CONCURRENCY", "8")),
        download_chunk_bytes=int(env("DOWNLOAD_CHUNK_BYTES", str(16 * 1024 * 1024))),
        downloader=env("DOWNLOADER", "boto3"),
        download_budget_s=float(env("DOWNLOAD_BUDGET_S", "3600")),
        max_batch_rows=int(env("MAX_BATCH_ROWS", "10000")),
        preload=env("MODEL_PRELOAD", "") == "1",
        load_delay_s=float(env("MLBENCH_TEST_LOAD_DELAY_S", "0")),
        prefetch=env("MODEL_PREFETCH", "") == "1",
    )
