"""Seed strategy 4: an external model registry (S3-compatible).

The image holds only code. At start-up the service downloads the model with concurrent
ranged GETs into a cache volume, verifies it against the pinned SHA-256 before loading, and
reuses a verified cached copy on the next start. Each trial measures a first start (empty
cache volume) and a restart (warm cache volume). Credentials reach the container only as a
read-only file mounted at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.engine import SERVICE_UID, BindMount, VolumeMount
from bench.measure.spec import StartSpec
from bench.servers.s3 import (
    S3Endpoint,
    external_endpoint,
    publish_model,
    reference_download_rate,
    start_rclone_server,
)
from bench.service_env import DEFAULT, service_env
from strategies.base import (
    MODEL_NAME_IN_REPO,
    Factory,
    PreparedModel,
    Strategy,
    StrategyContext,
)

CREDENTIALS_IN_CONTAINER = "/run/secrets/s3-credentials"
CACHE_IN_CONTAINER = "/cache"


class Registry(Strategy):
    name = "registry"
    summary = "code-only image, model downloaded from S3 at start-up, verified, cached"
    dockerfile = "Dockerfile.registry"
    dockerignore = "dockerignore.seed"
    disk_model_copies = 2.0  # the S3 server's copy and one trial's cache volume
    # Every trial starts twice: on an empty cache volume, then on the one it just filled.
    conditions = ("cold cache volume", "warm cache volume")

    # "boto3": boto3's transfer manager (download_file), hashed afterwards: the default, as
    # on the 1 GB model it was at least as fast as the hand-written one (451 vs 399 MB/s, the
    # trials' ranges overlapping; first correct prediction 8.1 s vs 10.1 s), and a library
    # is kept over hand-written code that is not faster. "ranged": the service's concurrent
    # ranged GETs, hashed while the bytes arrive (registry-ranged).
    DEFAULT_DOWNLOADER = DEFAULT["downloader"]  # the service's default

    def __init__(self, downloader: str = DEFAULT_DOWNLOADER) -> None:
        self.downloader = downloader
        if downloader != self.DEFAULT_DOWNLOADER:
            self.name = f"{type(self).name}-{downloader}"
            self.summary = f"{type(self).summary} ({downloader} downloader)"
        self._endpoint: S3Endpoint | None = None
        self._volumes: list[str] = []
        self._credentials: Path | None = None
        self._reference_bytes = 0
        self._adopted: S3Endpoint | None = None  # another instance's server (a rollout)
        self._owns_server = False  # it started its server, so it removes it

    def prepare(self, ctx: StrategyContext) -> PreparedModel:
        options = ctx.options
        endpoint = self._connect(ctx)
        key = f"{ctx.model.sha256[:16]}/{MODEL_NAME_IN_REPO}"
        with ctx.progress.step(f"uploading the model to s3://{options.s3_bucket}/{key}"):
            upload_s = publish_model(endpoint, options.s3_bucket, key, ctx.model.path,
                                     ctx.model.sha256, ctx.progress.adder(ctx.model.bytes))
        extra = {"upload_s": upload_s}
        if self._adopted is None:  # a rollout's instance publishes only: no reference run
            with ctx.progress.step("reference download on the host (boto3 download_file)"):
                sent_before = self._sent()
                extra["reference_download_mb_per_s"] = reference_download_rate(
                    endpoint, options.s3_bucket, key, ctx.cache / "scratch" / ctx.run_id,
                    options.download_concurrency, options.download_chunk_bytes)
                self._reference_bytes = self._sent() - sent_before  # not the model's way
        return PreparedModel(
            context_files={f"datos/modelos/{MODEL_NAME_IN_REPO}": ctx.model.path},
            env={**service_env(model_path=f"{CACHE_IN_CONTAINER}/{MODEL_NAME_IN_REPO}",
                               loading="eager", codec="none", pinned_sha256=ctx.model.sha256,
                               downloader=self.downloader),
                 **self._download_env(ctx, endpoint, key)},
            model_file_bytes=ctx.model.bytes,
            extra_metrics=extra,
            notes={"s3_endpoint": endpoint.host_url, "bucket": options.s3_bucket, "key": key},
        )

    def adopt_servers(self, other: Strategy) -> None:
        if isinstance(other, Registry):
            self._adopted = other._endpoint

    def _connect(self, ctx: StrategyContext) -> S3Endpoint:
        """The S3 server (started here unless --s3-endpoint or adopted) and the credentials
        file."""
        if self._adopted is not None:
            endpoint = self._adopted
        elif ctx.options.s3_endpoint:
            endpoint = external_endpoint(ctx.options.s3_endpoint)
        elif ctx.shared_s3 is not None:
            endpoint = ctx.shared_s3()
        else:
            with ctx.progress.step("starting the S3 server (rclone serve s3)"):
                endpoint = start_rclone_server(ctx.engine, ctx.runtime_image, ctx.run_id,
                                               ctx.network, dict(ctx.labels),
                                               ctx.options.link_rate)
            self._owns_server = True
        self._endpoint = endpoint
        # Its own file (a rollout's second instance must not remove the first one's).
        suffix = "" if self._adopted is None else "-next"
        self._credentials = ctx.cache / "secrets" / f"{ctx.run_id}-{self.name}{suffix}.env"
        self._credentials.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._credentials.write_text(f"AWS_ACCESS_KEY_ID={endpoint.access_key}\n"
                                     f"AWS_SECRET_ACCESS_KEY={endpoint.secret_key}\n")
        os.chmod(self._credentials, 0o400)
        if os.geteuid() == 0:
            os.chown(self._credentials, SERVICE_UID, SERVICE_UID)  # the service user, and nobody else
        return endpoint

    def _sent(self) -> int:
        server = self._endpoint.server if self._endpoint else None
        return server.counters().sent if server is not None else 0

    def wire_bytes(self) -> int:
        """What its S3 server received (uploads) and sent (downloads), the host's reference
        download left out; 0 for an external endpoint, whose link is unread."""
        endpoint = self._endpoint or self._adopted
        server = endpoint.server if endpoint is not None else None
        if server is None:
            return 0
        return server.counters().total - self._reference_bytes

    @staticmethod
    def _download_env(ctx: StrategyContext, endpoint: S3Endpoint, key: str) -> dict[str, str]:
        """Where the service downloads the model from, and how."""
        return service_env(s3_endpoint=endpoint.container_url, s3_bucket=ctx.options.s3_bucket,
                           s3_key=key, s3_credentials_file=CREDENTIALS_IN_CONTAINER,
                           download_concurrency=ctx.options.download_concurrency,
                           download_chunk_bytes=ctx.options.download_chunk_bytes)

    def _credentials_bind(self) -> BindMount:
        assert self._credentials is not None
        return BindMount(str(self._credentials), CREDENTIALS_IN_CONTAINER)

    def server_volumes(self) -> tuple[str, ...]:
        """The S3 server's data volume, where the harness started the server."""
        server = self._endpoint.server if self._endpoint else None
        return (server.data_volume,) if server is not None and server.data_volume else ()

    def starts(self, ctx: StrategyContext, prepared: PreparedModel, trial: int) -> list[StartSpec]:
        self._drop_volumes(ctx)  # one trial's cache at a time: a 5 GB model per volume
        # Named by strategy and trial: registry, registry-ranged and mmap-registry run in the
        # same round, and a name they shared would make one's "cold" cache another's warm one.
        volume = ctx.engine.create_volume(
            f"mlbench-{ctx.run_id.lower()}-{self.name}-cache-t{trial}", ctx.labels)
        self._volumes.append(volume)
        volumes = [VolumeMount(volume, CACHE_IN_CONTAINER)]
        binds = [self._credentials_bind()]
        served = self.server_volumes()
        return [
            StartSpec(condition, env=prepared.env, binds=binds, volumes=volumes,
                      cache_volume=volume, reuses_node_state=warm,
                      resident_volumes=(*served, volume) if warm else served)
            for condition, warm in zip(self.conditions, (False, True), strict=True)
        ]

    def teardown(self, ctx: StrategyContext) -> None:
        self._drop_volumes(ctx)
        if (self._endpoint is not None and self._endpoint.container_id
                and self._owns_server):  # an adopted or shared server is its starter's
            ctx.engine.remove_container(self._endpoint.container_id)
        if self._credentials is not None:
            self._credentials.unlink(missing_ok=True)

    def _drop_volumes(self, ctx: StrategyContext) -> None:
        for volume in self._volumes:
            ctx.engine.remove_volume(volume)
        self._volumes.clear()


# The names this module adds to the command line, and where they sort in it.
ORDER = 50
STRATEGIES: dict[str, Factory] = {"registry": lambda options: [Registry(d) for d in options.downloaders]}
