"""After the last round, per strategy: the memory-limit search and the rollout to the
next model version (its build comes from Builds)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from bench.errors import StepFailed
from bench.measure import memory_search
from bench.measure import trial as trial_module
from bench.measure.recorder import StrategyRecorder, start_condition
from bench.measure.spec import StartSpec, TrialSettings
from bench.prepare.context import materialize, raw_data_csv
from bench.results.node_conditions import node_condition
from bench.results.store import ResultsStore, StrategyOutcome
from bench.run.builds import Builds
from bench.run.state import StrategyRun
from strategies import new_instance
from strategies.base import (
    PreparedModel,
    Strategy,
    StrategyContext,
)


class Closing(Builds):
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
                rollout = self._rollout_on_nodes if self.fleet is not None else self._rollout
                rollout(run.strategy, run.ctx, run.prepared, run.image, run.recorder, outcome)
            outcome.status = "ok" if not outcome.failures else "partial"
        finally:
            if outcome.failures:
                self.failed = True
            self._teardown(run)
            self._sync(run, store)

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

    def _rollout_parts(self, strategy: Strategy, ctx: StrategyContext
                       ) -> tuple[Strategy, StrategyContext, TrialSettings]:
        """What a rollout of either kind starts from: a new instance of the strategy for
        the next version (on the same S3 server, a new object in it), its context, and the
        settings of its starts (one request each)."""
        assert self.node is not None
        self.node.on_push = None  # the rollout's pushes are part of rollout_s, not push_s
        new_strategy = new_instance(strategy, self.config.options)
        new_strategy.adopt_servers(strategy)
        return (new_strategy, dataclasses.replace(ctx, model=self.next_version),
                dataclasses.replace(self._trial_settings(), latency_requests=1,
                                    on_download=None))

    def _next_image(self, strategy: Strategy, new_strategy: Strategy, new_ctx: StrategyContext,
                    image: str) -> tuple[str, StartSpec]:
        """The next version on the build machine: prepared (compressed, converted,
        sharded, uploaded), its image rebuilt where the image carries the model; its start."""
        new_prepared = new_strategy.prepare(new_ctx)
        new_image = image
        if strategy.image_carries_model:
            context = materialize(
                self.cache / "contexts" / self.run_id / f"{strategy.name}-v2",
                strategy.dockerfile, strategy.dockerignore, new_prepared.context_files,
                raw_data_csv(self.cache, self.config.seed), self.labels)
            new_image = f"mlbench-{strategy.name}-v2:{self.run_id.lower()}"
            self._build_once(context, new_image, self.config.builders[0], False,
                             f"[{strategy.name}] rollout build")
        return new_image, new_strategy.starts(new_ctx, new_prepared, 1)[0]

    def _rollout_on_nodes(self, strategy: Strategy, ctx: StrategyContext,
                          prepared: PreparedModel, image: str, recorder: StrategyRecorder,
                          outcome: StrategyOutcome) -> None:
        """--nodes: the rollout on every node at once (bench.measure.node_fleet); rollout_s
        is when the last node answers with the new predictions, each node's own moment is
        recorded under its condition, and a node that fails is reported while the others
        finish."""
        assert self.node is not None and self.fleet is not None
        node, count = self.node, max(self.config.nodes)
        new_strategy, new_ctx, settings = self._rollout_parts(strategy, ctx)
        condition = start_condition("-", 1, 1, "copy", nodes=count)
        wire_before: list[int] = []

        def prepare() -> tuple[str, StartSpec]:
            """The rollout's first step: the bytes it moves count from here (not the
            current version's provisioning before it)."""
            wire_before.append(node.wire_bytes() + new_strategy.wire_bytes())
            return self._next_image(strategy, new_strategy, new_ctx, image)

        try:
            with self.progress.step(f"[{strategy.name}] rollout on {count} nodes"):
                rolled = self.fleet.rollout(
                    image, f"mlbench-{self.run_id.lower()}-{strategy.name}-rollout",
                    self.labels, strategy.starts(ctx, prepared, 0)[0], self.model, settings,
                    self.engine.network_hosts(self.network), count, prepare,
                    self.next_version)
                moved = node.wire_bytes() + new_strategy.wire_bytes() - wire_before[0]
            for index, seconds in rolled.done.items():
                recorder.rolled_out(seconds, None, node_condition(condition, index))
            for index, failure in rolled.failures.items():
                outcome.failures.append({"phase": "rollout",
                                         "condition": node_condition(condition, index),
                                         "reason": str(failure), "log_tail": failure.log_tail})
                self.progress.warn(f"[{strategy.name}] rollout: node {index} failed: {failure}")
            if not rolled.failures:
                recorder.rolled_out(max(rolled.done.values()), moved, condition)
        except StepFailed as failure:
            outcome.failures.append({"phase": "rollout", "reason": str(failure),
                                     "log_tail": failure.log_tail})
            self.progress.warn(f"[{strategy.name}] rollout failed: {failure}")
        finally:
            new_strategy.teardown(new_ctx)

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
        new_strategy, new_ctx, settings = self._rollout_parts(strategy, ctx)
        name = f"mlbench-{self.run_id.lower()}-{strategy.name}-rollout"
        current = self._as_on_node(strategy.starts(ctx, prepared, 0)[0])
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
                    new_image, start = self._next_image(strategy, new_strategy, new_ctx,
                                                        image)
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
