"""Progress display for long steps: one line per step; within a step, free-text updates
(build logs) or a count of a known total (trees, bytes) with its rate and ETA.

On a terminal a count is a tqdm bar and an update rewrites the current line; elsewhere (CI
logs) both are printed as plain lines at most every few seconds, never going quiet. tqdm
renders the counts in both cases (its format_meter), so they read the same.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from tqdm import tqdm

NON_TTY_UPDATE_EVERY_S = 5.0
# One line of a count in a log: "22% 1.20GB/5.40GB [00:30<01:45, 40.0MB/s]".
LOG_FORMAT = "{percentage:3.0f}% {n_fmt}{unit}/{total_fmt}{unit} [{elapsed}<{remaining}, {rate_fmt}]"
BAR_FORMAT = "   {l_bar}{bar}| {n_fmt}{unit}/{total_fmt}{unit} [{elapsed}<{remaining}, {rate_fmt}]"


class Progress:
    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.is_tty = self.stream.isatty()
        self._step: str | None = None
        self._step_started = 0.0
        self._last_update = 0.0
        self._bar: tqdm[Any] | None = None
        self._lock = threading.Lock()  # counts arrive from transfer threads

    def info(self, message: str) -> None:
        if not self.quiet:
            self._clear_line()
            print(message, file=self.stream, flush=True)

    def warn(self, message: str) -> None:
        self._clear_line()
        print(f"warning: {message}", file=self.stream, flush=True)

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self._step, self._step_started = title, time.monotonic()
        self._last_update = self._step_started
        self.info(f"-> {title} ...")
        try:
            yield
        except BaseException:
            self.info(f"   {title}: failed after {time.monotonic() - self._step_started:.1f}s")
            raise
        else:
            self.info(f"   {title}: done in {time.monotonic() - self._step_started:.1f}s")
        finally:
            self._close_bar()
            self._step = None

    def update(self, detail: str) -> None:
        if self.quiet or self._step is None:
            return
        now = time.monotonic()
        elapsed = now - self._step_started
        if self.is_tty:
            self.stream.write(f"\r   {detail} [{elapsed:.0f}s]\x1b[K")
            self.stream.flush()
        elif now - self._last_update >= NON_TTY_UPDATE_EVERY_S:
            print(f"   {detail} [{elapsed:.0f}s]", file=self.stream, flush=True)
            # Only a printed line restarts the wait: updates faster than the interval must
            # not silence the log (a 16-minute training went quiet for 8 minutes).
            self._last_update = now

    def count(self, done: float, total: float, unit: str = "it") -> None:
        """Where the current step is: `done` of `total` (unit "B" for bytes, shown with SI
        prefixes), with the rate and the time left."""
        if self.quiet or self._step is None:
            return
        scaled = unit == "B"
        with self._lock:
            if self.is_tty:
                bar = self._bar or tqdm(total=total, unit=unit, unit_scale=scaled,
                                        unit_divisor=1000, file=self.stream, leave=False,
                                        dynamic_ncols=True, bar_format=BAR_FORMAT)
                self._bar = bar
                bar.total = total
                bar.update(done - bar.n)
                return
            now = time.monotonic()
            if now - self._last_update >= NON_TTY_UPDATE_EVERY_S or done >= total:
                line = tqdm.format_meter(done, total, now - self._step_started, unit=unit,
                                         unit_scale=scaled, unit_divisor=1000,
                                         bar_format=LOG_FORMAT)
                print(f"   {line}", file=self.stream, flush=True)
                self._last_update = now

    def adder(self, total: float, unit: str = "B") -> Callable[[int], None]:
        """A callback for increments (boto3's transfer Callback, a copy loop) that counts
        them, from any thread, towards `total`."""
        done = [0]
        lock = threading.Lock()

        def add(amount: int) -> None:
            with lock:
                done[0] += amount
                current = done[0]
            self.count(current, total, unit)
        return add

    def _close_bar(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None

    def _clear_line(self) -> None:
        if self.is_tty:
            self.stream.write("\r\x1b[K")
