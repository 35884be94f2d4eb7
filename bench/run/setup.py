"""The run's setup phase: sweep leftovers, check the disk, the model, the base, wheelhouse
and runtime images, the network, the fresh node's servers, and run.json's metadata."""

from __future__ import annotations

import datetime
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.errors import StepFailed, UsageError
from bench.host.paths import models_dir
from bench.measure import inprocess, own_environment
from bench.measure.fresh_node import FreshNode
from bench.measure.node_fleet import NodeFleet
from bench.measure.recorder import (
    in_process_samples,
    runtime_sample,
)
from bench.model.source import ModelArtifact, synthetic_model, user_model
from bench.prepare.base_image import BaseImage, ensure_base_image
from bench.prepare.runtime_image import RuntimeImage, ensure_runtime_image, with_model_code
from bench.results.store import ResultsStore, StrategyOutcome
from bench.run import disk_plan
from bench.run.cleanup import sweep_stale_runs
from bench.run.machine import commit_info, engine_metadata, machine_info
from bench.run.plan import trial_order
from bench.run.state import RunState
from bench.servers.oci_registry import external_registry, start_oci_registry
from bench.servers.s3 import S3Endpoint, external_endpoint, start_rclone_server


class RunSetup(RunState):
    def _setup(self) -> ResultsStore:
        progress = self.progress
        sweep_stale_runs(self.engine, progress)
        if not self.config.skip_disk_check:
            self._check_disk()
        model = self._model()
        skipped = self._skip_what_does_not_apply(model)  # before anything is built
        self.steps = self._plan()
        base = ensure_base_image(self.engine, progress)
        runtime = ensure_runtime_image(self.engine, base, self.cache, progress,
                                       rebuild=self.config.rebuild_runtime,
                                       requirements=model.serving.requirements_file(self.cache))
        if self.config.model_code is not None:
            runtime = with_model_code(self.engine, runtime, self.config.model_code, progress)
        if model.serving.own:
            with progress.step("the model's reference predictions in its own environment"):
                model = own_environment.with_own_references(self.engine, runtime.ref, model,
                                                            self.cache, self.labels)
        self.model, self.runtime = model, runtime
        self.network = f"mlbench-{self.run_id}"
        # Under swarm an attachable overlay: the tasks and the S3 server both join it.
        self.engine.create_network(self.network, self.labels,
                                   swarm=self.config.orchestrator == "swarm")
        if self.config.fresh_node or self.config.rollout:
            self.node = self._fresh_node()
        if self.config.nodes:
            assert self.node is not None
            # The run id's random part: short enough for interface names (15 characters).
            self.fleet = NodeFleet(self.node, max(self.config.nodes), self.run_id[-4:], progress,
                                   self.network)
            self.fleet.open(runtime.ref, self.config.options.link_rate)
        if self.config.rollout:
            self.next_version = self._next_version()
        store = ResultsStore.create(self.config.results_root, self.run_id,
                                    self._metadata(base, runtime, model))
        self.store = store
        for name, reason in skipped.items():
            store.record.strategies[name] = StrategyOutcome(name, "skipped",
                                                            notes={"skipped": reason})
            progress.info(f"[{name}] skipped: {reason}")
        where = "its own environment" if model.serving.own else "a fresh process on the host"
        with progress.step(f"the model's own predict in {where} (the in-process reference)"):
            try:
                store.add(in_process_samples(
                    own_environment.measure(self.engine, runtime.ref, model, self.labels)
                    if model.serving.own else inprocess.measure(
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
            following = user_model(self.config.rollout_model_path, self.cache, self.progress,
                                   self.config.model_code, self.config.requirements)
            if following.serving != self.model.serving:
                raise UsageError(f"--rollout-model {self.config.rollout_model_path.name} needs "
                                 f"another environment than --model (one runtime serves both): "
                                 "save both with the same libraries")
            if following.serving.own:
                following = own_environment.with_own_references(
                    self.engine, self.runtime.ref, following, self.cache, self.labels)
            return following
        return synthetic_model(self.config.model_size_bytes, self.config.seed + 1,
                               models_dir(), self.cache, self.progress, self.config.model_kind)

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
        if skipped and len(skipped) == len(self.strategies):
            by_reason: dict[str, list[str]] = {}
            for name, reason in skipped.items():
                by_reason.setdefault(reason, []).append(name)
            reasons = "; ".join(f"{', '.join(names)}: {reason}"
                                for reason, names in by_reason.items())
            raise UsageError(f"no strategy can take this model ({reasons})")
        self.strategies = [s for s in self.strategies if s.name not in skipped]
        return skipped

    def _check_disk(self) -> None:
        from bench.engine import CACHE_LABEL
        from datos.model_generator import model_path

        if self.config.model_path is not None:
            model_bytes, exists = self.config.model_path.stat().st_size, True
        else:
            model_bytes = self.config.model_size_bytes
            exists = model_path(models_dir(), model_bytes, self.config.seed,
                                self.config.model_kind).exists()
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
            return user_model(self.config.model_path, self.cache, self.progress,
                              self.config.model_code, self.config.requirements)
        return synthetic_model(self.config.model_size_bytes, self.config.seed, models_dir(),
                               self.cache, self.progress, self.config.model_kind)

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
            "nodes": (f"{max(self.config.nodes)} engines of their own, each on its own link; "
                      f"each start on {', then '.join(map(str, self.config.nodes))} of them "
                      "at once" if self.config.nodes else "the harness's engine"),
            "git": commit_info(),
            "config": self.config.to_json(),
            "plan": self.plan_record(),
        }

    def plan_record(self) -> dict[str, Any]:
        """The order trials run in (bench.run.plan), as run.json stores it: with the seed, a
        run's order repeats."""
        return {"order": self.config.order, "seed": self.order_seed,
                "warmup": self.config.warmup,
                "rounds": {str(r): names for r, names in trial_order(self.steps).items()}}

    def _shared_s3_server(self) -> S3Endpoint:
        """The run's one S3 server for every registry strategy, started on first use."""
        if self._shared_s3 is None:
            with self.progress.step("starting the run's S3 server (rclone serve s3)"):
                self._shared_s3 = start_rclone_server(
                    self.engine, self.runtime.ref, self.run_id, self.network,
                    dict(self.labels), self.config.options.link_rate)
        return self._shared_s3
