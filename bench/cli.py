"""Command line: python -m bench {run,report,compare,model,base-image,export,clean}.

Every user error is one line naming the problem and the fix; usage errors exit 2.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TypeAlias

from bench.errors import BenchError, UsageError
from bench.options import add_options, given_fields, positive_int, value_of
from bench.progress import Progress


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


Commands: TypeAlias = "argparse._SubParsersAction[_Parser]"
LANGUAGES = ("en", "es")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m bench", description=(
        "Measure what it costs to get a multi-GB model file into a Dockerized prediction "
        "service, one Docker image per loading strategy."))
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (_run_parser, _report_parser, _compare_parser, _model_parser,
                _base_image_parser, _export_parser, _clean_parser):
        add(commands)
    return parser


def _run_parser(commands: Commands) -> None:
    from bench.run.config import RunConfig

    run = commands.add_parser(
        "run", help="build, start and measure every strategy",
        description="Build one image per strategy, start its containers and store every raw "
        "measurement under results/<run-id>/.")
    # Every option of the run and its strategies is declared once, on RunConfig's and
    # StrategyOptions' fields (bench/options.py); only how the run ends is the CLI's own.
    add_options(run, RunConfig)
    run.add_argument("--lang", choices=LANGUAGES, default="en",
                     help="language of the report written at the end (default en)")
    run.add_argument("--no-report", action="store_true",
                     help="do not write the report at the end (`python -m bench report RUN` "
                          "renders it later from the stored results)")
    run.add_argument("--quiet", action="store_true", help="print only the summary")


def _report_parser(commands: Commands) -> None:
    report = commands.add_parser(
        "report", help="tables, charts and report.md from a stored run",
        description="Render the comparison tables (Markdown, CSV, LaTeX), the charts (PNG and "
        "SVG), the seed-claims check and report.md into RUN/report-<lang>/. Reads only the "
        "stored results; no Docker engine needed.")
    report.add_argument("run_folder", type=Path, metavar="RUN",
                        help="a results folder, e.g. results/20261126T114117Z-9a57, or `latest`")
    report.add_argument("--lang", choices=LANGUAGES, default="en",
                        help="language of every label, title and header (default en)")
    report.add_argument("--format", default="png,svg", dest="formats",
                        help="chart formats, comma-separated from png, svg, pdf (default png,svg)")
    report.add_argument("--dpi", type=positive_int, default=300, help="PNG resolution (300)")
    report.add_argument("--out", type=Path, metavar="DIR",
                        help="write here instead of RUN/report-<lang>/")
    report.add_argument("--quiet", action="store_true", help="print only the report's path")
    from bench.report.scale_out import DEFAULT_EGRESS

    report.add_argument("--egress-model", default=DEFAULT_EGRESS, metavar="RATE",
                        help="the egress of the servers every node shares (OCI registry, model "
                             "store) that the scale-out projection of a --fresh-node run "
                             f"assumes, e.g. 1Gbit (default {DEFAULT_EGRESS})")


def _compare_parser(commands: Commands) -> None:
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


def _model_parser(commands: Commands) -> None:
    model = commands.add_parser("model", help="make (or find cached) the synthetic model",
                                description="Train the synthetic FIFA RandomForest of a given "
                                "size (cached by size and seed) and print its path; with "
                                "--inspect, say what a model file needs to be loaded.")
    from bench.run.config import MODEL_OPTIONS, RunConfig

    add_options(model, RunConfig, only=MODEL_OPTIONS)
    model.add_argument("--inspect", action="store_true",
                       help="read the model's pickle without running any of it: the modules "
                            "it imports, the libraries they come from, the versions it was "
                            "saved with and those the service serves it with")


def _base_image_parser(commands: Commands) -> None:
    base = commands.add_parser("base-image", help="make the base and runtime images",
                               description="Make the Python 3.11 base image (pulled, or built "
                               "offline with debootstrap), the wheelhouse and the runtime image.")
    base.add_argument("--rebuild", action="store_true", help="rebuild even when cached")


def _export_parser(commands: Commands) -> None:
    from bench.export import exportable

    export = commands.add_parser(
        "export", help="write a strategy's setup into your project folder",
        description="Adopt the winner: write the strategy's Dockerfile, .dockerignore, "
        "compose service (docker-compose --profile STRATEGY up), the runtime Dockerfile, the "
        "service code and a README of what each file does into DIR (created if missing). "
        "Files of the same name in DIR are replaced.")
    export.add_argument("strategy", metavar="STRATEGY",
                        help=f"one of: {', '.join(exportable())}")
    export.add_argument("folder", type=Path, metavar="DIR", help="your project folder")
    export.add_argument("--model", type=Path, metavar="PATH",
                        help="your .joblib model, copied (or compressed) to "
                             "datos/modelos/ in DIR")


def _clean_parser(commands: Commands) -> None:
    clean = commands.add_parser(
        "clean", help="remove what the harness left in Docker; list and free its caches",
        description="Remove every container, image, volume and network carrying a harness "
        "run label (including --keep images), then list what each cache holds on disk. The "
        "caches stay unless asked: they save minutes to hours on the next run. A run still "
        "running (in another terminal) is left alone, and named.")
    clean.add_argument("--build-cache", action="store_true",
                       help="also free BuildKit's whole build cache (`docker builder prune`; "
                            "a run removes the entries it added, unless --keep)")
    clean.add_argument("--models", action="store_true",
                       help="also delete the synthetic models and the compressed, sharded and "
                            "flat copies (made again on demand: a 5.45 GB model takes about "
                            "16 minutes to train)")
    clean.add_argument("--all", action="store_true",
                       help="all of the above, and the cached base, runtime and server (S3, OCI "
                            "registry) images")


def _cmd_run(args: argparse.Namespace, progress: Progress) -> int:
    from bench.engine import DockerEngine
    from bench.run.config import RunConfig
    from bench.run.runner import BenchmarkRun

    config = RunConfig(**given_fields(args, RunConfig))
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
    from bench.servers.link import LinkRate

    egress = LinkRate.parse(args.egress_model, "--egress-model")
    folder = _resolve_run_folder(args.run_folder)
    with progress.step(f"report ({args.lang}) for {folder.name}"):
        files = render_report(folder, args.lang, formats, args.dpi, args.out, egress)
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
    from bench.model.environment_text import print_environment
    from bench.model.source import synthetic_model, user_model
    from bench.run.config import RunConfig

    model_path = value_of(args, RunConfig, "model_path")
    if args.inspect and model_path is not None:
        from bench.model.source import check_model_path

        check_model_path(model_path)
        return print_environment(model_path, progress, value_of(args, RunConfig, "model_code"),
                                 value_of(args, RunConfig, "requirements"))
    if model_path is not None:
        artifact = user_model(model_path, cache_dir(), progress,
                              value_of(args, RunConfig, "model_code"),
                              value_of(args, RunConfig, "requirements"))
    else:
        artifact = synthetic_model(value_of(args, RunConfig, "model_size_bytes"),
                                   value_of(args, RunConfig, "seed"), models_dir(),
                                   cache_dir(), progress, value_of(args, RunConfig, "model_kind"))
    print(f"{artifact.path}\t{artifact.bytes} bytes\tsha256 {artifact.sha256}")
    return (print_environment(artifact.path, progress, value_of(args, RunConfig, "model_code"),
                              value_of(args, RunConfig, "requirements"))
            if args.inspect else 0)


def _cmd_base_image(args: argparse.Namespace, progress: Progress) -> int:
    from bench.engine import DockerEngine
    from bench.host.paths import cache_dir
    from bench.prepare.base_image import ensure_base_image
    from bench.prepare.runtime_image import ensure_runtime_image

    engine = DockerEngine.connect()
    try:
        base = ensure_base_image(engine, progress, rebuild=args.rebuild)
        runtime = ensure_runtime_image(engine, base, cache_dir(), progress,
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
    from bench.engine import CACHE_LABEL, DockerEngine
    from bench.host.caches import model_caches
    from bench.host.node_teardown import remove_dead_clusters
    from bench.results.units import format_bytes
    from bench.run.cleanup import remove_ended_runs

    engine = DockerEngine.connect()
    try:
        remove_dead_clusters(engine, progress)
        removed, running = remove_ended_runs(engine)
        for run_id in running:
            print(f"left run {run_id}: still running (clean again after it ends)")
        if args.all and running:
            print("left the cached base, runtime and server images: a run is using them")
        elif args.all:
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
