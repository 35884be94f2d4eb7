"""Strategies that fail on purpose, loaded through MLBENCH_EXTRA_STRATEGIES by the tests."""

from __future__ import annotations

from pathlib import Path

from bench.measure.spec import StartSpec
from strategies.base import PreparedModel, Strategy, StrategyContext
from strategies.registry import Registry

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


class SlowLoad(Strategy):
    """volume's service with a load stretched by a known delay, to watch the probe."""

    name = "slow-load"
    summary = "volume with a 6 s load"
    dockerfile = "Dockerfile.volume"
    LOAD_DELAY_S = 6.0

    def starts(self, ctx: StrategyContext, prepared: PreparedModel, trial: int) -> list[StartSpec]:
        from strategies.volume import Volume

        (start,) = Volume().starts(ctx, prepared, trial)
        return [StartSpec("-", env={**start.env,
                                    "MLBENCH_TEST_LOAD_DELAY_S": str(self.LOAD_DELAY_S)},
                          model_binds=start.model_binds,
                          host_model_bytes=start.host_model_bytes)]

    def prepare(self, ctx: StrategyContext) -> PreparedModel:
        from strategies.volume import Volume

        return Volume().prepare(ctx)


class LeakyService(Strategy):
    """volume's service, keeping 60 MB more with every /predict: under a memory limit it
    serves its first correct prediction, then is OOM-killed during the latency requests."""

    name = "leaky-service"
    summary = "volume whose every /predict keeps 60 MB"
    dockerfile = "Dockerfile.volume"
    LEAK_BYTES = 60_000_000

    def prepare(self, ctx: StrategyContext) -> PreparedModel:
        from bench.service_env import service_env
        from strategies.volume import Volume

        prepared = Volume().prepare(ctx)
        leak = service_env(leak_per_predict_bytes=self.LEAK_BYTES)
        return PreparedModel(prepared.context_files, {**prepared.env, **leak},
                             prepared.model_file_bytes)


class NeverReady(Strategy):
    name = "never-ready"
    summary = "a container that runs but never answers /health"
    dockerfile = str(HERE / "Dockerfile.hang")


class RegistryMissingObject(Registry):
    """The registry strategy whose service asks for an object the bucket does not hold (a
    model deleted, or a key mistyped, after the deployment was written)."""

    name = "registry-missing-object"
    summary = "registry with an S3 key that does not exist"

    def prepare(self, ctx: StrategyContext) -> PreparedModel:
        prepared = super().prepare(ctx)
        env = {**prepared.env, "S3_KEY": prepared.env["S3_KEY"] + ".deleted"}
        return PreparedModel(prepared.context_files, env, prepared.model_file_bytes,
                             prepared.extra_metrics, prepared.notes)


STRATEGIES = {
    "never-ready": lambda _: [NeverReady()],
    "leaky-service": lambda _: [LeakyService()],
    "broken-build": lambda _: [BrokenBuild()],
    "slow-build": lambda _: [SlowBuild()],
    "crashing-service": lambda _: [CrashingService()],
    "slow-load": lambda _: [SlowLoad()],
    "registry-missing-object": lambda _: [RegistryMissingObject()],
}
