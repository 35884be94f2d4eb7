"""SHA-256 of large files, cached beside them by (size, mtime) so a 5 GB model is hashed once."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from bench.host.fsutil import write_atomic

CHUNK_BYTES = 8 * 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def cached_sha256(path: Path, cache_dir: Path) -> str:
    stat = path.stat()
    key = hashlib.sha256(f"{path.resolve()}".encode()).hexdigest()[:24]
    record = cache_dir / "sha256" / f"{key}.json"
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if record.exists():
        stored = json.loads(record.read_text())
        if stored.get("stamp") == stamp:
            return str(stored["sha256"])
    value = sha256_file(path)
    record.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(record, json.dumps({"stamp": stamp, "sha256": value, "path": os.fspath(path)}))
    return value
