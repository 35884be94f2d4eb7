"""The two designs of a flat forest served before it has arrived, on the same store, measured.

``python -m bench.micro.fuse_pages --model-size 5.45GB`` (root: it mounts FUSE) serves the
synthetic model's flat file from a real S3 server (rclone serve s3 on loopback, the
harness's arguments) and times, from nothing of the file on the node to the answer, the
first one-row prediction of:

- **paged** (mmap-lazy, in the service, no privileges): the service's own PagedFile fetches
  each pass's missing pages at once, in parallel ranged GETs of a presigned URL, and writes
  them to a sparse local file it maps; its background fill starts as the service starts it;
- **fuse** (a node-level mount, as Mountpoint for S3's CSI driver gives a pod): ``rclone
  mount`` of the bucket, read-only, reads of one page (no read-ahead of rclone's own,
  chunks of 4 KiB), the file mapped through it, and before each pass
  ``posix_fadvise(WILLNEED)`` of that pass's pages so the kernel sends their reads at once
  instead of one fault at a time.

Rounds alternate the two (a machine that drifts slows both alike). Per start: seconds to
the answer, bytes the node received from the store (the paged reader's count; the mount
process's reads), GET requests (the paged reader's count; the mount's logged requests), the
CPU the store and the node's side (this process, the mount) spent a GET (from /proc: both
share the machine's cores), and whether the answer is the whole file's. Prints one JSON object.
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from bench.errors import UsageError
from bench.host.paths import cache_dir, service_module, service_package
from bench.micro import command
from bench.micro.lazy_exact import BUCKET, KEY, store_settings
from bench.model.flat_forest import convert
from bench.progress import Progress
from bench.servers.s3 import S3Endpoint, rclone_binary, s3_client, start_local_server

PAGE = 4096
# rclone mount: no read-ahead of its own (buffer, VFS read-ahead), chunks of one page that
# do not grow, no cache; the kernel's read-ahead for the file at one page too.
MOUNT_FLAGS = ("--read-only", "--vfs-cache-mode", "off", "--buffer-size", "0",
               "--vfs-read-ahead", "0", "--vfs-read-chunk-size", "4k",
               "--vfs-read-chunk-size-limit", "4k", "--max-read-ahead", "4k",
               "--dir-cache-time", "1h", "--no-modtime", "--no-checksum")


def _paged_start(store: S3Endpoint, store_pid: int, credentials: Path, node: Path,
                 row: np.ndarray) -> dict[str, Any]:
    """mmap-lazy's start, as its service makes it (load_flat_lazy.load, but the manifest
    fetched with a plain GET, not the downloader's cache): the manifest, then the pages one
    row needs."""
    service_package()
    lazy = importlib.import_module("backend.load_flat_lazy")
    paging = importlib.import_module("backend.page_manifest")
    settings = store_settings(store.host_url, credentials, node)
    cpu_before = _cpu_split(store_pid, (os.getpid(),))
    started = time.perf_counter()
    manifest = paging.Manifest.parse(s3_client(store).get_object(
        Bucket=BUCKET, Key=KEY + paging.MANIFEST_SUFFIX)["Body"].read())
    model = lazy.paged_model(settings, manifest)
    try:
        model.paged.start_fill()
        answer = model.predict(row)
        seconds = time.perf_counter() - started
        stats = model.paged.snapshot()
        requests = int(stats["demand_requests"]) + 1
        return {"seconds": seconds, "answer": answer,
                "bytes": int(stats["demand_bytes"]) + len(manifest.digests),
                "requests": requests,
                **_cpu_per_get(cpu_before, _cpu_split(store_pid, (os.getpid(),)), requests)}
    finally:
        model.paged.close()


def _cpu_s(pid: int) -> float:
    """CPU seconds (user and system) a process has used so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _cpu_split(store_pid: int, node_pids: tuple[int, ...]) -> tuple[float, float]:
    """CPU seconds so far of the store, and of the node's side (this process, a mount)."""
    return _cpu_s(store_pid), sum(_cpu_s(pid) for pid in node_pids)


def _cpu_per_get(before: tuple[float, float], after: tuple[float, float], requests: int
                 ) -> dict[str, float]:
    """The store's and the node side's CPU over a start, in ms a GET: where its time goes
    when both share the machine's cores."""
    return {"store_cpu_ms_per_get": (after[0] - before[0]) / requests * 1000,
            "node_cpu_ms_per_get": (after[1] - before[1]) / requests * 1000}


def _mount(url: str, access: str, secret: str, where: Path, log: Path) -> subprocess.Popen[bytes]:
    remote = (f":s3,provider=Other,endpoint='{url}',access_key_id={access},"
              f"secret_access_key={secret}:{BUCKET}")
    process = subprocess.Popen(
        [str(rclone_binary()), "mount", remote, str(where), *MOUNT_FLAGS, "--config",
         "/dev/null", "-vv", "--dump", "headers", "--log-file", str(log)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        if os.path.ismount(where):
            return process
        if process.poll() is not None:
            raise RuntimeError(f"rclone mount exited: {log.read_text()[-500:]}")
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("rclone mount did not mount")


def _unmount(process: subprocess.Popen[bytes], where: Path) -> None:
    subprocess.run(["fusermount3", "-u", str(where)], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _read_bytes(pid: int) -> int:
    """What a process has read (rchar: sockets included): the mount's bytes from the store."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/io has no rchar")


def _fuse_start(url: str, access: str, secret: str, store_pid: int, scratch: Path,
                row: np.ndarray) -> dict[str, Any]:
    """The node mounts the bucket (before the clock: a node's mount is made once), then the
    clock runs from opening the file to the answer."""
    where, log = scratch / "mnt", scratch / "mount.log"
    where.mkdir(exist_ok=True)
    log.unlink(missing_ok=True)
    process = _mount(url, access, secret, where, log)
    try:
        flat = service_module("flat_forest")
        path = where / KEY
        before = _read_bytes(process.pid)
        node_pids = (os.getpid(), process.pid)
        cpu_before = _cpu_split(store_pid, node_pids)
        started = time.perf_counter()
        fd = os.open(path, os.O_RDONLY)
        header = flat.read_header(str(path))
        element_bytes = importlib.import_module("backend.load_flat_lazy").element_bytes
        spans = {name: (int(spec["offset"]), element_bytes(spec))
                 for name, spec in header["arrays"].items()}

        def willneed(name: str, indices: np.ndarray) -> None:
            offset, itemsize = spans[name]
            pages = np.unique((offset + indices.astype(np.int64) * itemsize) // PAGE)
            breaks = np.flatnonzero(np.diff(pages) != 1) + 1
            for run in np.split(pages, breaks):
                os.posix_fadvise(fd, int(run[0]) * PAGE, int(run.size) * PAGE,
                                 os.POSIX_FADV_WILLNEED)

        forest = flat.FlatForest.open(str(path), touch=willneed)
        answer = forest.predict(row)
        seconds = time.perf_counter() - started
        received = _read_bytes(process.pid) - before
        cpu_after = _cpu_split(store_pid, node_pids)
        del forest
        os.close(fd)
    finally:
        _unmount(process, where)
    requests = sum(1 for line in log.read_text().splitlines() if "GET /" in line)
    return {"seconds": seconds, "answer": answer, "bytes": received, "requests": requests,
            **_cpu_per_get(cpu_before, cpu_after, max(requests, 1))}


def main() -> None:
    parser = command.parser("bench.micro.fuse_pages", __doc__)
    parser.add_argument("--rounds", type=int, default=3, help="starts of each design (3)")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("fusermount3") is None:
        raise UsageError("fuse_pages mounts FUSE: run it as root with fuse3 installed "
                         "(apt-get install fuse3)")
    progress = Progress()
    model = command.model_of(args, progress)
    flat = convert(model.path, model.sha256, cache_dir(), "fuse-pages")
    row = np.asarray(model.reference_rows[:1])
    expected = service_module("flat_forest").FlatForest.open(str(flat.path)).predict(row)
    service_package()
    paging = importlib.import_module("backend.page_manifest")
    for library in ("boto3", "botocore.config", "urllib3"):  # imported before any clock
        importlib.import_module(library)
    access, secret = "AKID" + secrets.token_hex(8).upper(), secrets.token_hex(20)
    found: dict[str, list[dict[str, Any]]] = {"paged": [], "fuse": []}
    with tempfile.TemporaryDirectory(prefix="mlbench-fuse-pages-") as scratch:
        root = Path(scratch)
        (root / "store" / BUCKET).mkdir(parents=True)
        os.link(flat.path, root / "store" / BUCKET / KEY)
        (root / "store" / BUCKET / (KEY + paging.MANIFEST_SUFFIX)).write_bytes(
            paging.manifest_of(str(flat.path)))
        credentials = root / "credentials"
        credentials.write_text(f"AWS_ACCESS_KEY_ID={access}\nAWS_SECRET_ACCESS_KEY={secret}\n")
        server, url = start_local_server(root / "store", access, secret)
        store = S3Endpoint(url, url, access, secret, None)
        try:
            for turn in range(args.rounds):
                order = ("paged", "fuse") if turn % 2 == 0 else ("fuse", "paged")
                for design in order:
                    with progress.step(f"round {turn + 1}: {design}, first one-row prediction"):
                        node = root / f"node-{turn}.flat"
                        start = (_paged_start(store, server.pid, credentials, node, row)
                                 if design == "paged"
                                 else _fuse_start(url, access, secret, server.pid, root, row))
                        for leftover in root.glob(f"node-{turn}.flat*"):
                            leftover.unlink()
                    answer = start.pop("answer")
                    start["equal_to_whole_file"] = bool(np.array_equal(answer, expected))
                    found[design].append(start)
        finally:
            server.terminate()
            server.wait(timeout=10)
    report: dict[str, Any] = {"model_bytes": model.bytes, "flat_bytes": flat.bytes}
    for design, starts in found.items():
        report[design] = {"starts": starts,
                          "median_seconds": statistics.median(s["seconds"] for s in starts)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    command.run(main)
