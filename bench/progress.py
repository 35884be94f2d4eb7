"""Progress display for long steps: one line per step, live updates on a terminal.

On a terminal an update rewrites the current line; elsewhere (CI logs) updates are printed at
most every few seconds so logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

NON_TTY_UPDATE_EVERY_S = 5.0


class Progress:
    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.is_tty = self.stream.isatty()
        self._step: str | None = None
        self._step_started = 0.0
        self._last_update = 0.0

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
        self.info(f"-> {title} ...")
        try:
            yield
        except BaseException:
            self.info(f"   {title}: failed after {time.monotonic() - self._step_started:.1f}s")
            raise
        else:
            self.info(f"   {title}: done in {time.monotonic() - self._step_started:.1f}s")
        finally:
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

    def _clear_line(self) -> None:
        if self.is_tty:
            self.stream.write("\r\x1b[K")
