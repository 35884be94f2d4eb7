"""Measuring a start: the trial (start, probe, measure, remove), the probes, a sustained
load, the memory-limit search, and the recorder that turns measurements into samples."""
