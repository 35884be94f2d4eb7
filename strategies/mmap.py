"""Beyond every loader: the forest as plain arrays in one memory-mapped file
(docker/service/flat_forest.py). Nothing is unpickled at start-up: the service maps the file
read-only and predicts from it, so the "load" is constant-time, the first predictions read
the pages they touch, and every process and container mapping the same file shares one copy
of it in the page cache.

`mmap` mounts the flat file read-only (trusted like `volume`'s file: no hash); each trial
starts twice, without and with a prefetch (the kernel asked to read the file ahead), so the
report shows what prefetching buys. `mmap-registry` downloads the flat file with the verified
registry path (whole-file SHA-256 pinned) and then maps it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

from bench.engine import BindMount
from bench.host.fsutil import partial_path
from bench.measure.spec import StartSpec
from bench.model.flat_forest import FlatModel, convert
from bench.model.hashing import cached_sha256
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
from strategies.registry import CACHE_IN_CONTAINER, Registry

FLAT_IN_CONTAINER = f"{MODEL_DIR_IN_CONTAINER}/flat"
FLAT_NAME = "model.flat"
PREFETCH_CONDITIONS = {"no prefetch": False, "prefetch": True}


def _convert(ctx: StrategyContext) -> FlatModel:
    with ctx.progress.step("converting the forest to the flat memory-mapped format "
                           "(cached after the first time)"):
        return convert(ctx.model.path, ctx.model.sha256, ctx.cache, ctx.run_id)


def _prepared(ctx: StrategyContext, flat: FlatModel, env: dict[str, str]) -> PreparedModel:
    return PreparedModel(
        context_files={f"{MODEL_DIR_IN_REPO}/{MODEL_NAME_IN_REPO}": ctx.model.path},
        env={**service_env(model_format="flat", loading="eager", codec="none"), **env},
        model_file_bytes=flat.bytes,
        extra_metrics={"compression_ratio": flat.bytes / ctx.model.bytes,
                       "compress_s": flat.convert_s},
        notes={"nodes": str(flat.nodes), **cached_note("compress_s", flat.cached,
                                                       flat.measured_in)},
    )


class Mmap(Strategy):
    name = "mmap"
    summary = "forest as flat arrays, mounted read-only and memory-mapped (no load)"
    dockerfile = "Dockerfile.volume"
    dockerignore = "dockerignore.seed"
    disk_model_copies = 0.25  # the flat file: 16 bytes a node against 72-80
    needs_flat = True
    conditions = tuple(PREFETCH_CONDITIONS)

    def __init__(self) -> None:
        self._flat: FlatModel | None = None

    def prepare(self, ctx: StrategyContext) -> PreparedModel:
        flat = self._flat = _convert(ctx)
        prepared = _prepared(ctx, flat, service_env(model_path=f"{FLAT_IN_CONTAINER}/{FLAT_NAME}"))
        # The flat predictor's own predict is this strategy's in-process reference.
        return dataclasses.replace(prepared, in_process=("flat", flat.path))

    def starts(self, ctx: StrategyContext, prepared: PreparedModel, trial: int) -> list[StartSpec]:
        assert self._flat is not None
        # The folder, so that a Pipeline's pinned preprocessing file comes along.
        bind = BindMount(str(self._flat.path.parent), FLAT_IN_CONTAINER)
        return [StartSpec(condition, env={**prepared.env, **service_env(prefetch=flag)},
                          model_binds=[bind], host_model_bytes=self._flat.bytes)
                for condition, flag in PREFETCH_CONDITIONS.items()]


class MmapRegistry(Registry):
    name = "mmap-registry"
    summary = "flat forest downloaded from S3 at start-up, verified, then memory-mapped"
    needs_flat = True
    disk_model_copies = 0.6  # the flat file in the S3 server and in one cache volume

    def prepare(self, ctx: StrategyContext) -> PreparedModel:
        from bench.errors import StepFailed
        from bench.servers.s3 import publish_model

        flat = _convert(ctx)
        if flat.preprocessing is not None:
            raise StepFailed("mmap-registry downloads one file; this Pipeline's preprocessing "
                             "is a second one: use mmap for it")
        endpoint = self._connect(ctx)
        sha = cached_sha256(flat.path, ctx.cache)
        key = f"{ctx.model.sha256[:16]}/{FLAT_NAME}"
        with ctx.progress.step(f"uploading the flat forest to s3://{ctx.options.s3_bucket}/{key}"):
            upload_s = publish_model(endpoint, ctx.options.s3_bucket, key, flat.path, sha,
                                     ctx.progress.adder(flat.bytes))
        prepared = _prepared(ctx, flat, {
            **service_env(model_path=f"{CACHE_IN_CONTAINER}/{FLAT_NAME}", pinned_sha256=sha),
            **self._download_env(ctx, endpoint, key)})
        return PreparedModel(prepared.context_files, prepared.env, prepared.model_file_bytes,
                             {**prepared.extra_metrics, "upload_s": upload_s},
                             {**prepared.notes, "key": key})


class MmapLazy(Registry):
    """Serves before the model has arrived: only the page manifest is downloaded at start-up
    (pinned), and the flat file's pages come from the store as predictions touch them, while
    a background fill brings the rest (docker/service/paged_file.py)."""

    name = "mmap-lazy"
    summary = "flat forest fetched page by page from S3 as predictions need it (no download)"
    needs_flat = True
    disk_model_copies = 0.6  # the flat file in the S3 server and, once filled, in a volume

    def prepare(self, ctx: StrategyContext) -> PreparedModel:
        from bench.errors import StepFailed
        from bench.host.paths import service_module
        from bench.servers.s3 import publish_model

        flat = _convert(ctx)
        if flat.preprocessing is not None:
            raise StepFailed("mmap-lazy pages one file; this Pipeline's preprocessing is a "
                             "second one: use mmap for it")
        endpoint = self._connect(ctx)
        key = f"{ctx.model.sha256[:16]}/{FLAT_NAME}"
        paging = service_module("page_manifest")
        suffix = paging.MANIFEST_SUFFIX
        manifest = flat.path.with_name(flat.path.name + suffix)
        with ctx.progress.step("the flat forest's page manifest (a digest of every page)"):
            if not manifest.exists():  # cached beside the flat file; renamed whole
                partial = partial_path(manifest)
                partial.write_bytes(paging.manifest_of(str(flat.path)))
                os.replace(partial, manifest)
        manifest_sha = hashlib.sha256(manifest.read_bytes()).hexdigest()
        with ctx.progress.step(f"uploading the flat forest and its manifest to "
                               f"s3://{ctx.options.s3_bucket}/{key}"):
            upload_s = publish_model(endpoint, ctx.options.s3_bucket, key, flat.path,
                                     cached_sha256(flat.path, ctx.cache),
                                     ctx.progress.adder(flat.bytes))
            upload_s += publish_model(endpoint, ctx.options.s3_bucket, key + suffix, manifest,
                                      manifest_sha)
        prepared = _prepared(ctx, flat, {
            **service_env(model_path=f"{CACHE_IN_CONTAINER}/{FLAT_NAME}",
                          pinned_sha256=manifest_sha),
            **self._download_env(ctx, endpoint, key)})
        return PreparedModel(prepared.context_files,
                             {**prepared.env, **service_env(model_format="flat_lazy")},
                             prepared.model_file_bytes,
                             {**prepared.extra_metrics, "upload_s": upload_s},
                             {**prepared.notes, "key": key})


# The names this module adds to the command line, and where they sort in it.
ORDER = 70
# mmap-lazy pays off on a fresh node over a slow link (--fresh-node --link-rate); on the
# default run's warm node it measures what mmap-registry does, so it runs when named.
NAMED_ONLY = ("mmap-lazy",)
STRATEGIES: dict[str, Factory] = {"mmap": lambda _: [Mmap()],
                                  "mmap-registry": lambda _: [MmapRegistry()],
                                  "mmap-lazy": lambda _: [MmapLazy()]}
