"""Beyond the seed: the forest repacked into a shell and K shards of trees, loaded shard by
shard with reading, verification and decompression of the next shard overlapped with
unpickling the current one (docker/service/sharded.py). Peak memory at load stays near the
model's size at rest instead of about twice it.

`sharded` mounts the shard folder read-only (as `volume` does); `sharded-registry` keeps each
shard as its own S3 object and streams them at start-up, so the download overlaps the load.
`sharded-registry` pins the manifest's SHA-256 and the manifest pins every shard; `sharded`
trusts its read-only mount as `volume` does (the service verifies it when MODEL_SHA256 is set).
"""

from __future__ import annotations

from bench.engine import BindMount
from bench.measure.spec import StartSpec
from bench.model.sharding import ShardedModel, auto_shards, repack
from bench.service_env import service_env
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
from strategies.registry import Registry

SHARDS_IN_CONTAINER = f"{MODEL_DIR_IN_CONTAINER}/sharded"


def _repack(ctx: StrategyContext, shards: int, default_codec: str) -> ShardedModel:
    count = shards or auto_shards(ctx.model.bytes)
    codec = ctx.options.shard_codec or default_codec
    with ctx.progress.step(f"repacking the forest into {count} shards "
                           f"({codec}; cached after the first time)"):
        return repack(ctx.model.path, ctx.model.sha256, count, codec, ctx.cache, ctx.run_id)


def _env(packed: ShardedModel, manifest_path: str, pinned: bool) -> dict[str, str]:
    return service_env(model_path=manifest_path, model_format="sharded", loading="eager",
                       codec="none", pinned_sha256=packed.manifest_sha256 if pinned else "")


class Sharded(Strategy):
    dockerfile = "Dockerfile.volume"
    dockerignore = "dockerignore.seed"

    # From a local disk, decompressing costs more than reading the bytes saves.
    default_codec = "none"
    disk_model_copies = 1.0  # the shards
    needs_ensemble = True

    def __init__(self, shards: int = 0) -> None:  # 0: about 4 MB per shard
        self.shards = shards
        self.name = "sharded" if shards == 0 else f"sharded-k{shards}"
        self.summary = "forest in shards, mounted, loaded shard by shard (overlapped)"
        self._packed: ShardedModel | None = None

    def prepare(self, ctx: StrategyContext) -> PreparedModel:
        packed = self._packed = _repack(ctx, self.shards, self.default_codec)
        return PreparedModel(
            context_files={f"{MODEL_DIR_IN_REPO}/{MODEL_NAME_IN_REPO}": ctx.model.path},
            # A local read-only mount is trusted as `volume` trusts its file (hashing 5 GB
            # would cost seconds the other local strategies do not pay); downloads are pinned.
            env=_env(packed, f"{SHARDS_IN_CONTAINER}/manifest.json", pinned=False),
            model_file_bytes=packed.total_bytes,
            extra_metrics={"compression_ratio": packed.total_bytes / ctx.model.bytes,
                           "compress_s": packed.repack_s},
            notes={"shards": str(packed.shards), "codec": packed.codec,
                   **cached_note("compress_s", packed.cached, packed.measured_in)},
        )

    def starts(self, ctx: StrategyContext, prepared: PreparedModel, trial: int) -> list[StartSpec]:
        assert self._packed is not None
        return [StartSpec("-", env=prepared.env,
                          model_binds=[BindMount(str(self._packed.folder), SHARDS_IN_CONTAINER)],
                          host_model_bytes=self._packed.total_bytes)]


class ShardedRegistry(Registry):
    name = "sharded-registry"
    summary = "forest in shards, one S3 object each, streamed into the load at start-up"
    needs_ensemble = True
    disk_model_copies = 0.7  # zstd shards on the host and in the S3 server

    def prepare(self, ctx: StrategyContext) -> PreparedModel:
        from bench.servers.s3 import publish_files

        endpoint = self._connect(ctx)
        # Over the network, zstd's 3.4x fewer bytes are worth its decompression.
        packed = _repack(ctx, 0, "zstd3")
        prefix = f"{ctx.model.sha256[:16]}/sharded-{packed.shards}-{packed.codec}"
        files = sorted(p for p in packed.folder.iterdir() if p.name != "repack.json")
        with ctx.progress.step(f"uploading {len(files)} shard objects to "
                               f"s3://{ctx.options.s3_bucket}/{prefix}/"):
            upload_s = publish_files(endpoint, ctx.options.s3_bucket, prefix, files,
                                     ctx.progress.adder(sum(f.stat().st_size for f in files)))
        key = f"{prefix}/manifest.json"
        return PreparedModel(
            context_files={f"{MODEL_DIR_IN_REPO}/{MODEL_NAME_IN_REPO}": ctx.model.path},
            env={**_env(packed, "/tmp/manifest.json", pinned=True),
                 **self._download_env(ctx, endpoint, key)},
            model_file_bytes=packed.total_bytes,
            extra_metrics={"upload_s": upload_s},
            notes={"s3_endpoint": endpoint.host_url, "key": key, "shards": str(packed.shards)},
        )

    def starts(self, ctx: StrategyContext, prepared: PreparedModel, trial: int) -> list[StartSpec]:
        return [StartSpec("-", env=prepared.env, binds=[self._credentials_bind()],
                          resident_volumes=self.server_volumes())]


# The names this module adds to the command line, and where they sort in it.
ORDER = 60
STRATEGIES: dict[str, Factory] = {
    "sharded": lambda options: [Sharded(k) for k in options.shards],
    "sharded-registry": lambda _: [ShardedRegistry()]}
