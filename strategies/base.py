"""The one interface every loading strategy implements.

A strategy is mostly data: which Dockerfile builds its image, whether the context has a
.dockerignore, how the model reaches the container (inside the image, a read-only bind mount,
or a download from a registry), how it is compressed and whether the service loads it eagerly
or lazily. Hooks (prepare / starts / teardown) cover what data cannot say. The runner only
talks to this interface and never names a strategy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bench.engine import BindMount, Engine
from bench.errors import UsageError
from bench.measure.spec import StartSpec
from bench.model.serving_env import HOST_SKLEARN
from bench.model.source import ModelArtifact
from bench.options import comma_list, option, positive_int
from bench.progress import Progress
from bench.results.units import parse_size
from bench.servers.link import LinkRate
from bench.service_env import DEFAULT, VARIABLE, default_int, service_env

if TYPE_CHECKING:
    from bench.servers.s3 import S3Endpoint

MODEL_DIR_IN_REPO = "datos/modelos"
MODEL_NAME_IN_REPO = "modelo_fifa.joblib"  # the seed repository's file name
MODEL_DIR_IN_CONTAINER = "/app/datos/modelos"


def shard_counts(text: str) -> tuple[int, ...]:
    if text.strip() == "auto":
        return (0,)
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise UsageError(f"malformed --shards {text!r}: use auto or whole numbers >= 1 such "
                         "as 16 or 1,4,16,64")
    return counts


DOWNLOADERS = ("boto3", "ranged")  # the service's two (docker/service/s3_download.py)


def downloaders(text: str) -> tuple[str, ...]:
    names = comma_list(text)
    if not names or set(names) - set(DOWNLOADERS):
        raise UsageError(f"unknown --downloader {text!r}: use boto3, ranged or boto3,ranged")
    return names


def _joined(values: tuple[object, ...]) -> str:
    return ",".join(str(v) for v in values)


@dataclass(frozen=True)
class StrategyOptions:
    """Strategy knobs; each field is its command-line option too (bench/options.py)."""

    codecs: tuple[str, ...] = option(
        ("gzip9", "zstd9", "lz4"), "--codec", "compressed strategy codecs, from gzip9 (the "
        "seed's), zstdN, lz4 (default {default})", parse=comma_list, show=_joined)
    s3_endpoint: str | None = option(  # None: the harness starts its own S3 server
        None, "--s3-endpoint", "registry strategy: use this S3 endpoint (MinIO, AWS) with "
        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from the environment instead of starting "
        "rclone serve s3", metavar="URL")
    s3_bucket: str = option("models", "--s3-bucket",
                            "registry strategy bucket (default {default})")
    # The service's own defaults (a run from the CLI and one through the API agree with it).
    download_concurrency: int = option(
        default_int("download_concurrency"), "--download-concurrency",
        "registry strategy: parallel ranged GETs (default {default})", parse=positive_int)
    download_chunk_bytes: int = option(
        default_int("download_chunk_bytes"), "--download-chunk",
        "registry strategy: bytes per ranged GET (default {default}, the service's own)",
        parse=parse_size, show=lambda size: f"{size // 2**20}MiB", metavar="SIZE")
    downloaders: tuple[str, ...] = option(  # registry: one strategy per downloader
        (DEFAULT["downloader"],), "--downloader", "registry strategy: boto3 (boto3's transfer manager, "
        "hashed afterwards; the default) and/or ranged (concurrent ranged GETs, SHA-256 "
        "computed while the bytes arrive: the strategy registry-ranged)", parse=downloaders,
        show=_joined, metavar="NAME[,NAME]")
    shards: tuple[int, ...] = option(  # sharded strategies: 0 = automatic (about 4 MB each)
        (0,), "--shards", "sharded strategy: shard counts, e.g. 1,4,16,64 for a sweep (one "
        "strategy sharded-kK each); auto = about 4 MB per shard (default {default}). Needs a "
        "tree ensemble (RandomForest, ExtraTrees, GradientBoosting, HistGradientBoosting) or "
        "a Pipeline ending in one", parse=shard_counts,
        show=lambda counts: "auto" if counts == (0,) else _joined(counts), metavar="K[,K...]")
    shard_codec: str | None = option(  # None: none from a volume, zstd3 over the network
        None, "--shard-codec", "sharded strategies: compression of each shard (default: none "
        "for sharded, read from disk; zstd3 for sharded-registry, downloaded)",
        choices=("zstd3", "none"))
    link_rate: LinkRate | None = option(  # what the harness's servers may send (None: loopback)
        None, "--link-rate", "limit what the harness's OCI registry and S3 servers send to "
        "RATE, e.g. 1Gbit or 100Mbit (tc tbf on their link, set from the host; the service "
        "containers stay unshaped). Default: loopback speed", parse=LinkRate.parse,
        metavar="RATE")


@dataclass(frozen=True)
class StrategyContext:
    run_id: str
    model: ModelArtifact
    cache: Path
    labels: Mapping[str, str]
    network: str  # a bridge network the harness created for this run
    runtime_image: str  # the shared runtime image every strategy image builds FROM
    engine: Engine
    progress: Progress
    options: StrategyOptions
    # The run's one S3 server, started on first use and shared by every registry strategy
    # (one copy of each object; all of them live until the last round). None: each strategy
    # starts its own.
    shared_s3: Callable[[], S3Endpoint] | None = None


@dataclass(frozen=True)
class PreparedModel:
    """What prepare() made: files the repository holds and how the service finds the model."""

    context_files: Mapping[str, Path]  # path in the repository -> file on the host
    env: Mapping[str, str]  # service settings (MODEL_PATH, MODEL_CODEC, MODEL_LOADING, ...)
    model_file_bytes: int  # bytes of the file the container reads
    extra_metrics: Mapping[str, float] = field(default_factory=dict)  # once per strategy
    notes: Mapping[str, str] = field(default_factory=dict)
    # The format ("joblib" or "flat") and file of the model the service predicts with, when
    # it is not the user's joblib: the runner times that predict in-process as a reference.
    in_process: tuple[str, Path] | None = None


def cached_note(metric: str, cached: bool, measured_in: str) -> dict[str, str]:
    """A note that a preparation timing was measured by an earlier run and reused from the
    cache (stored beside the value, so a report never presents it as this run's)."""
    return {f"{metric} cached": f"measured in run {measured_in}"} if cached else {}


class Strategy:
    """Base class: the data fields, and hooks with the common behaviour."""

    name: str = ""
    summary: str = ""
    dockerfile: str = ""  # file under docker/, copied to docker/Dockerfile in the context
    dockerignore: str | None = None  # file under docker/, copied to .dockerignore at the root
    codec: str = "none"  # none | gzip9 | zstd9 | lz4 (the file the container reads)
    loading: str = "eager"  # eager | lazy
    model_in_image: bool = False  # False: a bind mount or a download brings the model
    image_carries_model: bool = False  # the image holds the model's bytes (used or not)
    # Host disk the strategy needs besides images, in model sizes: compressed copies, shards,
    # S3 server data, cache volumes (see bench/run/disk_plan.py).
    disk_model_copies: float = 0.0
    # `export` can write it into a user's project: the model reaches the service from the
    # image or a read-only mount, with nothing the harness makes (an S3 server, shards).
    exportable: bool = False
    needs_flat: bool = False  # it serves the flat format (mmap): ModelArtifact.flat_refusal
    needs_ensemble: bool = False  # it takes a tree ensemble apart, tree by tree (sharded)
    # Strategies with the same key do the same work at start (the same code, the same file
    # through the same mount): their timings differ only by noise, so the run measures its
    # noise floor on them (the A/A control). None: a start like no other's.
    start_key: str | None = None
    # The strategy this one repeats under a second name, as the run's dedicated A/A control.
    aa_of: str | None = None
    # The conditions of its starts, in order ("-": one start like no other): the report
    # has a label for each (tests/test_spanish.py renders them all).
    conditions: tuple[str, ...] = ("-",)

    def skip_reason(self, model: ModelArtifact) -> str | None:
        """Why this strategy cannot take the model (None: it can)."""
        kind = model.details.get("final_estimator") or model.details.get("model_class")
        if self.needs_flat and model.flat_refusal is not None:
            return f"the flat format cannot hold {kind}: {model.flat_refusal}"
        if not self.needs_flat and model.missing_in_service:
            missing = ", ".join(model.missing_in_service)
            return (f"it unpickles the model, which needs {missing}: the service's image does "
                    f"not install it (a module of your project: pass --model-code DIR)"
                    + ("; the flat format (mmap) serves it without" if model.flat_refusal
                       is None else ""))
        if self.needs_ensemble and not model.is_tree_ensemble:
            return (f"it needs a tree ensemble (RandomForest, ExtraTrees, GradientBoosting, "
                    f"HistGradientBoosting, or a Pipeline ending in one), not {kind}")
        served = model.served_sklearn
        if self.needs_ensemble and served is not None and served != HOST_SKLEARN:
            return (f"it pickles the model's trees again, with this host's scikit-learn "
                    f"{HOST_SKLEARN}, and the model is served with scikit-learn {served}, "
                    "which need not load another version's pickle")
        return None

    def prepare(self, ctx: StrategyContext) -> PreparedModel:
        files = {f"{MODEL_DIR_IN_REPO}/{MODEL_NAME_IN_REPO}": ctx.model.path}
        return PreparedModel(
            context_files=files,
            env=self.local_env(f"{MODEL_DIR_IN_CONTAINER}/{MODEL_NAME_IN_REPO}"),
            model_file_bytes=ctx.model.bytes,
        )

    def model_file_name(self) -> str:
        """The file under datos/modelos/ the container reads (the seed's name by default)."""
        return MODEL_NAME_IN_REPO

    def exported_model(self, model: Path, scratch: Path) -> Path:
        """The user's model as this strategy's container reads it (`export --model`)."""
        return model

    def local_env(self, container_path: str) -> dict[str, str]:
        """The service's settings when the model is a local file at `container_path` (in the
        image or mounted): what prepare() gives the run and what `export` writes."""
        return service_env(model_path=container_path, loading=self.loading, codec=self.codec)

    def starts(self, ctx: StrategyContext, prepared: PreparedModel, trial: int) -> list[StartSpec]:
        if self.model_in_image:
            return [StartSpec("-", env=prepared.env)]
        container_path = prepared.env[VARIABLE["model_path"]]
        repo_path = f"{MODEL_DIR_IN_REPO}/{Path(container_path).name}"
        host_file = prepared.context_files[repo_path]
        return [StartSpec("-", env=prepared.env,
                          model_binds=[BindMount(str(host_file), container_path)],
                          host_model_bytes=prepared.model_file_bytes)]

    def wire_bytes(self) -> int:
        """Bytes the strategy's own servers have moved so far (a rollout counts them)."""
        return 0

    def adopt_servers(self, other: Strategy) -> None:
        """Use the servers `other` (the same strategy) started, instead of starting its own:
        a rollout publishes the new version where the running one came from."""

    def teardown(self, ctx: StrategyContext) -> None:
        """Release what prepare() started (servers, buckets). Labelled objects go anyway."""


# name on the command line -> factory of one or more strategy instances; each strategy
# module declares its own in STRATEGIES (strategies/__init__.py finds them).
Factory = Callable[[StrategyOptions], list[Strategy]]
