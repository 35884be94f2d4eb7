"""Compress a model file once per (model sha256, codec) and cache the result.

gzip level 9 is done exactly as the seed does it (gzip.open + shutil.copyfileobj), so its
claims can be checked; zstd and lz4 are the alternatives. All single-threaded, streaming.
"""

from __future__ import annotations

import gzip
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from bench.errors import UsageError
from bench.host.fsutil import partial_path, write_atomic

_CODEC = re.compile(r"^(gzip|zstd|lz4)(\d*)$")
DEFAULT_LEVELS = {"gzip": 9, "zstd": 9, "lz4": 0}
SUFFIXES = {"gzip": ".gz", "zstd": ".zst", "lz4": ".lz4"}
COPY_BUFFER = 8 * 1024 * 1024


@dataclass(frozen=True)
class Codec:
    family: str  # the service's MODEL_CODEC: gzip | zstd | lz4
    level: int

    @property
    def label(self) -> str:
        if self.family == "lz4" and self.level == 0:
            return "lz4"
        return f"{self.family}{self.level}"

    @property
    def suffix(self) -> str:
        return SUFFIXES[self.family]


def parse_codec(text: str) -> Codec:
    match = _CODEC.match(text.strip().lower())
    if match is None:
        raise UsageError(f"unknown codec {text!r}: use gzip9, zstd3, zstd9, zstd19 or lz4")
    family, level = match.group(1), match.group(2)
    return Codec(family, int(level) if level else DEFAULT_LEVELS[family])


@dataclass(frozen=True)
class CompressedModel:
    path: Path
    bytes: int
    original_bytes: int
    compress_s: float
    cached: bool  # True: compress_s was measured by an earlier run (measured_in), not this one
    measured_in: str

    @property
    def ratio(self) -> float:
        return self.bytes / self.original_bytes


def compress_model(source: Path, sha256: str, codec: Codec, cache: Path, run_id: str,
                   on_bytes: Callable[[int], None] = lambda _: None) -> CompressedModel:
    """The model compressed with `codec` (cached by content and codec); `on_bytes` is told
    the bytes read as it goes."""
    target = cache / "compressed" / f"{sha256[:16]}.{codec.label}{codec.suffix}"
    record = target.with_name(target.name + ".json")
    if target.exists() and record.exists():
        stored = json.loads(record.read_text())
        return CompressedModel(target, target.stat().st_size, stored["original_bytes"],
                               stored["compress_s"], True, stored.get("run_id", "unknown"))
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(target)
    started = time.perf_counter()
    with source.open("rb") as raw:
        if codec.family == "gzip":
            with gzip.open(partial, "wb", compresslevel=codec.level) as out:
                _copy(raw, out, on_bytes)
        elif codec.family == "zstd":
            import zstandard

            with partial.open("wb") as handle, zstandard.ZstdCompressor(
                    level=codec.level).stream_writer(handle) as out:
                _copy(raw, out, on_bytes)
        else:
            import lz4.frame

            with lz4.frame.open(partial, "wb", compression_level=codec.level) as out:
                _copy(raw, out, on_bytes)
    seconds = time.perf_counter() - started
    partial.replace(target)
    original = source.stat().st_size
    write_atomic(record, json.dumps({"original_bytes": original, "compress_s": seconds,
                                     "run_id": run_id}))
    return CompressedModel(target, target.stat().st_size, original, seconds, False, run_id)


def _copy(source: BinaryIO, target: Any, on_bytes: Callable[[int], None]) -> None:
    """shutil.copyfileobj, telling `on_bytes` each block's size (for the progress bar)."""
    while block := source.read(COPY_BUFFER):
        target.write(block)
        on_bytes(len(block))
