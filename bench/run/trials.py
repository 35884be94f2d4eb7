"""The rounds: a canary before each, the machine brought to the same state before every
start, and one trial of a strategy (all of its starts)."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

from bench.errors import StepFailed
from bench.host import machine_state, page_cache
from bench.measure import trial as trial_module
from bench.measure.node_fleet import NodesStarted
from bench.measure.recorder import (
    Place,
    start_condition,
)
from bench.measure.spec import StartSpec, TrialSettings
from bench.results.metrics import MACHINE_ROW, Sample
from bench.results.node_conditions import node_condition
from bench.results.store import ResultsStore
from bench.run.canary import CpuTimes
from bench.run.plan import Step
from bench.run.state import RunState, StrategyRun
from strategies.base import (
    MODEL_DIR_IN_CONTAINER,
)


class Trials(RunState):
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

    def _settle(self, run: StrategyRun, start: StartSpec) -> machine_state.MachineState:
        """The same machine state before every start (bench.host.machine_state)."""
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

    def _start_on_node(self, image: str, name: str, start: StartSpec,
                       settings: TrialSettings, nodes: int) -> NodesStarted:
        """One start of plain containers; on a fresh node, provisioned first; with --nodes,
        on the first `nodes` node engines at once."""
        if self.fleet is not None:
            return self.fleet.start(image, name, self.labels, start, self.model, settings,
                                    self.engine.network_hosts(self.network), nodes)
        if self.node is None or not self.config.fresh_node:
            return NodesStarted.whole(trial_module.run_replicas(
                self.engine, image, name, self.labels, self.network, start, self.model,
                settings, self.config.replicas))
        ref, start, fetch = self.node.provision(image, start, name)
        try:
            return NodesStarted.whole(trial_module.run_replicas(
                self.engine, ref, name, self.labels, self.network, start, self.model, settings,
                self.config.replicas, fetch))
        finally:
            self.node.release(fetch)

    def _trial(self, run: StrategyRun, step: Step) -> None:
        """One trial of a strategy (all of its starts); a failed start stops its trials."""
        assert run.prepared is not None
        strategy = run.strategy
        settings = self._trial_settings()
        if step.warmup:  # not in any statistic: one request confirms it serves, no load
            settings = dataclasses.replace(settings, latency_requests=1, load_duration_s=0.0)
        if self.node is not None and self.config.fresh_node:
            self._count_pushes_for(run)
        config = self.config
        # --nodes 1,2,3: every start on 1, then 2, then 3 nodes (a warm-up on the most only).
        counts = ((max(config.nodes),) if step.warmup and config.nodes else config.nodes) or (0,)
        for index, start in enumerate(strategy.starts(run.ctx, run.prepared, step.trial)):
            if self.config.fresh_node and start.reuses_node_state:
                continue  # a fresh node has no earlier start's state
            for nodes in counts:
                if not self._start(run, step, settings, index, start, nodes):
                    return

    def _start(self, run: StrategyRun, step: Step, settings: TrialSettings, index: int,
               start: StartSpec, nodes: int) -> bool:
        """One start of a trial, measured and recorded; False when it failed (the strategy
        stops: a start that fails once fails again)."""
        strategy, outcome, trial, config = run.strategy, run.outcome, step.trial, self.config
        name = f"mlbench-{self.run_id.lower()}-{strategy.name}-t{trial}-{index}"
        name += f"-n{nodes}" if nodes else ""
        where = "warm-up" if step.warmup else f"trial {trial}/{config.trials}"
        title = f"[{strategy.name}] {where}"
        title += "" if start.condition == "-" else f" ({start.condition})"
        condition = start_condition(
            start.condition, config.replicas, config.workers, config.worker_mode,
            config.orchestrator, private_caches=(config.replicas > 1 and bool(
                start.cache_volume) and not config.shared_cache),
            fresh_node=self.config.fresh_node, nodes=nodes)
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
                    started = NodesStarted.whole(trial_module.run_swarm_service(
                        self.engine, run.image, name, self.labels, start, self.model,
                        settings, config.replicas, self.network))
                else:
                    started = self._start_on_node(run.image, name, start, settings, nodes)
        except StepFailed as failure:
            outcome.failures.append({"phase": where, "condition": condition,
                                     "reason": str(failure), "log_tail": failure.log_tail})
            self.progress.warn(f"{title} failed: {failure}")
            run.stopped = True  # a start that fails once fails again
            return False
        for node, lost in started.failures.items():  # the other nodes were measured
            outcome.failures.append({"phase": where, "condition": node_condition(condition, node),
                                     "reason": str(lost), "log_tail": lost.log_tail})
            self.progress.warn(f"{title}: node {node} failed: {lost}")
        place = Place(step.round, started_at, step.warmup)
        run.recorder.started(condition, trial, started.measured, run.image_added,
                             together=(config.replicas > 1 or config.orchestrator == "swarm"
                                       or (nodes > 0 and not started.failures)),
                             place=place, nodes=started.nodes if nodes else None)
        run.recorder.settled(condition, trial, state, place)
        return True
