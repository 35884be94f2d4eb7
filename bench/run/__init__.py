"""A benchmark run: its options, its plan (rounds, disk), the canary, the runner that
dispatches the plan, the machine record and the cleanup on every exit path."""
