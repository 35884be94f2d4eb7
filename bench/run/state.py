"""What a benchmark run holds from its setup to its cleanup, and the steps every phase
of it shares (bench.run.runner composes the phases)."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from pathlib import Path

from bench.engine import Engine
from bench.host import machine_state
from bench.measure.fresh_node import MODEL_REPOSITORY, FreshNode
from bench.measure.node_fleet import NodeFleet
from bench.measure.recorder import StrategyRecorder
from bench.measure.spec import StartSpec, TrialSettings
from bench.model.source import ModelArtifact
from bench.prepare.runtime_image import RuntimeImage
from bench.progress import Progress
from bench.results.store import ResultsStore, StrategyOutcome
from bench.run.canary import Canary, CpuTimes
from bench.run.config import RunConfig
from bench.run.plan import Step, plan
from bench.servers.s3 import S3Endpoint
from strategies.base import (
    PreparedModel,
    Strategy,
    StrategyContext,
)


@dataclasses.dataclass
class StrategyRun:
    """What one strategy keeps from its opening (prepare, builds) to its closing, across
    the rounds of an interleaved run."""

    strategy: Strategy
    ctx: StrategyContext
    recorder: StrategyRecorder
    outcome: StrategyOutcome
    prepared: PreparedModel | None = None
    image: str = ""
    image_added: int = 0
    stopped: bool = False  # prepare, build or a start failed: no more trials
    torn_down: bool = False

    @property
    def open(self) -> bool:
        return self.prepared is not None and not self.stopped


class RunState:
    """The state a run keeps across its phases (set by BenchmarkRun.__init__ and setup), and
    the small steps every phase shares. Each phase is a class of its own module."""

    config: RunConfig
    engine: Engine
    progress: Progress
    run_id: str
    labels: dict[str, str]
    cache: Path
    strategies: list[Strategy]
    store: ResultsStore | None
    failed: bool
    node: FreshNode | None
    fleet: NodeFleet | None  # --nodes: the fresh nodes, each an engine of its own
    model: ModelArtifact
    next_version: ModelArtifact
    runtime: RuntimeImage
    network: str
    order_seed: int
    steps: list[Step]
    settle_machine: Callable[..., machine_state.MachineState]
    _runs: dict[str, StrategyRun]
    _canary: Canary | None
    _shared_s3: S3Endpoint | None
    _round: int
    _round_began: CpuTimes | None
    _strategies_built: int
    _build_cache_before: dict[str, int] | None
    _build_order: dict[str, list[str]]

    def _plan(self) -> list[Step]:
        """The plan of the strategies the run will measure (made again once those that
        cannot take the model are skipped)."""
        return plan([s.name for s in self.strategies], self.config.trials, self.config.order,
                    random.Random(self.order_seed), warmup=self.config.warmup)


    @staticmethod
    def _sync(run: StrategyRun, store: ResultsStore) -> None:
        """Move what the recorder gathered into the store and write it."""
        recorder, outcome = run.recorder, run.outcome
        store.add(recorder.samples)
        recorder.samples = []
        for key, entries in recorder.notes.items():
            outcome.notes.setdefault(key, []).extend(entries)
        recorder.notes = {}
        outcome.not_measured.extend(recorder.not_measured)
        recorder.not_measured = []
        store.flush()

    def _teardown(self, run: StrategyRun) -> None:
        """Release what the strategy's prepare started, once."""
        if run.torn_down:
            return
        run.torn_down = True
        try:
            run.strategy.teardown(run.ctx)
        except Exception as error:  # the run's sweep removes what is labelled anyway
            self.progress.warn(f"[{run.strategy.name}] teardown: {type(error).__name__}: "
                               f"{error}")

    def _context_sent(self, sent: int, total: int) -> None:
        self.progress.count(sent, total, "B")

    def _downloaded(self, received: int, total: int) -> None:
        self.progress.count(received, total, "B")

    def _trial_settings(self) -> TrialSettings:
        """The one place a start's settings derive from the run's options (the memory search
        used to build its own and drop --workers)."""
        config = self.config
        return TrialSettings(
            start_timeout_s=config.start_timeout_s, latency_requests=config.latency_requests,
            memory_limit_bytes=config.memory_limit_bytes, cpus=config.cpus,
            workers=config.workers, worker_mode=config.worker_mode,
            shared_cache=config.shared_cache, load_duration_s=config.load_duration_s,
            load_concurrency=config.load_concurrency,
            on_download=self._downloaded if config.replicas == 1 else None)

    def _as_on_node(self, start: StartSpec) -> StartSpec:
        """A start outside the trials (memory search, rollout) after fresh-node trials:
        the images are on the node under their pinned references only."""
        if self.node is None or start.model_image is None:
            return start
        return dataclasses.replace(start, model_image=self.node.current_ref(start.model_image))

    def _the_canary(self) -> Canary:
        """The run's canary, made on first use (its buffers are made once per run)."""
        if self._canary is None:
            self._canary = Canary(self.cache / "scratch" / self.run_id)
        return self._canary

    def _count_pushes_for(self, run: StrategyRun) -> None:
        """What the node pushes from now on is this strategy's (its service image at its
        opening, its model image at its first fresh start): interleaved, the strategy whose
        step runs is set again before every step."""
        assert self.node is not None
        recorder = run.recorder
        self.node.on_push = lambda repository, pinned: recorder.pushed(
            "model image" if repository == MODEL_REPOSITORY else "service image",
            pinned.push.seconds, pinned.push.bytes)
