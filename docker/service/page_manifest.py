"""The page manifest of a file served page by page (MODEL_FORMAT=flat_lazy): its size and a
16-byte BLAKE2b digest of every 4 KiB page. The harness publishes it beside the file
(strategies/mmap.py); the service downloads it pinned by its SHA-256, as every other
download is, and checks each fetched page against it before using it (paged_file.py)."""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass

PAGE = 4096
DIGEST_BYTES = 16
MANIFEST_MAGIC = b"MLBPAGE1"
MANIFEST_SUFFIX = ".manifest"  # the manifest's object key and local name: the file's + this
_HEAD = struct.Struct("<8sQI")  # magic, file size, page size


def page_digest(page: bytes) -> bytes:
    return hashlib.blake2b(page, digest_size=DIGEST_BYTES).digest()


def manifest_of(path: str) -> bytes:
    """The manifest of a file: its size and every page's digest (the harness publishes it)."""
    size = os.path.getsize(path)
    parts = [_HEAD.pack(MANIFEST_MAGIC, size, PAGE)]
    with open(path, "rb") as handle:
        while block := handle.read(PAGE * 2048):
            parts += [page_digest(block[i:i + PAGE]) for i in range(0, len(block), PAGE)]
    return b"".join(parts)


@dataclass(frozen=True)
class Manifest:
    size: int
    digests: bytes

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        magic, size, page = _HEAD.unpack_from(data)
        pages = (size + PAGE - 1) // PAGE
        if magic != MANIFEST_MAGIC or page != PAGE or len(data) != _HEAD.size + pages * DIGEST_BYTES:
            raise ValueError("not a page manifest of this format")
        return cls(size, data[_HEAD.size:])

    @property
    def pages(self) -> int:
        return (self.size + PAGE - 1) // PAGE

    def digest(self, page: int) -> bytes:
        return self.digests[page * DIGEST_BYTES:(page + 1) * DIGEST_BYTES]
