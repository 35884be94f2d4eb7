"""Command line: python -m bench {run,report,compare,model,base-image,export,clean}.

Every user error is one line naming the problem and the fix; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.errors import BenchError, UsageError
from bench.progress import Progress
from bench.results.units import parse_duration, parse_size
from bench.run.config import BUILDERS, Builder

DEFAULT_MODEL_SIZE = "64MB"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, metavar="PATH",
                        help="your own .joblib model (any scikit-learn regressor or pipeline); "
                             "overrides --model-size")
    parser.add_argument("--model-size", default=DEFAULT_MODEL_SIZE, metavar="SIZE",
                        help="size of the synthetic FIFA RandomForest, e.g. 64MB, 1GB, 5.45GB "
                             f"(decimal units; default {DEFAULT_MODEL_SIZE})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data/model")


def build_parser() -> argparse.ArgumentParser:
    from strategies import REGISTRY
    from strategies.base import StrategyOptions

    defaults = StrategyOptions()
    parser = _Parser(prog="python -m bench", description=(
        "Measure what it costs to get a multi-GB model file into a Dockerized prediction "
        "service, one Docker image per loading strategy."))
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="build, start and measure every strategy",
                              description="Build one image per strategy, start its containers "
                              "and store every raw measurement under results/<run-id>/.")
    run.add_argument("--strategies", default=None,
                     help=f"comma-separated, from: {', '.join(REGISTRY)} (default: all; "
                          "those that cannot take your model are skipped, with the reason)")
    _add_model_arguments(run)
    run.add_argument("--trials", type=_positive_int, default=3,
                     help="container starts per strategy (default 3); builds run once")
    run.add_argument("--order", choices=("interleaved", "sequential"), default="interleaved",
                     help="interleaved (default): builds first, then round r runs trial r of "
                          "every strategy in an order shuffled per round, so a machine that "
                          "drifts slows every strategy alike; sequential: every trial of one "
                          "strategy, then the next (less disk and memory at once, but "
                          "strategy is confounded with time)")
    run.add_argument("--order-seed", type=int, default=None, metavar="N",
                     help="seed of the per-round shuffle (default: random; recorded in "
                          "run.json, so a run's order can be repeated)")
    run.add_argument("--no-warmup", action="store_true",
                     help="count each strategy's first start after its build as a trial; by "
                          "default it is a warm-up, stored with warmup=true and left out of "
                          "every statistic")
    run.add_argument("--build-trials", type=_positive_int, default=1,
                     help="cold + warm builds per strategy and builder (default 1); use 3 to "
                          "publish build-time claims: verdicts need the spread of repeated "
                          "builds")
    run.add_argument("--replicas", type=_positive_int, default=1,
                     help="containers of each strategy started at the same moment per start "
                          "(default 1); adds all_ready_s and summed memory. Registry replicas "
                          "share one cache volume: one downloads, the others wait and reuse it")
    run.add_argument("--replica-cache", choices=("shared", "private"), default="shared",
                     help="registry replicas: one cache volume for all (one downloads, the "
                          "others wait on its lock) or one each (N downloads at once: the "
                          "thundering herd). Default shared")
    run.add_argument("--orchestrator", choices=("engine", "swarm"), default="engine",
                     help="engine: plain containers; swarm: each start is a swarm service of "
                          "--replicas tasks (a single-node swarm is created if none exists and "
                          "left at the end; the run's network is then an attachable overlay "
                          "that the tasks and the S3 server join); modelcar needs `engine`")
    run.add_argument("--workers", type=_positive_int, default=1,
                     help="server worker processes per container (default 1); adds per-worker "
                          "PSS/USS samples")
    run.add_argument("--worker-mode", choices=("copy", "preload"), default="copy",
                     help="copy: uvicorn --workers, each worker loads its own model; preload: "
                          "gunicorn --preload loads once, gc.freeze(), then forks (default copy)")
    run.add_argument("--builder", choices=("legacy", "buildkit", "both", "auto"), default="auto",
                     help="image builder: legacy (docker-py), buildkit (docker CLI), both, or "
                          "auto = both where BuildKit is available, else legacy")
    run.add_argument("--drop-caches", action="store_true",
                     help="drop the page cache before every container start (root only): "
                          "cold-cache trials")
    run.add_argument("--no-cache-reset", action="store_true",
                     help="warm starts find the page cache as the previous start left it; by "
                          "default (as root), when free memory is short of twice the model "
                          "plus 2 GiB, it is dropped before the start, so that the load does "
                          "not reclaim other files' pages as it allocates; the start's model "
                          "files are read back either way")
    run.add_argument("--requests", type=_positive_int, default=50, dest="latency_requests",
                     help="single-row /predict requests per trial for latency (default 50)")
    run.add_argument("--start-timeout", type=float, default=600.0, metavar="SECONDS",
                     help="give up on a container that is not serving after this (default 600)")
    run.add_argument("--memory-limit", metavar="SIZE",
                     help="container memory limit, e.g. 2GB (default: none)")
    run.add_argument("--cpus", type=float, default=None, metavar="N",
                     help="CPU limit per container, e.g. 0.5 (default: none)")
    run.add_argument("--load", default="0", metavar="DURATION", dest="load_duration",
                     help="after each start is measured, a sustained closed-loop load of "
                          "/predict for this long, e.g. 60s or 2m (every tenth request 100 "
                          "rows): throughput, p50/p95/p99, errors, RAM growth (default: none)")
    run.add_argument("--concurrency", type=_positive_int, default=4, metavar="C",
                     help="clients of the --load, each sending its next request when the "
                          "last one answered (default 4)")
    run.add_argument("--find-memory-limit", action="store_true",
                     help="after the trials, bisect the smallest --memory limit (no swap) under "
                          "which each strategy still serves a correct prediction")
    run.add_argument("--memory-search-starts", type=_positive_int, default=7, metavar="N",
                     help="container starts the memory-limit search may use (default 7)")
    run.add_argument("--keep", action="store_true",
                     help="keep the run's images (labelled) for inspection until `clean`")
    run.add_argument("--skip-disk-check", action="store_true",
                     help="start even when the free disk looks too small for the planned run "
                          "(the estimate is generous: images, copies, S3 data, caches)")
    run.add_argument("--rebuild-runtime", action="store_true",
                     help="rebuild the shared runtime image instead of reusing the cached one")
    run.add_argument("--results", type=Path, default=None, metavar="DIR",
                     help="where run folders go (default: results/)")
    run.add_argument("--codec", default=",".join(defaults.codecs),
                     help="compressed strategy codecs, from gzip9 (the seed's), zstdN, lz4 "
                          f"(default {','.join(defaults.codecs)})")
    run.add_argument("--s3-endpoint", metavar="URL",
                     help="registry strategy: use this S3 endpoint (MinIO, AWS) with "
                          "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from the environment "
                          "instead of starting rclone serve s3")
    run.add_argument("--s3-bucket", default=defaults.s3_bucket,
                     help=f"registry strategy bucket (default {defaults.s3_bucket})")
    run.add_argument("--download-concurrency", type=_positive_int,
                     default=defaults.download_concurrency,
                     help=f"registry strategy: parallel ranged GETs "
                          f"(default {defaults.download_concurrency})")
    run.add_argument("--downloader", default=",".join(defaults.downloaders),
                     metavar="NAME[,NAME]",
                     help="registry strategy: boto3 (boto3's transfer manager, hashed afterwards; the "
                          "default) and/or ranged (concurrent ranged GETs, SHA-256 computed "
                          "while the bytes arrive: the strategy registry-ranged)")
    chunk = f"{defaults.download_chunk_bytes // 2**20}MiB"
    run.add_argument("--download-chunk", default=chunk, metavar="SIZE",
                     help=f"registry strategy: bytes per ranged GET (default {chunk}, the "
                          "service's own)")
    run.add_argument("--shards", default="auto", metavar="K[,K...]",
                     help="sharded strategy: shard counts, e.g. 1,4,16,64 for a sweep (one "
                          "strategy sharded-kK each); auto = about 4 MB per shard. Needs a "
                          "tree ensemble (RandomForest, ExtraTrees, GradientBoosting, "
                          "HistGradientBoosting) or a Pipeline ending in one")
    run.add_argument("--shard-codec", choices=("zstd3", "none"), default=None,
                     help="sharded strategies: compression of each shard (default: none for "
                          "sharded, read from disk; zstd3 for sharded-registry, downloaded)")
    run.add_argument("--fresh-node", action="store_true",
                     help="every start on a node that holds nothing of the strategy: its "
                          "images are removed and pulled by digest from an OCI registry, "
                          "the model files of bind-mount strategies copied from the model "
                          "store (an S3 server); model_ready_s then counts from there (the "
                          "shared runtime image stays on the node)")
    run.add_argument("--oci-registry", metavar="HOST:PORT",
                     help="--fresh-node: push to and pull from this registry (the engine must "
                          "trust it) instead of starting distribution (Debian's "
                          "docker-registry) for the run")
    run.add_argument("--rollout", nargs="?", const="", default=None, metavar="NEW.joblib",
                     help="after its trials, roll each strategy's running service out to a "
                          "new model version and measure rollout_s and rollout_bytes until it "
                          "answers with the new predictions (rebuild, compress, upload, push, "
                          "pull, copy, restart: what the strategy needs). The new version: "
                          "the synthetic model of seed+1, or NEW.joblib with --model")
    run.add_argument("--link-rate", metavar="RATE",
                     help="limit what the harness's OCI registry and S3 servers send to RATE, "
                          "e.g. 1Gbit or 100Mbit (tc tbf on their link, set from the host; "
                          "the service containers stay unshaped). Default: loopback speed")
    run.add_argument("--lang", choices=("en", "es"), default="en",
                     help="language of the report written at the end (default en)")
    run.add_argument("--no-report", action="store_true",
                     help="do not write the report at the end (`python -m bench report RUN` "
                          "renders it later from the stored results)")
    run.add_argument("--quiet", action="store_true", help="print only the summary")

    report = commands.add_parser(
        "report", help="tables, charts and report.md from a stored run",
        description="Render the comparison tables (Markdown, CSV, LaTeX), the charts (PNG and "
        "SVG), the seed-claims check and report.md into RUN/report-<lang>/. Reads only the "
        "stored results; no Docker engine needed.")
    report.add_argument("run_folder", type=Path, metavar="RUN",
                        help="a results folder, e.g. results/20261126T114117Z-9a57, or `latest`")
    report.add_argument("--lang", choices=("en", "es"), default="en",
                        help="language of every label, title and header (default en)")
    report.add_argument("--format", default="png,svg", dest="formats",
                        help="chart formats, comma-separated from png, svg, pdf (default png,svg)")
    report.add_argument("--dpi", type=_positive_int, default=300, help="PNG resolution (300)")
    report.add_argument("--out", type=Path, metavar="DIR",
                        help="write here instead of RUN/report-<lang>/")
    report.add_argument("--quiet", action="store_true", help="print only the report's path")

    compare = commands.add_parser(
        "compare", help="ratios B/A between two stored runs; fail on regressions",
        description="Print, per strategy and metric, the ratio B/A of two stored runs, "
        "regressions apart from improvements, and any difference in machine or engine "
        "metadata. Exits 1 when a --fail-on rule is broken or a value measured in A is "
        "missing in B; exits 2 for runs of a different model, configuration or machine. A "
        "change counts only when it passes the threshold, exceeds a noise floor (absolute "
        "and relative to the value), and (with repeated trials) most of B's trials lie beyond "
        "A's range: one outlying trial neither hides nor makes a regression.")
    compare.add_argument("run_a", type=Path, metavar="RUN_A", help="the baseline run folder")
    compare.add_argument("run_b", type=Path, metavar="RUN_B", help="the run to judge")
    compare.add_argument("--fail-on", action="append", default=[], metavar="RULE",
                         help="[metric:]stat:N%%, stat one of median, min, max; repeatable; "
                              "e.g. median:10%% or build_cold_s:median:15%%")
    compare.add_argument("--allow-missing", action="store_true",
                         help="do not fail when a strategy or metric measured in A is missing "
                              "in B")
    compare.add_argument("--allow-mismatch", action="store_true",
                         help="compare runs of a different model, configuration or machine "
                              "(refused by default: their ratios mix causes)")

    model = commands.add_parser("model", help="make (or find cached) the synthetic model",
                                description="Train the synthetic FIFA RandomForest of a given "
                                "size (cached by size and seed) and print its path.")
    _add_model_arguments(model)

    base = commands.add_parser("base-image", help="make the base and runtime images",
                               description="Make the Python 3.11 base image (pulled, or built "
                               "offline with debootstrap), the wheelhouse and the runtime image.")
    base.add_argument("--rebuild", action="store_true", help="rebuild even when cached")

    export = commands.add_parser(
        "export", help="write a strategy's setup into your project folder",
        description="Adopt the winner: write the strategy's Dockerfile, .dockerignore, "
        "compose service (docker-compose --profile STRATEGY up), the runtime Dockerfile, the "
        "service code and a README of what each file does into DIR (created if missing). "
        "Files of the same name in DIR are replaced.")
    export.add_argument("strategy", metavar="STRATEGY",
                        help="one of: baked, volume, dockerignore, copyall, "
                             "copyall-dockerignore, compressed-gzip9, compressed-zstd9, "
                             "compressed-lz4")
    export.add_argument("folder", type=Path, metavar="DIR", help="your project folder")
    export.add_argument("--model", type=Path, metavar="PATH",
                        help="your .joblib model, copied (or compressed) to "
                             "datos/modelos/ in DIR")

    clean = commands.add_parser(
        "clean", help="remove what the harness left in Docker; list and free its caches",
        description="Remove every container, image, volume and network carrying a harness "
        "run label (including --keep images), then list what each cache holds on disk. The "
        "caches stay unless asked: they save minutes to hours on the next run.")
    clean.add_argument("--build-cache", action="store_true",
                       help="also free BuildKit's whole build cache (`docker builder prune`; "
                            "a run removes the entries it added, unless --keep)")
    clean.add_argument("--models", action="store_true",
                       help="also delete the synthetic models and the compressed, sharded and "
                            "flat copies (made again on demand: a 5.45 GB model takes about "
                            "16 minutes to train)")
    clean.add_argument("--all", action="store_true",
                       help="all of the above, and the cached base and runtime images")
    return parser


def _shard_counts(text: str) -> tuple[int, ...]:
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


def _downloaders(text: str) -> tuple[str, ...]:
    from strategies.registry import Registry

    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in Registry.DOWNLOADERS]
    if not names or unknown:
        raise UsageError(f"unknown --downloader {text!r}: use boto3, ranged or boto3,ranged")
    return names


def _builders(choice: str) -> tuple[Builder, ...]:
    from bench.engine import buildkit_available

    if choice == "auto":
        return BUILDERS if buildkit_available() else ("legacy",)
    if choice == "both":
        return BUILDERS
    return tuple(b for b in BUILDERS if b == choice)


def _cmd_run(args: argparse.Namespace, progress: Progress) -> int:
    from bench.engine import DockerEngine
    from bench.host.paths import results_dir
    from bench.run.config import RunConfig
    from bench.run.runner import BenchmarkRun
    from bench.servers.link import LinkRate
    from strategies.base import StrategyOptions

    codecs = tuple(c.strip() for c in args.codec.split(",") if c.strip())
    options = StrategyOptions(codecs=codecs, s3_endpoint=args.s3_endpoint,
                              s3_bucket=args.s3_bucket,
                              download_concurrency=args.download_concurrency,
                              download_chunk_bytes=parse_size(args.download_chunk),
                              downloaders=_downloaders(args.downloader),
                              shards=_shard_counts(args.shards), shard_codec=args.shard_codec,
                              link_rate=(None if args.link_rate is None
                                         else LinkRate.parse(args.link_rate)))
    from strategies import DEFAULT_STRATEGIES

    names = (DEFAULT_STRATEGIES if args.strategies is None
             else tuple(n.strip() for n in args.strategies.split(",") if n.strip()))
    config = RunConfig(
        strategies=names, model_path=args.model, model_size_bytes=parse_size(args.model_size),
        seed=args.seed, trials=args.trials, build_trials=args.build_trials,
        order=args.order, order_seed=args.order_seed, warmup=not args.no_warmup,
        replicas=args.replicas, workers=args.workers,
        orchestrator=args.orchestrator, shared_cache=args.replica_cache == "shared",
        worker_mode=args.worker_mode,
        builders=_builders(args.builder),
        drop_caches=args.drop_caches, cache_reset=not args.no_cache_reset, keep=args.keep,
        latency_requests=args.latency_requests,
        start_timeout_s=args.start_timeout,
        memory_limit_bytes=parse_size(args.memory_limit) if args.memory_limit else None,
        cpus=args.cpus,
        rebuild_runtime=args.rebuild_runtime, skip_disk_check=args.skip_disk_check,
        load_duration_s=parse_duration(args.load_duration),
        load_concurrency=args.concurrency,
        find_memory_limit=args.find_memory_limit,
        memory_search_starts=args.memory_search_starts,
        results_root=args.results or results_dir(), options=options,
        strategies_named=args.strategies is not None,
        fresh_node=args.fresh_node, oci_registry=args.oci_registry,
        rollout=args.rollout is not None,
        rollout_model_path=Path(args.rollout) if args.rollout else None,
    )
    engine = DockerEngine.connect()
    run = BenchmarkRun(config, engine, progress)
    try:
        run.execute()
    finally:
        engine.close()
        # Complete or not (but not interrupted: the user asked to stop), the run ends with
        # the comparison it exists for; the report reads only what was stored.
        if run.store is not None and not args.no_report and run.store.record.status in (
                "complete", "incomplete"):
            try:
                _conclude(run.store.folder, args.lang, progress)
            except Exception as error:  # never let the report hide how the run ended
                progress.warn(f"the report could not be written ({type(error).__name__}: "
                              f"{error}); the results are in {run.store.folder}: "
                              f"`python -m bench report {run.store.folder}`")
    if run.failed:
        progress.warn("some trials failed; see `failures` in run.json")
        return 1
    return 0


def _conclude(folder: Path, lang: str, progress: Progress) -> None:
    from bench.report import render_report
    from bench.report.labels import Labels
    from bench.report.terminal import comparison_table
    from bench.report.view import RunView
    from bench.results.store import load_run

    with progress.step(f"report ({lang})"):
        files = render_report(folder, lang)
    print("\n" + comparison_table(RunView.of(load_run(folder)), Labels(lang)))
    print(f"\nreport: {files.report}", flush=True)


def _started_at(folder: Path) -> str:
    import json

    try:
        return str(json.loads((folder / "run.json").read_text())["metadata"]["started_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _resolve_run_folder(folder: Path) -> Path:
    from bench.host.paths import results_dir

    if str(folder) == "latest":
        runs = [p for p in results_dir().iterdir() if (p / "run.json").exists()]
        if not runs:
            raise UsageError(f"no runs in {results_dir()}: run `python -m bench run` first")
        # The run that started last, by its own record: by name, the committed
        # `seed-5.45GB` sorted after every run id.
        return max(runs, key=_started_at)
    if not (folder / "run.json").is_file():
        raise UsageError(f"{folder} is not a results folder (no run.json): pass a folder "
                         "written by `python -m bench run`, or `latest`")
    return folder


def _cmd_report(args: argparse.Namespace, progress: Progress) -> int:
    from bench.report import render_report

    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    unknown = [f for f in formats if f not in ("png", "svg", "pdf")]
    if unknown or not formats:
        raise UsageError(f"unknown chart format {','.join(unknown) or '(none)'}: "
                         "use --format png,svg (or pdf)")
    folder = _resolve_run_folder(args.run_folder)
    with progress.step(f"report ({args.lang}) for {folder.name}"):
        files = render_report(folder, args.lang, formats, args.dpi, args.out)
    print(files.report)
    return 0


def _cmd_compare(args: argparse.Namespace, progress: Progress) -> int:
    from bench.results import compare
    from bench.results.store import load_run

    rules = [compare.parse_rule(text) for text in args.fail_on]
    run_a = load_run(_resolve_run_folder(args.run_a))
    run_b = load_run(_resolve_run_folder(args.run_b))
    mismatched = compare.mismatches(run_a, run_b)
    if mismatched and not args.allow_mismatch:
        key, value_a, value_b = mismatched[0]
        more = f" (and {len(mismatched) - 1} more)" if len(mismatched) > 1 else ""
        raise UsageError(f"the runs are not comparable: {key} is {value_a!r} in A and "
                         f"{value_b!r} in B{more}; compare runs of the same model, "
                         "configuration and machine, or pass --allow-mismatch")
    changes = compare.compare(run_a, run_b, rules)
    missing = compare.missing_in_b(run_a, run_b)
    print(compare.render(run_a, run_b, changes, missing))
    broken = [c for c in changes if c.broken]
    failed = False
    if broken:
        print(f"FAIL: {len(broken)} regression(s) break "
              f"{', '.join(sorted({str(c.rule) for c in broken}))}", file=sys.stderr)
        failed = True
    if missing and not args.allow_missing:
        print(f"FAIL: {len(missing)} value(s) measured in A are missing in B (a strategy or "
              "metric that failed or was dropped); pass --allow-missing to accept",
              file=sys.stderr)
        failed = True
    return 1 if failed else 0


def _cmd_model(args: argparse.Namespace, progress: Progress) -> int:
    from bench.host.paths import cache_dir, models_dir
    from bench.model.source import synthetic_model, user_model

    if args.model is not None:
        artifact = user_model(args.model, cache_dir(), progress)
    else:
        artifact = synthetic_model(parse_size(args.model_size), args.seed, models_dir(),
                                   cache_dir(), progress)
    print(f"{artifact.path}\t{artifact.bytes} bytes\tsha256 {artifact.sha256}")
    return 0


def _cmd_base_image(args: argparse.Namespace, progress: Progress) -> int:
    from bench.engine import DockerEngine
    from bench.host.paths import REQUIREMENTS_FILE, cache_dir
    from bench.prepare.base_image import ensure_base_image
    from bench.prepare.runtime_image import ensure_runtime_image
    from bench.prepare.wheelhouse import ensure_wheelhouse

    engine = DockerEngine.connect()
    try:
        base = ensure_base_image(engine, progress, rebuild=args.rebuild)
        wheels = ensure_wheelhouse(cache_dir(), REQUIREMENTS_FILE, progress)
        runtime = ensure_runtime_image(engine, base, wheels, cache_dir(), progress,
                                       rebuild=args.rebuild)
    finally:
        engine.close()
    print(f"base {base.ref} ({base.origin}); runtime {runtime.ref} "
          f"({runtime.image_bytes / 1e6:.0f} MB, built in {runtime.build_s:.1f}s)")
    return 0


def _cmd_export(args: argparse.Namespace, progress: Progress) -> int:
    from bench.export import export

    written = export(args.strategy, args.folder, args.model)
    for path in written:
        print(path)
    print(f"next: cd {args.folder} && docker build -f Dockerfile.runtime -t model-runtime . "
          f"&& docker-compose --profile {args.strategy} up -d --build")
    return 0


def _cmd_clean(args: argparse.Namespace, progress: Progress) -> int:
    from bench.engine import CACHE_LABEL, RUN_LABEL, DockerEngine
    from bench.host.caches import model_caches
    from bench.results.units import format_bytes

    engine = DockerEngine.connect()
    try:
        removed = engine.remove_labelled(RUN_LABEL)
        if args.all:
            cached = engine.remove_labelled(CACHE_LABEL)
            removed = {k: removed[k] + cached[k] for k in removed}
        print(f"removed {removed['containers']} containers, {removed['images']} images, "
              f"{removed['volumes']} volumes, {removed['networks']} networks")
        build_cache = sum(engine.build_cache().values())
        if args.build_cache or args.all:
            freed = engine.prune_all_build_cache()
            print(f"freed BuildKit's build cache: {format_bytes(freed)}")
        else:
            print(f"BuildKit build cache: {format_bytes(build_cache)} (--build-cache frees it)")
    finally:
        engine.close()
    for cache in model_caches():
        if args.models or args.all:
            print(f"freed {cache.name}: {format_bytes(cache.free())}")
        else:
            print(f"{cache.name}: {format_bytes(cache.bytes)} (--models frees it)")
    return 0


COMMANDS = {"run": _cmd_run, "report": _cmd_report, "compare": _cmd_compare, "model": _cmd_model,
            "base-image": _cmd_base_image, "export": _cmd_export, "clean": _cmd_clean}


def main(argv: Sequence[str] | None = None) -> int:
    progress = Progress()
    if __name__ == "bench.cli" and argv is None:
        # Started in the background (nohup, `cmd &`, CI runners), a process inherits SIGINT
        # ignored and Ctrl-C or `kill -INT` would never stop a report or a compare: restore
        # Python's handler, so every command ends cleanly with exit 130.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        args = build_parser().parse_args(argv)
        progress.quiet = bool(getattr(args, "quiet", False))
        return COMMANDS[args.command](args, progress)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
