"""The benchmark lifecycle, in named phases (as hyperfine does):

setup     sweep leftovers of dead runs, base image, wheelhouse, runtime image, model, network
open      per strategy: its model files, a build context shaped like the user's repository,
          cold and warm builds, image size, its warm-up start
rounds    round r runs trial r of every strategy, in an order shuffled per round from a
          recorded seed (bench.run.plan), each round after a canary of the machine, each start
          after the machine is brought to the same state (bench.host.machine_state)
close     per strategy: memory search, rollout, teardown
conclude  results written after every start, so a later failure loses nothing
cleanup   every labelled object removed on every exit path (success, error, Ctrl-C, SIGTERM)

Each phase is a class of its own module (bench.run.setup, .builds, .trials, .closing) over
the state they share (bench.run.state); BenchmarkRun composes them and dispatches the plan.
The runner only knows the Strategy interface, never a strategy by name.
"""

from __future__ import annotations

import datetime
import secrets
import shutil
import time

from tqdm import tqdm

from bench.engine import Engine
from bench.errors import BenchError, EngineUnavailable
from bench.host import machine_state
from bench.host.paths import cache_dir
from bench.measure import inprocess
from bench.measure.fresh_node import FreshNode
from bench.measure.node_fleet import NodeFleet
from bench.measure.recorder import StrategyRecorder
from bench.prepare.context import materialize, raw_data_csv
from bench.progress import Progress
from bench.results.store import ResultsStore, StrategyOutcome
from bench.run import liveness
from bench.run.canary import Canary, CpuTimes
from bench.run.cleanup import remove_run, run_labels, sigterm_as_interrupt
from bench.run.closing import Closing
from bench.run.config import RunConfig
from bench.run.plan import Step
from bench.run.setup import RunSetup
from bench.run.state import StrategyRun
from bench.run.trials import Trials
from bench.servers.s3 import S3Endpoint
from strategies import resolve
from strategies.base import StrategyContext

format_interval = tqdm.format_interval  # "1:02:03"; the same clock format as the bars


def new_run_id() -> str:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(2)}"


class BenchmarkRun(RunSetup, Trials, Closing):
    def __init__(self, config: RunConfig, engine: Engine, progress: Progress,
                 run_id: str | None = None) -> None:
        self.config = config
        self.engine = engine
        self.progress = progress
        self.run_id = run_id or new_run_id()
        self.labels = run_labels(self.run_id, config.keep)
        self.cache = cache_dir()
        self.strategies = resolve(list(config.strategies), config.options)
        self.store: ResultsStore | None = None
        self.failed = False
        self.created_swarm = False
        self.created_gateway_bridge = False
        self.node: FreshNode | None = None  # --fresh-node: where each start is provisioned
        self.fleet: NodeFleet | None = None  # --nodes
        self._strategies_built = 0
        self._build_cache_before: dict[str, int] | None = None
        self._build_order: dict[str, list[str]] = {}
        self.order_seed = (config.order_seed if config.order_seed is not None
                           else secrets.randbelow(2**31))
        self.steps: list[Step] = self._plan()
        self._runs: dict[str, StrategyRun] = {}
        self._shared_s3: S3Endpoint | None = None
        self._canary: Canary | None = None
        self._round_began: CpuTimes | None = None
        self._round: int = 0
        # Brings the machine to a start's state (unit tests with a fake engine swap it).
        self.settle_machine = machine_state.settle

    # -- lifecycle ------------------------------------------------------------------------

    def execute(self) -> ResultsStore:
        # Held until everything the run made is removed: `clean` leaves a running run alone.
        with liveness.holding(self.run_id, self.cache):
            return self._execute()

    def _execute(self) -> ResultsStore:
        self._build_cache_before = self._read_build_cache()
        with sigterm_as_interrupt():
            try:
                if self.config.orchestrator == "swarm" and not self.engine.swarm_active():
                    self.progress.info("initialising a single-node swarm (left again at the end)")
                    self.created_gateway_bridge = self.engine.swarm_init()
                    self.created_swarm = True
                store = self._setup()
                self._dispatch(store)
                store.record.status = "incomplete" if self.failed else "complete"
                store.record.metadata["finished_at"] = (
                    datetime.datetime.now(datetime.UTC).isoformat())
                store.flush()
                self.progress.info(f"results: {store.folder}")
                return store
            except KeyboardInterrupt:
                self._mark("interrupted")
                if self.store is not None:
                    self.progress.warn(f"interrupted; what was measured is in {self.store.folder}")
                raise
            except BenchError:
                self._mark("incomplete")
                raise
            except Exception:
                self._mark("incomplete")
                if self.engine.responds():
                    raise  # a bug, not the engine: keep the traceback
                where = f"; what was measured is in {self.store.folder}" if self.store else ""
                raise EngineUnavailable(
                    f"the Docker engine stopped answering during the run{where} (status "
                    "incomplete); start it again, then `python -m bench clean` removes what "
                    "this run left") from None
            finally:
                for run in self._runs.values():  # an interrupted run: release what is open
                    self._teardown(run)
                if self._canary is not None:
                    self._canary.remove()
                if self.fleet is not None:
                    self.fleet.close()  # its engines, namespaces, links and folders
                try:
                    remove_run(self.engine, self.run_id, self.config.keep, self.progress)
                except Exception as error:  # the engine is gone: say how to finish the job
                    self.progress.warn(f"could not remove this run's containers and images "
                                       f"({type(error).__name__}); run `python -m bench clean` "
                                       "once the engine answers")
                for scratch in ("contexts", "scratch"):
                    shutil.rmtree(self.cache / scratch / self.run_id, ignore_errors=True)
                self._account_build_cache()
                if self.created_swarm:
                    try:
                        # Leave the engine as it was found, its gateway bridge included.
                        self.engine.swarm_leave(self.created_gateway_bridge)
                    except Exception as error:
                        self.progress.warn(f"could not leave the swarm this run created "
                                           f"({type(error).__name__}): `docker swarm leave "
                                           "--force`")

    def _dispatch(self, store: ResultsStore) -> None:
        """Carry out the plan step by step; results are flushed after every start."""
        first_started = time.monotonic()
        total = len(self.steps)
        for done, step in enumerate(self.steps, start=1):
            if step.kind == "open":
                self._open(self._new_run(step.strategy, store))
            elif step.kind == "canary":
                self._take_canary(step.round, store)
            elif step.kind == "trial":
                run = self._runs[step.strategy]
                if run.open:
                    self._trial(run, step)
                    self._sync(run, store)
            else:
                self._close(self._runs[step.strategy], store)
            if step.kind == "canary":  # once a round: the pace of whole rounds
                self._say_time_left(done, total, time.monotonic() - first_started)
        self._end_round(store)

    def _say_time_left(self, done: int, total: int, elapsed_s: float) -> None:
        """The run's ETA from the plan: steps left at the mean pace so far."""
        if done < total:
            self.progress.info(f"{done}/{total} steps of the plan in "
                               f"{format_interval(elapsed_s)}; about "
                               f"{format_interval(elapsed_s / done * (total - done))} left")

    def _mark(self, status: str) -> None:
        """Record how the run ended; a strategy cut short is marked so, not left pending."""
        if self.store is None:
            return
        self.store.record.status = status
        for outcome in self.store.record.strategies.values():
            if outcome.status == "pending":
                outcome.status = "failed"
                outcome.failures.append({"phase": "run", "reason": f"run {status}"})
        self.store.flush()

    # -- one strategy: open, trials, close -------------------------------------------------

    def _new_run(self, name: str, store: ResultsStore) -> StrategyRun:
        strategy = next(s for s in self.strategies if s.name == name)
        outcome = StrategyOutcome(strategy.name, start_key=strategy.start_key)
        if strategy.aa_of:
            outcome.notes["aa_of"] = strategy.aa_of
        store.record.strategies[strategy.name] = outcome
        ctx = StrategyContext(self.run_id, self.model, self.cache, self.labels, self.network,
                              self.runtime.ref, self.engine, self.progress, self.config.options,
                              shared_s3=self._shared_s3_server)
        run = StrategyRun(strategy, ctx, StrategyRecorder(strategy.name), outcome)
        self._runs[name] = run
        return run

    def _open(self, run: StrategyRun) -> None:
        """Prepare and build; a failure is recorded and the strategy leaves the plan."""
        strategy, ctx, recorder, outcome = run.strategy, run.ctx, run.recorder, run.outcome
        assert self.store is not None
        try:
            with self.progress.step(f"[{strategy.name}] prepare ({strategy.summary})"):
                prepared = strategy.prepare(ctx)
                run.prepared = prepared
                context = materialize(
                    self.cache / "contexts" / self.run_id / strategy.name, strategy.dockerfile,
                    strategy.dockerignore, prepared.context_files,
                    raw_data_csv(self.cache, self.config.seed), self.labels,
                )
            outcome.notes.update(prepared.notes)
            recorder.prepared(prepared.model_file_bytes, prepared.extra_metrics)
            if prepared.in_process is not None:
                kind, path = prepared.in_process
                with self.progress.step(f"[{strategy.name}] its model's own predict in a fresh "
                                        "process (the in-process reference)"):
                    recorder.prepared_reference(inprocess.measure(
                        kind, path, self.model.reference_rows,
                        self.model.reference_predictions))
            run.image, run.image_added = self._build(strategy, context, recorder)
            if self.node is not None and self.config.fresh_node:
                self._count_pushes_for(run)
                with self.progress.step(f"[{strategy.name}] pushing the image to the OCI "
                                        "registry"):
                    run.image = self.node.pin(run.image, f"mlbench-{strategy.name}").ref
            outcome.notes["build_order"] = self._build_order[strategy.name]
        except BenchError as failure:  # prepare or build failed: record it, go on
            run.stopped = True
            outcome.status = "failed"
            outcome.failures.append({"phase": "prepare/build", "reason": str(failure),
                                     "log_tail": getattr(failure, "log_tail", "")})
            self.progress.warn(f"[{strategy.name}] failed: {failure}")
            self.failed = True
            self._teardown(run)
        finally:
            self._sync(run, self.store)

