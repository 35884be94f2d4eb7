"""The real engine: one connection, every job. The rest of the harness types against the
`Engine` protocol (bench.engine.protocol), so its logic can be unit-tested with a fake."""

from __future__ import annotations

from bench.engine.build import BuildJobs
from bench.engine.housekeeping import Housekeeping
from bench.engine.images import ImageJobs


class DockerEngine(Housekeeping, BuildJobs, ImageJobs):
    """A connection to one Docker engine (docker SDK; the CLI for BuildKit and import)."""
