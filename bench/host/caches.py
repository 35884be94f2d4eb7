"""What the harness keeps on disk between runs, and how to free it.

Model caches are derived files, made again on demand: compressed models, shards, flat
forests, micro-benchmark files (under the cache folder) and the synthetic models (under
datos/modelos). BuildKit's build cache belongs to the engine; a run removes the entries it
added, and `clean --build-cache` frees the whole of it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.host.fsutil import tree_bytes
from bench.host.paths import cache_dir, models_dir

MODEL_CACHE_FOLDERS = ("compressed", "sharded", "flat", "micro", "reference", "sha256")


@dataclass(frozen=True)
class DiskCache:
    name: str
    paths: tuple[Path, ...]

    @property
    def bytes(self) -> int:
        return sum(tree_bytes(p) if p.is_dir() else p.stat().st_size
                   for p in self.paths if p.exists())

    def free(self) -> int:
        freed = self.bytes
        for path in self.paths:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        return freed


def model_caches() -> list[DiskCache]:
    models = tuple(p for p in models_dir().glob("fifa_rf_*") if p.is_file())
    return [DiskCache("synthetic models (datos/modelos)", models),
            DiskCache("compressed, sharded and flat models, hashes (cache folder)",
                      tuple(cache_dir() / name for name in MODEL_CACHE_FOLDERS))]
