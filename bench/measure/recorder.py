"""The one place measurements become samples: it names every stored metric of a build or a
start, the conditions a start ran under, what N replicas cost together, the disk a start
occupies (image included) and the start-up timeline (as `at_<stamp>_s` samples, so the
report reads one source). Trials measure; the runner sequences; this module records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bench.engine import BuildResult
from bench.host.machine_state import MachineState
from bench.measure.inprocess import InProcessLatency
from bench.measure.measurement import StartMeasurement
from bench.measure.probes import percentile
from bench.results.metrics import TIMELINE_STAMPS, Sample, timeline_metric
from bench.results.node_conditions import node_condition, nodes_part

# The row of the model's own predict in a fresh process on the host (no container): shown
# as "scikit-learn (in-process)", the condition translated like every other.
IN_PROCESS = ("scikit-learn", "in-process")


def start_condition(condition: str, replicas: int, workers: int, worker_mode: str,
                    orchestrator: str = "engine", private_caches: bool = False,
                    fresh_node: bool = False, nodes: int = 0) -> str:
    """The condition label of a start: the strategy's own, plus replicas, workers, swarm,
    a fresh node (or N)."""
    parts = [] if condition == "-" else [condition]
    if nodes:
        parts.append(nodes_part(nodes))
    elif fresh_node:
        parts.append("fresh node")
    if orchestrator == "swarm":
        parts.append("swarm")
    if replicas > 1:
        parts.append(f"{replicas} replicas")
    if workers > 1:
        parts.append(f"{workers} workers ({worker_mode})")
    if private_caches:
        parts.append("private caches")
    return ", ".join(parts) or "-"


def node_unmeasured(m: StartMeasurement) -> dict[str, str]:
    """What a fresh-node start could not count, and why (never silently absent)."""
    if m.node is not None and m.node.pull_bytes is None:
        return {"pull_bytes": "the OCI registry is the user's (--oci-registry): the harness "
                              "reads the bytes of its own registry's link only"}
    return {}


def start_values(m: StartMeasurement, image_added_bytes: int) -> dict[str, float]:
    """Every single-valued metric of one container's start."""
    values: dict[str, float] = {
        "ready_s": m.ready_s,
        "model_ready_s": m.model_ready_s,
        "ready_to_model_ready_s": m.model_ready_s - m.ready_s,
        "first_predict_s": m.first_predict_s,
        "probe_requests": float(m.probe_requests),
        "disk_bytes": float(m.disk.container_layer_bytes + m.disk.cache_volume_bytes
                            + m.disk.host_model_bytes + m.disk.model_volume_bytes
                            + image_added_bytes),
    }
    if m.latencies_ms:
        values["predict_p50_ms"] = percentile(m.latencies_ms, 0.50)
        values["predict_p95_ms"] = percentile(m.latencies_ms, 0.95)
    if m.batch_latencies_ms:
        values["predict_100_p50_ms"] = percentile(m.batch_latencies_ms, 0.50)
        values["predict_100_p95_ms"] = percentile(m.batch_latencies_ms, 0.95)
    if m.memory is not None:
        values["mem_working_set_bytes"] = m.memory.working_set_bytes
        values["mem_anon_bytes"] = m.memory.anon_bytes
        values["mem_page_cache_bytes"] = m.memory.page_cache_bytes
        if m.memory.peak_bytes is not None:
            values["mem_cgroup_peak_bytes"] = m.memory.peak_bytes
    if m.processes is not None:
        values["server_pss_bytes"] = m.processes.pss_bytes
        values["server_uss_bytes"] = m.processes.uss_bytes
        values["server_rss_peak_bytes"] = m.processes.rss_peak_bytes
    if m.load_s is not None:
        values["load_s"] = m.load_s
    if m.model_container_create_s is not None:
        values["model_container_create_s"] = m.model_container_create_s
    if m.verify_s is not None:
        values["verify_s"] = m.verify_s
    if m.transfer is not None:
        values["download_s"] = m.transfer.seconds
        values["download_mb_per_s"] = m.transfer.bytes / 1e6 / max(m.transfer.seconds, 1e-9)
        if m.transfer.client_setup_s is not None:
            values["client_setup_s"] = m.transfer.client_setup_s
        if m.transfer.retries is not None:
            values["download_retries"] = float(m.transfer.retries)
    if m.paged is not None:
        values["paged_first_bytes"] = float(m.paged.first_bytes)
        values["paged_first_requests"] = float(m.paged.first_requests)
        values["paged_range_retries"] = float(m.paged.range_retries)
        values["paged_fill_bytes"] = float(m.paged.fill_bytes + m.paged.demand_bytes)
        if m.paged.whole_s is not None:
            values["file_whole_s"] = m.paged.whole_s
        if m.paged.fill_active_s > 0:
            values["fill_mb_per_s"] = m.paged.fill_bytes / 1e6 / m.paged.fill_active_s
    if m.load is not None:
        ok = m.load.result.latencies_ms
        seconds = m.load.result.seconds
        values["load_rps"] = len(ok) / seconds if seconds else 0.0
        values["load_p50_ms"] = percentile(ok, 0.50)
        values["load_p95_ms"] = percentile(ok, 0.95)
        values["load_p99_ms"] = percentile(ok, 0.99)
        values["load_errors"] = float(m.load.result.errors)
        values["load_anon_growth_bytes"] = float(m.load.anon_after_bytes
                                                 - m.load.anon_before_bytes)
    if m.node is not None:
        values["pull_s"] = m.node.pull_s
        if m.node.pull_bytes is not None:
            values["pull_bytes"] = float(m.node.pull_bytes)
        values["node_fetch_s"] = m.node.fetch_s
        values["node_fetch_bytes"] = float(m.node.fetch_bytes)
    if m.node_received_bytes is not None:
        values["node_received_bytes"] = float(m.node_received_bytes)
    for stamp in TIMELINE_STAMPS:
        at = m.timeline.at(stamp)
        if at is not None and stamp != "server_up":  # server_up is ready_s, above
            values[timeline_metric(stamp)] = at
    return values


def replica_totals(starts: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """What N replicas cost together: the last one ready, and memory summed over them."""
    totals = {"all_ready_s": max(values["model_ready_s"] for values in starts)}
    for metric, total in (("server_pss_bytes", "replicas_pss_total_bytes"),
                          ("mem_working_set_bytes", "replicas_mem_total_bytes"),
                          ("node_received_bytes", "nodes_received_total_bytes")):
        if all(metric in values for values in starts):
            totals[total] = sum(values[metric] for values in starts)
    return totals


@dataclass(frozen=True)
class Place:
    """Where a start sits in the run: its round, the UTC wall clock of its start, and
    whether it was the strategy's warm-up."""

    round: int = -1  # -1: the trial's number (bench.results.metrics.Sample)
    started_at: str = ""
    warmup: bool = False


NOWHERE = Place()


@dataclass
class StrategyRecorder:
    """The samples and notes of one strategy, as the runner hands it what was measured."""

    strategy: str
    samples: list[Sample] = field(default_factory=list)
    notes: dict[str, list[dict[str, object]]] = field(default_factory=dict)
    not_measured: list[dict[str, object]] = field(default_factory=list)

    def _add(self, builder: str, condition: str, trial: int, metric: str, value: float,
             place: Place = NOWHERE) -> None:
        self.samples.append(Sample(self.strategy, builder, condition, trial, metric, value,
                                   place.round, place.started_at, place.warmup))

    def prepared(self, model_file_bytes: int, extra_metrics: Mapping[str, float]) -> None:
        for metric, value in extra_metrics.items():
            self._add("-", "-", 0, metric, value)
        self._add("-", "-", 0, "model_file_bytes", model_file_bytes)

    def prepared_reference(self, latency: InProcessLatency) -> None:
        """The predict of the model this strategy serves, timed in-process on the host."""
        for metric, value in latency.metrics().items():
            self._add("-", "-", 0, metric, value)

    def built(self, repetition: int, cold: BuildResult, warm: BuildResult, image_bytes: int,
              runtime_bytes: int) -> int:
        """One cold and one warm build of a builder; returns the bytes the image adds."""
        added = image_bytes - runtime_bytes
        for metric, value in (("context_bytes", cold.context_bytes),
                              ("build_cold_s", cold.seconds),
                              ("build_warm_s", warm.seconds),
                              ("image_bytes", image_bytes),
                              ("image_added_bytes", added)):
            # Repetition r of every strategy's builds is paired as round r by the noise rule.
            self._add(cold.builder, "-", repetition, metric, value, Place(round=repetition))
        return added

    def started(self, condition: str, trial: int, starts: Sequence[StartMeasurement],
                image_added_bytes: int, *, together: bool, place: Place = NOWHERE,
                nodes: Sequence[int] | None = None) -> None:
        """The containers of one start (one, or N replicas / swarm tasks `together`); with
        `nodes` (--nodes), container i is node nodes[i]'s, recorded under "<condition>, node
        k", and the totals under `condition`."""
        per_container = [start_values(m, image_added_bytes) for m in starts]
        where = ([condition] * len(starts) if nodes is None
                 else [node_condition(condition, k) for k in nodes])
        for m, values, own in zip(starts, per_container, where, strict=True):
            for metric, value in values.items():
                self._add("-", own, trial, metric, value, place)
            for latency in m.latencies_ms:
                self._add("-", own, trial, "predict_latency_ms", latency, place)
            if m.processes is not None:
                for pss, uss in m.processes.children:
                    self._add("-", own, trial, "worker_pss_bytes", pss, place)
                    self._add("-", own, trial, "worker_uss_bytes", uss, place)
            for remark in m.remarks:
                self.notes.setdefault("remarks", []).append(
                    {"trial": trial, "condition": own, "remark": remark})
            if place.warmup:
                continue  # what a warm-up could not measure, the trials say
            for metric, reason in {**m.unmeasured, **node_unmeasured(m)}.items():
                self.not_measured.append({"metric": metric, "condition": own,
                                          "trial": trial, "reason": reason})
        if together:
            for metric, value in replica_totals(per_container).items():
                self._add("-", condition, trial, metric, value, place)

    def settled(self, condition: str, trial: int, state: MachineState,
                place: Place = NOWHERE) -> None:
        """The machine's state a start found (bench.host.machine_state)."""
        for metric, value in (("settle_wait_s", state.settle_wait_s),
                              ("mem_free_before_bytes", state.mem_free_bytes),
                              ("mem_available_before_bytes", state.mem_available_bytes),
                              ("model_resident_fraction", state.model_resident_fraction),
                              ("start_canary_memory_s", state.memory_canary_s),
                              ("page_cache_reset", float(state.page_cache_dropped))):
            if value is not None:
                self._add("-", condition, trial, metric, float(value), place)
        if not state.idle:
            self.notes.setdefault("remarks", []).append(
                {"trial": trial, "condition": condition,
                 "remark": f"the engine was still busy after {state.settle_wait_s:.0f} s; "
                           "the start went ahead"})

    def pushed(self, condition: str, seconds: float, moved: int | None) -> None:
        """An image pushed to the OCI registry for the nodes (--fresh-node)."""
        self._add("-", condition, 0, "push_s", seconds)
        if moved is not None:
            self._add("-", condition, 0, "push_bytes", moved)

    def rolled_out(self, seconds: float, moved_bytes: int | None, condition: str = "-") -> None:
        """A rollout (--nodes: each node's under its condition, bytes with the whole)."""
        self._add("-", condition, 0, "rollout_s", seconds)
        if moved_bytes is not None:
            self._add("-", condition, 0, "rollout_bytes", moved_bytes)

    def memory_limit(self, condition: str, smallest_ok_bytes: int) -> None:
        self._add("-", condition, 0, "min_memory_limit_bytes", smallest_ok_bytes)


def in_process_samples(latency: InProcessLatency) -> list[Sample]:
    """The model's own predict on the host, the reference for the served latencies."""
    strategy, condition = IN_PROCESS
    return [Sample(strategy, "-", condition, 0, metric, value)
            for metric, value in latency.metrics().items()]


def runtime_sample(build_s: float, cached: bool) -> Sample:
    return Sample("runtime", "legacy", "cached" if cached else "-", 0, "runtime_build_s",
                  build_s)
