"""Errors the CLI turns into one clear line and an exit code."""

from __future__ import annotations


class BenchError(Exception):
    """A failure the user can act on; the message names the problem and the fix."""

    exit_code = 1


class UsageError(BenchError):
    """Bad command-line input (exit code 2, like argparse)."""

    exit_code = 2


class EngineUnavailable(BenchError):
    """No Docker engine answers."""

    exit_code = 3


class StepFailed(BenchError):
    """A build, start or probe failed; the runner records it and goes on."""

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail
