"""The in-process micro-benchmarks of every load path (`nox -s micro`) and their table."""
