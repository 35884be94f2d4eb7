"""Service configuration, read once from the environment: the service's contract.

Everything a strategy changes about how the model reaches the process is an environment
variable, so one service serves every strategy. Credentials come only from the environment
or a mounted file at run time, never from the image.

`ENVIRONMENT` below is the one declaration of that contract: each Settings field, the
variable that sets it and its default. The service parses it here; the harness imports it
(bench/service_env.py) to write the variables, so a name is spelled once, and a strategy that
sets a variable the service does not read fails before its container starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace


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
    leak_per_predict_bytes: int  # tests only: memory each /predict keeps, to be OOM-killed
    prefetch: bool  # flat forest: ask the kernel to read the mapped file ahead
    page_connections: int  # flat_lazy: connections for a request's missing pages (pipelined)
    page_budget_s: float  # flat_lazy: a request's missing pages arrive within this, or 503

    @property
    def downloads(self) -> bool:
        return bool(self.s3_bucket)


@dataclass(frozen=True)
class EnvVar:
    name: str  # the environment variable
    default: str  # as the environment would spell it ("1" is true for a bool field)


# Settings field -> the variable that sets it. Declared once; load_settings and the harness
# derive from it.
ENVIRONMENT: dict[str, EnvVar] = {
    "model_path": EnvVar("MODEL_PATH", "/app/datos/modelos/modelo_fifa.joblib"),
    "loading": EnvVar("MODEL_LOADING", "eager"),
    "codec": EnvVar("MODEL_CODEC", "none"),
    "model_format": EnvVar("MODEL_FORMAT", "joblib"),
    "pinned_sha256": EnvVar("MODEL_SHA256", ""),
    "s3_endpoint": EnvVar("S3_ENDPOINT", ""),
    "s3_bucket": EnvVar("S3_BUCKET", ""),
    "s3_key": EnvVar("S3_KEY", ""),
    "s3_credentials_file": EnvVar("S3_CREDENTIALS_FILE", ""),
    "download_concurrency": EnvVar("DOWNLOAD_CONCURRENCY", "8"),
    "download_chunk_bytes": EnvVar("DOWNLOAD_CHUNK_BYTES", str(16 * 1024 * 1024)),
    "downloader": EnvVar("DOWNLOADER", "boto3"),
    "download_budget_s": EnvVar("DOWNLOAD_BUDGET_S", "3600"),
    "max_batch_rows": EnvVar("MAX_BATCH_ROWS", "10000"),
    "preload": EnvVar("MODEL_PRELOAD", ""),
    "load_delay_s": EnvVar("MLBENCH_TEST_LOAD_DELAY_S", "0"),
    "leak_per_predict_bytes": EnvVar("MLBENCH_TEST_LEAK_PER_PREDICT_BYTES", "0"),
    "prefetch": EnvVar("MODEL_PREFETCH", ""),
    "page_connections": EnvVar("PAGE_CONNECTIONS", "8"),
    "page_budget_s": EnvVar("PAGE_BUDGET_S", "30"),
}


def parse(kind: str, text: str) -> object:
    """One variable's text as its field's type (`kind` is the annotation's name)."""
    if kind == "bool":
        return text == "1"
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    return text


def load_settings() -> Settings:
    values = {}
    for field in fields(Settings):
        var = ENVIRONMENT[field.name]
        values[field.name] = parse(str(field.type), os.environ.get(var.name, var.default))
    settings = Settings(**values)  # type: ignore[arg-type]  # each parsed as its field's type
    # The digest is compared with hashlib's lower-case hex.
    return replace(settings, pinned_sha256=settings.pinned_sha256.lower())
