"""The machine's own metrics: a canary per round and the state before each start (context
for the timings, never ranked; bench.run.canary and bench.host.machine_state measure them)."""

from __future__ import annotations

from bench.results.metric import Metric

# The row of the machine's own samples (the canary of every round): not a strategy.
MACHINE_ROW = "machine"
_CANARY = "every run: before each round (strategy row `machine`)"
MACHINE_METRICS: tuple[Metric, ...] = (
    # -- the machine itself: a canary per round, the state before each start ------------------
    Metric("canary_cpu_s", "s", "machine", "Canary: CPU task", "Canario: tarea de CPU",
           "SHA-256 of 64 MB already in memory, timed on the host before the round (a fixed "
           "CPU task: how fast the machine is now)", optional=_CANARY),
    Metric("canary_read_s", "s", "machine", "Canary: cached read", "Canario: lectura en caché",
           "a read of a fixed 64 MB file the page cache holds, timed on the host before the "
           "round (memory bandwidth and the kernel's copy path)", optional=_CANARY),
    Metric("canary_memory_s", "s", "machine", "Canary: memory latency",
           "Canario: latencia de memoria",
           "2 M random 8-byte reads from a 128 MB array, timed on the host before the round "
           "(memory latency: what a tree walk and the unpickler wait on)", optional=_CANARY),
    Metric("start_canary_memory_s", "s", "machine", "Memory latency before the start",
           "Latencia de memoria antes del arranque",
           "the canary's memory task, timed just before the container start: the machine's "
           "memory speed moves within a round"),
    Metric("round_steal_fraction", "ratio", "machine", "CPU steal in the round",
           "CPU robada en la ronda",
           "share of CPU time the hypervisor gave to other guests over the round "
           "(/proc/stat steal): another tenant on the same host", optional=_CANARY),
    Metric("round_iowait_fraction", "ratio", "machine", "I/O wait in the round",
           "Espera de E/S en la ronda",
           "share of CPU time idle waiting for I/O over the round (/proc/stat iowait)",
           optional=_CANARY),
    Metric("settle_wait_s", "s", "machine", "Wait for an idle engine", "Espera al motor ocioso",
           "before a start: seconds until dockerd and containerd were idle and dirty pages "
           "written back (bench.host.machine_state)"),
    Metric("page_cache_reset", "count", "machine", "Page cache dropped before the start",
           "Caché de páginas vaciada antes del arranque",
           "1 when the page cache was dropped before the start (--drop-caches, or a warm start "
           "whose free memory was short of twice the model plus 2 GiB), else 0"),
    Metric("mem_free_before_bytes", "bytes", "machine", "Free memory before the start",
           "Memoria libre antes del arranque",
           "MemFree of /proc/meminfo just before the container start"),
    Metric("mem_available_before_bytes", "bytes", "machine",
           "Available memory before the start", "Memoria disponible antes del arranque",
           "MemAvailable of /proc/meminfo just before the container start"),
    Metric("model_resident_fraction", "ratio", "machine", "Model resident before the start",
           "Modelo residente antes del arranque",
           "share of the model files' pages in the page cache just before the start (mincore, "
           "as util-linux fincore shows): 1 for a warm start, near 0 after --drop-caches",
           optional="starts whose model files the host can read"),
)
