"""Strategies that fail on purpose, loaded through MLBENCH_EXTRA_STRATEGIES by the tests."""

from __future__ import annotations

from pathlib import Path

from strategies.base import PreparedModel, StartSpec, Strategy, StrategyContext

HERE = Path(__file__).resolve().parent / "docker"


class BrokenBuild(Strategy):
    name = "broken-build"
    summary = "a Dockerfile whose RUN step fails"
    dockerfile = str(HERE / "Dockerfile.broken")


class SlowBuild(Strategy):
    name = "slow-build"
    summary = "a build that sleeps, to be interrupted"
    dockerfile = str(HERE / "Dockerfile.slow")


class CrashingService(Strategy):
    name = "crashing-service"
    summary = "the model path points nowhere: the service can never load it"
    dockerfile = "Dockerfile.volume"

    def starts(self, ctx: StrategyContext, prepared: PreparedModel, trial: int) -> list[StartSpec]:
        return [StartSpec("-", env={**prepared.env, "MODEL_PATH": "/nonexistent/model.joblib"})]


class NeverReady(Strategy):
    name = "never-ready"
    summary = "a container that runs but never answers /health"
    dockerfile = str(HERE / "Dockerfile.hang")


STRATEGIES = {
    "never-ready": lambda _: [NeverReady()],
    "broken-build": lambda _: [BrokenBuild()],
    "slow-build": lambda _: [SlowBuild()],
    "crashing-service": lambda _: [CrashingService()],
}
