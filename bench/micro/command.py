"""What every micro tool's command line shares: the synthetic model's size and seed, the
model made (or found cached) from them, and errors as one line with their exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from bench.errors import BenchError
from bench.host.paths import cache_dir, models_dir
from bench.model.source import ModelArtifact, synthetic_model
from bench.progress import Progress
from bench.results.units import parse_size


def parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """A tool's parser: its docstring's first paragraph, --model-size and --seed."""
    made = argparse.ArgumentParser(prog=f"python -m {prog}",
                                   description=(doc or "").split("\n\n")[0])
    made.add_argument("--model-size", default="64MB", help="synthetic model (default 64MB)")
    made.add_argument("--seed", type=int, default=0)
    return made


def model_of(args: argparse.Namespace, progress: Progress) -> ModelArtifact:
    """The synthetic model --model-size and --seed name (trained once, then cached)."""
    return synthetic_model(parse_size(args.model_size), args.seed, models_dir(), cache_dir(),
                           progress)


def run(main: Callable[[], None]) -> None:
    """Run a tool's main: a harness error is one line and its exit code (2: bad input)."""
    try:
        main()
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None
