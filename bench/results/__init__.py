"""Stored results and what is computed from them alone: the metric catalogue, the
run store, summaries, the noise rule, units and `compare`. Nothing here touches the engine."""
