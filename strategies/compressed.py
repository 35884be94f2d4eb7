"""Seed strategy 3: a compressed model, mounted read-only, loaded lazily on the first
request (single flight). One strategy per codec: compressed-gzip9 (the seed's), -zstd9, -lz4."""

from __future__ import annotations

from pathlib import Path

from bench.model.compression import Codec, compress_model, parse_codec
from strategies.base import (
    MODEL_DIR_IN_CONTAINER,
    MODEL_DIR_IN_REPO,
    MODEL_NAME_IN_REPO,
    Factory,
    PreparedModel,
    Strategy,
    StrategyContext,
    cached_note,
)


class Compressed(Strategy):
    dockerfile = "Dockerfile.volume"
    exportable = True
    dockerignore = "dockerignore.seed"  # the seed recommends both
    loading = "lazy"
    disk_model_copies = 0.45  # the compressed file (gzip9 0.28, zstd9 0.27, lz4 0.39 of FIFA)

    def __init__(self, codec: Codec) -> None:
        self.compression = codec
        self.name = f"compressed-{codec.label}"
        self.summary = f"{codec.label}-compressed model, mounted, loaded on the first request"
        self.codec = codec.family

    def model_file_name(self) -> str:
        return MODEL_NAME_IN_REPO + self.compression.suffix

    def exported_model(self, model: Path, scratch: Path) -> Path:
        from bench.model.hashing import sha256_file

        return compress_model(model, sha256_file(model), self.compression, scratch,
                              "export").path

    def prepare(self, ctx: StrategyContext) -> PreparedModel:
        with ctx.progress.step(f"compressing the model with {self.compression.label} "
                               "(cached after the first time)"):
            packed = compress_model(ctx.model.path, ctx.model.sha256, self.compression, ctx.cache,
                                    ctx.run_id, ctx.progress.adder(ctx.model.bytes))
        name = self.model_file_name()
        return PreparedModel(
            # The repository holds both files, as after the seed's compression script.
            context_files={f"{MODEL_DIR_IN_REPO}/{MODEL_NAME_IN_REPO}": ctx.model.path,
                           f"{MODEL_DIR_IN_REPO}/{name}": packed.path},
            env=self.local_env(f"{MODEL_DIR_IN_CONTAINER}/{name}"),
            model_file_bytes=packed.bytes,
            extra_metrics={"compression_ratio": packed.ratio, "compress_s": packed.compress_s},
            notes=cached_note("compress_s", packed.cached, packed.measured_in),
        )


# The names this module adds to the command line, and where they sort in it.
ORDER = 40
STRATEGIES: dict[str, Factory] = {
    "compressed": lambda options: [Compressed(parse_codec(c)) for c in options.codecs]}
