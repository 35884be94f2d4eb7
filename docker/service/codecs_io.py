"""Open a (possibly compressed) model file as a stream joblib.load can read.

Decompression streams: no second full copy of the model on disk or in memory. joblib sniffs
the first bytes with ``peek``, so non-seekable decompressors are wrapped in a BufferedReader.
"""

from __future__ import annotations

import gzip
import io
from typing import BinaryIO

READ_BUFFER_BYTES = 4 * 1024 * 1024


def open_model_stream(path: str, codec: str) -> BinaryIO:
    if codec == "none":
        return open(path, "rb", buffering=READ_BUFFER_BYTES)
    if codec == "gzip":
        # The seed's way: gzip.open + joblib.load.
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if codec == "zstd":
        import zstandard

        raw = open(path, "rb", buffering=READ_BUFFER_BYTES)  # noqa: SIM115 (reader closes)
        reader = zstandard.ZstdDecompressor().stream_reader(raw, closefd=True)
        return io.BufferedReader(reader, buffer_size=READ_BUFFER_BYTES)
    if codec == "lz4":
        import lz4.frame

        return lz4.frame.open(path, "rb")  # type: ignore[no-any-return]
    raise ValueError(f"unknown MODEL_CODEC {codec!r}; use none, gzip, zstd or lz4")
