"""The harness's S3 server (rclone serve s3, as every run and test starts it) costs a ranged GET
what a real S3 costs it: no hashing of the whole object on the first GETs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import requests

from bench.servers.s3 import S3Endpoint, start_local_server

# CPU time of the server, on a machine the unit tests keep busy: with the engine lanes.
pytestmark = [pytest.mark.timing, pytest.mark.beside]

KEY, SECRET = "AKIDMLBENCHSTORE0001", "storesecretstoresecretstoresecret001"
OBJECT_BYTES = 96 * 2**20
CONCURRENT_FIRST_GETS = 8


@pytest.fixture
def store(tmp_path: Path) -> Iterator[tuple[S3Endpoint, psutil.Process]]:
    (tmp_path / "s3" / "models").mkdir(parents=True)
    with open(tmp_path / "s3" / "models" / "big.bin", "wb") as handle:
        handle.write(bytes(range(256)) * (OBJECT_BYTES // 256))
    process, url = start_local_server(tmp_path / "s3", KEY, SECRET)
    try:
        yield S3Endpoint(url, url, KEY, SECRET, None), psutil.Process(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _signed_url(endpoint: S3Endpoint) -> str:
    """The object's URL presigned as mmap-lazy's service presigns it."""
    import boto3
    from botocore.config import Config

    signer = boto3.client("s3", endpoint_url=endpoint.host_url, aws_access_key_id=KEY,
                          aws_secret_access_key=SECRET, region_name="us-east-1",
                          config=Config(signature_version="s3v4",
                                        s3={"addressing_style": "path"}))
    return str(signer.generate_presigned_url(
        "get_object", ExpiresIn=600, Params={"Bucket": "models", "Key": "big.bin"}))


def _ranged_getter(url: str) -> Callable[[int], bytes]:
    def get(page: int) -> bytes:
        start = page * 4096
        answer = requests.get(url, headers={"Range": f"bytes={start}-{start + 4095}"},
                             timeout=60)
        assert answer.status_code in (200, 206), answer.text[:200]
        assert len(answer.content) == 4096
        return answer.content
    return get


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def test_first_ranged_gets_of_a_large_object_do_not_hash_it(
        store: tuple[S3Endpoint, psutil.Process]) -> None:
    """rclone's default ETag is the object's MD5, computed by the first GETs (each one in
    flight computes it again): 8 concurrent first GETs of this 96 MB object cost the server
    about 8 x 96 MB of MD5, over half a second of CPU; without it, a few milliseconds. CPU
    time, not wall time: a busy machine slows both alike."""
    endpoint, server = store
    first_get = _ranged_getter(_signed_url(endpoint))
    before = _cpu_s(server)
    pages = [i * (OBJECT_BYTES // 4096 // CONCURRENT_FIRST_GETS)
             for i in range(CONCURRENT_FIRST_GETS)]
    with ThreadPoolExecutor(CONCURRENT_FIRST_GETS) as pool:
        answers = list(pool.map(first_get, pages))
    spent = _cpu_s(server) - before
    assert answers == [bytes(range(256)) * 16] * CONCURRENT_FIRST_GETS  # the ranges asked
    # MD5 runs at well under 2 GB/s a core here: hashing 8 x 96 MB takes over 0.4 s of CPU.
    assert spent < 0.2, f"the S3 server spent {spent:.2f} s of CPU on {len(pages)} 4 KiB GETs"


def test_a_small_ranged_get_costs_the_server_no_read_ahead(
        store: tuple[S3Endpoint, psutil.Process]) -> None:
    """rclone fills a read-ahead buffer (16 MiB by default) for every GET, a 4 KiB range too:
    about 2 ms of its CPU a request here, 0.2-0.34 ms without; mmap-lazy asks 8,580 such
    ranges for one row of the 5.45 GB forest."""
    endpoint, server = store
    url = _signed_url(endpoint)
    first_get = _ranged_getter(url)
    first_get(0)  # the connection and the object's first look-up, before counting
    requests = 400
    before = _cpu_s(server)
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(first_get, range(1, requests + 1)))
    per_get_ms = (_cpu_s(server) - before) / requests * 1000
    assert per_get_ms < 0.9, f"the S3 server spent {per_get_ms:.2f} ms of CPU a 4 KiB GET"
