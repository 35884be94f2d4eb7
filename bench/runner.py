"""The benchmark lifecycle, in named phases (as hyperfine does):

setup     sweep leftovers of dead runs, base image, wheelhouse, runtime image, model, network
open      per strategy: its model files, a build context shaped like the user's repository,
          cold and warm builds, image size, its warm-up start
rounds    round r runs trial r of every strategy, in an order shuffled per round from a
          recorded seed (bench.plan), each round after a canary of the machine, each start
          after the machine is brought to the same state (bench.machine_state)
close     per strategy: memory search, rollout, teardown
conclude  results written after every start, so a later failure loses nothing
cleanup   every labelled object removed on every exit path (success, error, Ctrl-C, SIGTERM)

The runner only knows the Strategy interface, never a strategy by name.
"""

from __future__ import annotations

import dataclasses
import datetime
import random
import secrets
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench import disk_plan, machine_state, page_cache
from bench.canary import Canary, CpuTimes
from bench.cleanup import remove_run, run_labels, sigterm_as_interrupt, sweep_stale_runs
from bench.config import RunConfig
from bench.engine import BuildResult, Engine
from bench.errors import BenchError, EngineUnavailable, StepFailed, UsageError
from bench.machine import commit_info, engine_metadata, machine_info
from bench.measure import inprocess, memory_search
from bench.measure import trial as trial_module
from bench.measure.fresh_node import MODEL_REPOSITORY, FreshNode
from bench.measure.measurement import StartMeasurement
from bench.measure.recorder import (
    Place,
    StrategyRecorder,
    in_process_samples,
    runtime_sample,
    start_condition,
)
from bench.metrics import MACHINE_ROW, Sample
from bench.model.source import ModelArtifact, synthetic_model, user_model
from bench.oci_registry import external_registry, start_oci_registry
from bench.paths import REQUIREMENTS_FILE, cache_dir, models_dir
from bench.plan import Step, plan, trial_order
from bench.prepare.base_image import BaseImage, ensure_base_image
from bench.prepare.context import materialize, raw_data_csv, touch_service_code
from bench.prepare.runtime_image import RuntimeImage, ensure_runtime_image
from bench.prepare.wheelhouse import ensure_wheelhouse
from bench.progress import Progress
from bench.results import ResultsStore, StrategyOutcome
from bench.units import format_bytes
from strategies import new_instance, resolve
from strategies.base import (
    MODEL_DIR_IN_CONTAINER,
    PreparedModel,
    StartSpec,
    Strategy,
    StrategyContext,
)
from strategies.s3 import S3Endpoint, external_endpoint, start_rclone_server

format_interval = tqdm.format_interval  # "1:02:03"; the same clock format as the bars




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


def new_run_id() -> str:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(2)}"


class BenchmarkRun:
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

    def _plan(self) -> list[Step]:
        """The plan of the strategies the run will measure (made again once those that
        cannot take the model are skipped)."""
        return plan([s.name for s in self.strategies], self.config.trials, self.config.order,
                    random.Random(self.order_seed), warmup=self.config.warmup)

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

    def _take_canary(self, round_: int, store: ResultsStore) -> None:
        """The machine's canary before a round, and the CPU steal and iowait of the round
        that just ended (stored as samples of the `machine` row)."""
        self._end_round(store)
        canary = self._the_canary()
        canary.warm()
        reading = canary.measure()
        stamp = datetime.datetime.now(datetime.UTC).isoformat()
        store.add([Sample(MACHINE_ROW, "-", "-", round_, metric, value, round_, stamp)
                   for metric, value in (("canary_cpu_s", reading.cpu_s),
                                         ("canary_read_s", reading.read_s),
                                         ("canary_memory_s", reading.memory_s))])
        self._round, self._round_began = round_, reading.cpu_times
        store.flush()

    def _the_canary(self) -> Canary:
        """The run's canary, made on first use (its buffers are made once per run)."""
        if self._canary is None:
            self._canary = Canary(self.cache / "scratch" / self.run_id)
        return self._canary

    def _end_round(self, store: ResultsStore) -> None:
        if self._round_began is None:
            return
        now = CpuTimes.read()
        if now is not None:
            steal, iowait = now.share_since(self._round_began)
            store.add([Sample(MACHINE_ROW, "-", "-", self._round, metric, value, self._round)
                       for metric, value in (("round_steal_fraction", steal),
                                             ("round_iowait_fraction", iowait))])
        self._round_began = None
        store.flush()

    def _shared_s3_server(self) -> S3Endpoint:
        """The run's one S3 server for every registry strategy, started on first use."""
        if self._shared_s3 is None:
            with self.progress.step("starting the run's S3 server (rclone serve s3)"):
                self._shared_s3 = start_rclone_server(
                    self.engine, self.runtime.ref, self.run_id, self.network,
                    dict(self.labels), self.config.options.link_rate)
        return self._shared_s3

    def _read_build_cache(self) -> dict[str, int] | None:
        if "buildkit" not in self.config.builders:
            return None  # only BuildKit builds grow it; `docker system df` is not free
        try:
            return self.engine.build_cache()
        except Exception:  # an engine without BuildKit's df, or one that stopped answering
            return None

    def _account_build_cache(self) -> None:
        """What this run added to BuildKit's build cache (28.85 GB at full size, before),
        recorded and removed unless --keep; where the engine cannot, the exact command."""
        after = self._read_build_cache()
        if self._build_cache_before is None or after is None:
            return
        added = {i: size for i, size in after.items() if i not in self._build_cache_before}
        record: dict[str, Any] = {"added_bytes": sum(added.values()), "entries": len(added),
                                  "removed_bytes": 0}
        if added and not self.config.keep:
            try:
                record["removed_bytes"] = self.engine.prune_build_cache(list(added))
            except Exception as error:
                self.progress.warn(f"could not remove the {len(added)} build-cache entries "
                                   f"this run added ({type(error).__name__}); `docker builder "
                                   "prune` frees the whole build cache")
        if added:
            self.progress.info(f"BuildKit cache: this run added {format_bytes(record['added_bytes'])}"
                               f", removed {format_bytes(record['removed_bytes'])}"
                               + (" (--keep)" if self.config.keep else ""))
        if self.store is not None:
            self.store.record.metadata["build_cache"] = record
            self.store.flush()

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

    def _setup(self) -> ResultsStore:
        progress = self.progress
        sweep_stale_runs(self.engine, progress)
        if not self.config.skip_disk_check:
            self._check_disk()
        model = self._model()
        skipped = self._skip_what_does_not_apply(model)  # before anything is built
        self.steps = self._plan()
        base = ensure_base_image(self.engine, progress)
        wheels = ensure_wheelhouse(self.cache, REQUIREMENTS_FILE, progress)
        runtime = ensure_runtime_image(self.engine, base, wheels, self.cache, progress,
                                       rebuild=self.config.rebuild_runtime)
        self.model, self.runtime = model, runtime
        self.network = f"mlbench-{self.run_id}"
        # Under swarm an attachable overlay: the tasks and the S3 server both join it.
        self.engine.create_network(self.network, self.labels,
                                   swarm=self.config.orchestrator == "swarm")
        if self.config.fresh_node or self.config.rollout:
            self.node = self._fresh_node()
        if self.config.rollout:
            self.next_version = self._next_version()
        store = ResultsStore.create(self.config.results_root, self.run_id,
                                    self._metadata(base, runtime, model))
        self.store = store
        for name, reason in skipped.items():
            store.record.strategies[name] = StrategyOutcome(name, "skipped",
                                                            notes={"skipped": reason})
            progress.info(f"[{name}] skipped: {reason}")
        with progress.step("the model's own predict in a fresh process on the host (the "
                           "in-process reference)"):
            try:
                store.add(in_process_samples(inprocess.measure(
                    "joblib", model.path, model.reference_rows, model.reference_predictions)))
            except StepFailed as failure:  # a reference, not a strategy: say so, go on
                progress.warn(f"no in-process reference: {failure}")
        if runtime.build_s == runtime.build_s:  # NaN: cached by a version that kept no time
            store.add([runtime_sample(runtime.build_s, runtime.cached)])
        store.flush()
        progress.info(f"run {self.run_id}: {len(self.strategies)} strategies, "
                      f"{self.config.trials} trials ({self.config.order}, seed "
                      f"{self.order_seed}), model {model.bytes / 1e6:.1f} MB")
        return store

    def _next_version(self) -> ModelArtifact:
        """The model version a rollout brings: the user's, or the synthetic seed + 1."""
        if self.config.rollout_model_path is not None:
            return user_model(self.config.rollout_model_path, self.cache, self.progress)
        return synthetic_model(self.config.model_size_bytes, self.config.seed + 1,
                               models_dir(), self.cache, self.progress)

    def _fresh_node(self) -> FreshNode:
        """The OCI registry and the model store a fresh node fetches from."""
        options = self.config.options
        with self.progress.step("starting the OCI registry and the model store for "
                                "--fresh-node"):
            registry = (external_registry(self.config.oci_registry) if self.config.oci_registry
                        else start_oci_registry(self.engine, self.runtime.ref, self.run_id,
                                                self.network, self.labels, options.link_rate))
            store = (external_endpoint(options.s3_endpoint) if options.s3_endpoint
                     else start_rclone_server(self.engine, self.runtime.ref, self.run_id,
                                              self.network, dict(self.labels),
                                              options.link_rate, alias="modelstore"))
        node = FreshNode(self.engine, registry, store, options.s3_bucket,
                         self.cache / "scratch" / self.run_id, self.run_id)
        node.on_progress = self._context_sent  # the same byte bar as a build's context
        return node

    def _skip_what_does_not_apply(self, model: ModelArtifact) -> dict[str, str]:
        """Strategies that cannot take this model are skipped with the reason; naming one
        on the command line is a usage error instead."""
        skipped = {s.name: reason for s in self.strategies
                   if (reason := s.skip_reason(model)) is not None}
        if skipped and self.config.strategies_named:
            name, reason = next(iter(skipped.items()))
            raise UsageError(f"strategy {name} does not apply to this model: {reason}; leave "
                             "it out of --strategies")
        self.strategies = [s for s in self.strategies if s.name not in skipped]
        return skipped

    def _check_disk(self) -> None:
        from bench.engine import CACHE_LABEL
        from datos.model_generator import model_path

        if self.config.model_path is not None:
            model_bytes, exists = self.config.model_path.stat().st_size, True
        else:
            model_bytes = self.config.model_size_bytes
            exists = model_path(models_dir(), model_bytes, self.config.seed).exists()
        plan = disk_plan.estimate(self.strategies, model_bytes, self.config.builders, exists,
                                  bool(self.engine.labelled(CACHE_LABEL)["images"]),
                                  node_servers=self.config.fresh_node or self.config.rollout,
                                  rollout=self.config.rollout)
        engine_root = Path(self.engine.info().docker_root_dir or "/var/lib/docker")
        if not engine_root.exists():  # a remote engine: only the local side can be checked
            engine_root = self.cache
        disk_plan.check(plan, engine_root, self.cache)

    def _model(self) -> ModelArtifact:
        if self.config.model_path is not None:
            return user_model(self.config.model_path, self.cache, self.progress)
        return synthetic_model(self.config.model_size_bytes, self.config.seed, models_dir(),
                               self.cache, self.progress)

    def _metadata(self, base: BaseImage, runtime: RuntimeImage, model: ModelArtifact
                  ) -> dict[str, Any]:
        return {
            "started_at": datetime.datetime.now(datetime.UTC).isoformat(),
            "machine": machine_info(self.config.results_root.resolve().parent),
            "engine": engine_metadata(self.engine.info()),
            "builders": list(self.config.builders),
            "base_image": asdict(base),
            "runtime_image": asdict(runtime),
            "model": model.describe(),
            "page_cache": ("dropped before every container start" if self.config.drop_caches
                           else "warm (not dropped)"),
            "build_page_cache": (
                "dropped before every cold build" if self.config.drop_caches else
                "warm; the builder that builds first alternates between strategies"),
            "link_rate": (str(self.config.options.link_rate) if self.config.options.link_rate
                          else "loopback (not shaped)"),
            "fresh_node": (
                "every start: the strategy's images removed and pulled by digest from the OCI "
                "registry, bind-mounted model files copied from the model store; the shared "
                "runtime image stays on the node" if self.config.fresh_node else "no"),
            "git": commit_info(),
            "config": self.config.to_json(),
            "plan": self.plan_record(),
        }

    def plan_record(self) -> dict[str, Any]:
        """The order trials run in (bench.plan), as run.json stores it: with the seed, a
        run's order repeats."""
        return {"order": self.config.order, "seed": self.order_seed,
                "warmup": self.config.warmup,
                "rounds": {str(r): names for r, names in trial_order(self.steps).items()}}

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

    def _count_pushes_for(self, run: StrategyRun) -> None:
        """What the node pushes from now on is this strategy's (its service image at its
        opening, its model image at its first fresh start): interleaved, the strategy whose
        step runs is set again before every step."""
        assert self.node is not None
        recorder = run.recorder
        self.node.on_push = lambda repository, pinned: recorder.pushed(
            "model image" if repository == MODEL_REPOSITORY else "service image",
            pinned.push.seconds, pinned.push.bytes)

    def _close(self, run: StrategyRun, store: ResultsStore) -> None:
        """After the last round: memory search, rollout, status, teardown."""
        outcome = run.outcome
        if run.prepared is None or outcome.status == "failed":
            return
        try:
            if self.config.find_memory_limit and not outcome.failures:
                self._memory_search(run.strategy, run.ctx, run.prepared, run.image,
                                    run.recorder, outcome)
            if self.config.rollout and not outcome.failures:
                self._rollout(run.strategy, run.ctx, run.prepared, run.image, run.recorder,
                              outcome)
            outcome.status = "ok" if not outcome.failures else "partial"
        finally:
            if outcome.failures:
                self.failed = True
            self._teardown(run)
            self._sync(run, store)

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

    def _build(self, strategy: Strategy, context: Path, recorder: StrategyRecorder
               ) -> tuple[str, int]:
        """Cold and warm builds with every builder, --build-trials times each.

        The builder that goes first alternates from one strategy (and repetition) to the next:
        the second build of the same context reads it from a warm page cache, and always
        giving that advantage to one builder would bias the comparison. With --drop-caches the
        cache is dropped before every cold build instead, so every cold build reads from disk.
        """
        image = ""
        added = 0
        revision = 0
        order: list[str] = []
        for repetition in range(1, self.config.build_trials + 1):
            builders = list(self.config.builders)
            if (self._strategies_built + repetition) % 2 == 0:
                builders.reverse()
            for builder in builders:
                revision += 1
                order.append(builder)
                tag = f"mlbench-{strategy.name}-{builder}:{self.run_id.lower()}"
                if self.config.drop_caches:
                    page_cache.drop()
                repeat = ("" if self.config.build_trials == 1
                          else f" {repetition}/{self.config.build_trials}")
                cold = self._build_once(context, tag, builder, True,
                                        f"[{strategy.name}] cold build ({builder}, no cache)"
                                        f"{repeat}")
                touch_service_code(context, revision)
                warm = self._build_once(context, tag, builder, False,
                                        f"[{strategy.name}] warm build ({builder}, one-line "
                                        f"change){repeat}")
                if cold.image_id != warm.image_id:
                    # The tag moved to the warm image; the cold one would hold a second copy
                    # of a model copied in after the code (5.4 GB a strategy at full size).
                    self.engine.remove_image(cold.image_id)
                added = recorder.built(repetition, cold, warm, self.engine.image_bytes(tag),
                                       self.runtime.image_bytes)
                image = image or tag
        self._strategies_built += 1
        self._build_order[strategy.name] = order
        return image, added

    def _build_once(self, context: Path, tag: str, builder: str, no_cache: bool, title: str
                    ) -> BuildResult:
        with self.progress.step(title):
            return self.engine.build(context, "docker/Dockerfile", tag, self.labels,
                                     builder=builder, no_cache=no_cache,
                                     build_args={"RUNTIME_IMAGE": self.runtime.ref},
                                     on_line=self.progress.update,
                                     on_context=self._context_sent)

    def _context_sent(self, sent: int, total: int) -> None:
        self.progress.count(sent, total, "B")

    def _downloaded(self, received: int, total: int) -> None:
        self.progress.count(received, total, "B")

    def _memory_search(self, strategy: Strategy, ctx: StrategyContext, prepared: Any,
                       image: str, recorder: StrategyRecorder, outcome: StrategyOutcome
                       ) -> None:
        assert self.store is not None
        peaks = [s.value for s in self.store.record.samples if s.strategy == strategy.name
                 if s.metric in ("mem_cgroup_peak_bytes", "server_rss_peak_bytes")]
        high = int(max(peaks, default=2e9) * 1.5) + 64 * 1024 * 1024
        start = self._as_on_node(strategy.starts(ctx, prepared, 0)[0])

        def try_limit(limit: int) -> None:
            settings = dataclasses.replace(self._trial_settings(), latency_requests=1,
                                           memory_limit_bytes=limit)
            name = f"mlbench-{self.run_id.lower()}-{strategy.name}-mem{limit // 2**20}m"
            with self.progress.step(f"[{strategy.name}] memory limit {limit / 2**20:.0f} MiB"):
                trial_module.run_start(self.engine, image, name, self.labels, self.network,
                                       start, self.model, settings)

        found = memory_search.search(try_limit, 64 * 1024 * 1024, high,
                                     self.config.memory_search_starts)
        outcome.notes["memory_search"] = found.attempts
        if found.smallest_ok is not None:
            recorder.memory_limit(start.condition, found.smallest_ok)

    def _rollout(self, strategy: Strategy, ctx: StrategyContext, prepared: PreparedModel,
                 image: str, recorder: StrategyRecorder, outcome: StrategyOutcome) -> None:
        """Roll a running service of this strategy out to the next model version: from the
        moment the new model file exists to the first answer with its predictions, doing
        what the strategy needs (prepare: compress, convert, shard, upload, build the model
        image; rebuild the image if it carries the model; push; on the node, pull what
        changed and copy the new files; replace the container). The bytes are what crossed
        the links of the OCI registry, the model store and the strategy's own S3 server."""
        assert self.node is not None
        node = self.node
        node.on_push = None  # the rollout's pushes are part of rollout_s, not push_s
        settings = dataclasses.replace(self._trial_settings(), latency_requests=1,
                                       on_download=None)
        name = f"mlbench-{self.run_id.lower()}-{strategy.name}-rollout"
        current = self._as_on_node(strategy.starts(ctx, prepared, 0)[0])
        new_strategy = new_instance(strategy, self.config.options)
        new_strategy.adopt_servers(strategy)  # the same S3 server, a new object in it
        new_ctx = dataclasses.replace(ctx, model=self.next_version)
        fetch = None
        try:
            with self.progress.step(f"[{strategy.name}] rollout: the current version serves"):
                running = trial_module.start_service(self.engine, image, f"{name}-v1",
                                                     self.labels, self.network, current,
                                                     self.model, settings)
            try:
                with self.progress.step(f"[{strategy.name}] rollout to the next model version"):
                    wire_before = node.wire_bytes() + new_strategy.wire_bytes()
                    began = time.monotonic()
                    new_prepared = new_strategy.prepare(new_ctx)
                    new_image = image
                    if strategy.image_carries_model:
                        context = materialize(
                            self.cache / "contexts" / self.run_id / f"{strategy.name}-v2",
                            strategy.dockerfile, strategy.dockerignore,
                            new_prepared.context_files,
                            raw_data_csv(self.cache, self.config.seed), self.labels)
                        new_image = f"mlbench-{strategy.name}-v2:{self.run_id.lower()}"
                        self._build_once(context, new_image, self.config.builders[0], False,
                                         f"[{strategy.name}] rollout build")
                    start = new_strategy.starts(new_ctx, new_prepared, 1)[0]
                    ref, start, fetch = node.provision(
                        new_image, start, f"{name}-v2",
                        on_node={image, *filter(None, [current.model_image])},
                        publish_anew=True)
                    running.stop()
                    served = trial_module.run_start(self.engine, ref, f"{name}-v2",
                                                    self.labels, self.network, start,
                                                    self.next_version, settings, fetch)
                    seconds = fetch.started[0] + served.model_ready_s - began
                    moved = node.wire_bytes() + new_strategy.wire_bytes() - wire_before
            finally:
                running.stop()
            recorder.rolled_out(seconds, moved)
            outcome.notes["rollout"] = {"to_model_sha256": self.next_version.sha256,
                                        "pull_s": fetch.pull_s, "node_fetch_s": fetch.fetch_s,
                                        "restart_to_first_prediction_s": served.model_ready_s
                                        - (fetch.fetched_at - fetch.started[0])}
        except StepFailed as failure:
            outcome.failures.append({"phase": "rollout", "reason": str(failure),
                                     "log_tail": failure.log_tail})
            self.progress.warn(f"[{strategy.name}] rollout failed: {failure}")
        finally:
            if fetch is not None:
                node.release(fetch)
            new_strategy.teardown(new_ctx)

    def _trial_settings(self) -> trial_module.TrialSettings:
        """The one place a start's settings derive from the run's options (the memory search
        used to build its own and drop --workers)."""
        config = self.config
        return trial_module.TrialSettings(
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

    def _start_on_node(self, image: str, name: str, start: StartSpec,
                       settings: trial_module.TrialSettings) -> list[StartMeasurement]:
        """One start of plain containers; on a fresh node, provisioned first."""
        if self.node is None or not self.config.fresh_node:
            return trial_module.run_replicas(self.engine, image, name, self.labels,
                                             self.network, start, self.model, settings,
                                             self.config.replicas)
        ref, start, fetch = self.node.provision(image, start, name)
        try:
            return trial_module.run_replicas(self.engine, ref, name, self.labels, self.network,
                                             start, self.model, settings,
                                             self.config.replicas, fetch)
        finally:
            self.node.release(fetch)

    def _model_files(self, run: StrategyRun, start: StartSpec) -> list[Path]:
        """The host files a start reads its model from: what a warm start finds resident."""
        files = [Path(b.source) for b in start.model_binds]
        if run.strategy.model_in_image:
            files += self.engine.host_paths(run.image, MODEL_DIR_IN_CONTAINER)
        if start.model_image is not None:
            files += self.engine.host_paths(start.model_image, "/")
        for volume in start.resident_volumes:
            path = self.engine.volume_path(volume)
            if path is not None:
                files.append(path)
        return files

    def _settle(self, run: StrategyRun, start: StartSpec) -> machine_state.MachineState:
        """The same machine state before every start (bench.machine_state)."""
        files = self._model_files(run, start)
        # A warm start gets the page cache dropped (and its model read back) only when free
        # memory is short of what a load may need: at 5.45 GB, 12-22 GB of image layers in
        # the page cache made the unpickler reclaim as it allocated and load 2x slower; with
        # memory to spare, dropping only makes every start read its libraries from disk
        # again (and charges them to the container: a 48 MB limit then thrashes instead of
        # being OOM-killed).
        short = machine_state.meminfo().get("MemFree", 0) < machine_state.load_needs(
            self.model.bytes)
        state = self.settle_machine(files, cold=self.config.drop_caches,
                                    can_drop=page_cache.can_drop() and (
                                        self.config.drop_caches
                                        or (self.config.cache_reset and short)))
        canary = self._the_canary()
        if state.page_cache_dropped:
            canary.warm()  # the canary's file stays cached: a fixed read, every round
        return dataclasses.replace(state, memory_canary_s=canary.memory())

    def _trial(self, run: StrategyRun, step: Step) -> None:
        """One trial of a strategy (all of its starts); a failed start stops its trials."""
        assert run.prepared is not None
        strategy, outcome, trial = run.strategy, run.outcome, step.trial
        settings = self._trial_settings()
        if step.warmup:  # not in any statistic: one request confirms it serves, no load
            settings = dataclasses.replace(settings, latency_requests=1, load_duration_s=0.0)
        if self.node is not None and self.config.fresh_node:
            self._count_pushes_for(run)
        config = self.config
        for index, start in enumerate(strategy.starts(run.ctx, run.prepared, trial)):
            if self.config.fresh_node and start.reuses_node_state:
                continue  # a fresh node has no earlier start's state
            name = f"mlbench-{self.run_id.lower()}-{strategy.name}-t{trial}-{index}"
            where = "warm-up" if step.warmup else f"trial {trial}/{config.trials}"
            title = f"[{strategy.name}] {where}"
            title += "" if start.condition == "-" else f" ({start.condition})"
            condition = start_condition(
                start.condition, config.replicas, config.workers, config.worker_mode,
                config.orchestrator, private_caches=(config.replicas > 1 and bool(
                    start.cache_volume) and not config.shared_cache),
                fresh_node=self.config.fresh_node)
            if condition != start.condition:
                title += f" [{condition}]"
            try:
                state = self._settle(run, start)
                started_at = datetime.datetime.now(datetime.UTC).isoformat()
                with self.progress.step(title):
                    if config.orchestrator == "swarm":
                        if start.model_image is not None:
                            raise StepFailed(f"{strategy.name} mounts a container's volumes "
                                             "(--volumes-from), which swarm services cannot: "
                                             "run it without --orchestrator swarm")
                        starts = trial_module.run_swarm_service(
                            self.engine, run.image, name, self.labels, start, self.model,
                            settings, config.replicas, self.network)
                    else:
                        starts = self._start_on_node(run.image, name, start, settings)
            except StepFailed as failure:
                outcome.failures.append({"phase": where, "condition": condition,
                                         "reason": str(failure), "log_tail": failure.log_tail})
                self.progress.warn(f"{title} failed: {failure}")
                run.stopped = True  # a start that fails once fails again
                return
            place = Place(step.round, started_at, step.warmup)
            run.recorder.started(condition, trial, starts, run.image_added,
                                 together=config.replicas > 1 or config.orchestrator == "swarm",
                                 place=place)
            run.recorder.settled(condition, trial, state, place)
