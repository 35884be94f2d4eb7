"""A file fetched from S3 page by page, as readers need its pages, while the rest streams in
behind them (MODEL_FORMAT=flat_lazy).

The node keeps a sparse file of the object's size and, beside it, one byte per page (1: the
page is there and was verified), so a restarted service keeps what it fetched and a second
process mapping the same file shares the same page cache. A reader names the pages it will
read (`ensure`); the missing ones are fetched at once, in ranged GETs pipelined on a few
connections (adjacent pages coalesced into one range), checked, written, and only then
marked present. A background fill fetches the rest in order, on connections of its own,
so requests never wait behind it. Fetch granularity is the page: a cold prediction of the
5.45 GB forest reads 35 MB of scattered pages (in 6,600 ranges with the file's crown, 8,580
without); in 64 KiB blocks it would fetch 343 MB.

Integrity: the page manifest (page_manifest.py) holds a digest of every page. A fetched range
is checked page by page before any of it is written; a page that does not match is refused,
never written, and the request that needed it fails with the reason.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from .page_manifest import PAGE, Manifest, page_digest

log = logging.getLogger("service.paged")

MAX_RANGE_PAGES = 256  # one ranged GET covers at most 1 MiB of adjacent missing pages
# Missing pages at most this far apart may be asked in one range, the pages between included
# (64 KiB: at 1 Gbit about what a request costs here; _runs bounds what is not needed). A
# one-row pass asks pages of other trees, a hundred pages apart, and is not changed; 2,000
# rows of the 5.45 GB forest with half the file here asked 144,764 single pages one GET
# each (450 s) without it.
MAX_GAP_PAGES = 16
FILL_RANGE_PAGES = 256  # the background fill asks 1 MiB at a time
FILL_CONNECTIONS = 4  # so at most 4 MiB of fill is on the link when a request needs pages
# A demand range whose GET fails (a read that timed out, a connection reset) is asked again,
# on another connection, up to this many times in all. Found at 100 Mbit: among 32 GETs on a
# tbf-shaped link one connection stalled in TCP's retransmission back-off for the whole read
# time-out, and the 16-row check failed while the other 31 delivered.
RANGE_ATTEMPTS = 3

Fetch = Callable[[int, int], bytes]  # (offset, length) -> exactly those bytes
Received = Callable[[int, bytes], None]  # (index of the range, its bytes)
# Fetch every (offset, length) range, telling `received` each one's bytes in the ranges'
# order, on one connection of the calling thread's (load_flat_lazy: pipelined GETs); raises
# what stopped it, the ranges not yet received being the ones it failed.
FetchMany = Callable[[Sequence[tuple[int, int]], Received], None]
Run = tuple[int, int]  # first page, count


class PageUnavailable(RuntimeError):
    """Pages a reader needs could not be fetched (within the budget, or verified)."""


class PageTampered(PageUnavailable):
    """A fetched page does not match its digest in the pinned manifest."""


def one_at_a_time(fetch: Fetch) -> FetchMany:
    """A FetchMany over a fetch of one range (a store in memory, the tests'): each in turn."""
    def fetch_many(ranges: Sequence[tuple[int, int]], received: Received) -> None:
        for index, (offset, length) in enumerate(ranges):
            received(index, fetch(offset, length))
    return fetch_many


def _runs(pages: np.ndarray, longest: int, gap: int = 0) -> Iterator[tuple[int, int]]:
    """Sorted distinct pages as (first page, count) runs of adjacent pages, no run longer
    than `longest`. Two runs are asked as one, the pages between them included, where those
    are at most `gap` and no more than either run holds: at most half of what is asked is
    not needed. (Found: the test forest's trees are 15 pages, so one row's pages were all
    within 16 of each other, and the rule without the second bound asked the whole file,
    16 s at its 2 Mbit link.)"""
    if not pages.size:
        return
    breaks = np.flatnonzero(np.diff(pages) != 1) + 1
    starts = pages[np.concatenate([[0], breaks])]
    ends = pages[np.concatenate([breaks - 1, [pages.size - 1]])] + 1
    lengths = ends - starts
    holes = starts[1:] - ends[:-1]
    joined = (holes <= gap) & (holes <= lengths[:-1]) & (holes <= lengths[1:])
    first_of_group = np.flatnonzero(np.concatenate([[True], ~joined]))
    last_of_group = np.concatenate([first_of_group[1:] - 1, [starts.size - 1]])
    for first, end in zip(starts[first_of_group].tolist(), ends[last_of_group].tolist(),
                          strict=True):
        for start in range(first, end, longest):
            yield start, min(longest, end - start)


@dataclass
class PagedStats:
    demand_bytes: int = 0  # fetched because a reader waited for them
    demand_requests: int = 0
    demand_rounds: int = 0  # ensure() calls that had to fetch something
    fill_bytes: int = 0
    fill_requests: int = 0
    refused_pages: int = 0  # did not match the manifest
    range_retries: int = 0  # demand ranges asked again after their GET failed
    whole_at: float | None = None  # epoch seconds: every page present
    fill_error: str | None = None  # the fill's last failure (it retries)
    fill_active_s: float = 0.0  # seconds with a fill GET in flight (its pauses left out)


@dataclass(frozen=True)
class _Report:
    """A connection's news: a run written (its bytes), or a failure and the runs it left
    unreceived, each with the attempts it failed so far (the first: the one that failed)."""
    written: int = 0
    error: BaseException | None = None
    left: list[tuple[Run, int]] = field(default_factory=list)


class PagedFile:
    """The sparse local copy of one object and what of it is present."""

    def __init__(self, path: str, manifest: Manifest, fetch: FetchMany, fill_fetch: FetchMany,
                 *, connections: int = 8, budget_s: float = 30.0) -> None:
        self.path = path
        self.manifest = manifest
        self._fetch, self._fill_fetch = fetch, fill_fetch
        self.connections = connections
        self.budget_s = budget_s
        self.stats = PagedStats()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if os.fstat(self._fd).st_size != manifest.size:
            os.ftruncate(self._fd, manifest.size)  # sparse: no block is written yet
        present_path = path + ".pages"
        if not os.path.exists(present_path) or os.path.getsize(present_path) != manifest.pages:
            with open(present_path, "wb") as handle:
                handle.truncate(manifest.pages)
        self.present = np.memmap(present_path, dtype=np.uint8, mode="r+",
                                 shape=(manifest.pages,))
        self._marks = threading.Lock()
        self._present = int(np.count_nonzero(self.present))
        self._pool = ThreadPoolExecutor(connections, thread_name_prefix="page")
        self._stop = threading.Event()
        # Set while no request waits for pages: the fill sends nothing new meanwhile, so a
        # request shares the link with at most the fill's ranges already in flight.
        self._no_demand = threading.Event()
        self._no_demand.set()
        self._waiting = 0
        self._waiting_lock = threading.Lock()
        self._fill: threading.Thread | None = None
        self._fill_busy, self._fill_busy_since = 0, 0.0
        if self.whole:
            self.stats.whole_at = time.time()

    @property
    def whole(self) -> bool:
        return self._present == self.manifest.pages

    @property
    def present_bytes(self) -> int:
        return min(self.manifest.size, int(np.count_nonzero(self.present)) * PAGE)

    def _range(self, run: Run) -> tuple[int, int]:
        """The (offset, length) in the file of pages [first, first + count)."""
        offset = run[0] * PAGE
        return offset, min(run[1] * PAGE, self.manifest.size - offset)

    def _store(self, run: Run, data: bytes) -> int:
        """Verify each page of a fetched run, write them, mark them: the bytes written."""
        if self._stop.is_set():  # closing: the descriptor may go at any moment
            raise PageUnavailable("the service is shutting down")
        first, count = run
        offset, length = self._range(run)
        if len(data) != length:
            raise PageUnavailable(f"bytes {offset}-{offset + length - 1}: got {len(data)} "
                                  f"of {length} bytes")
        for index in range(count):
            page = data[index * PAGE:(index + 1) * PAGE]
            if page_digest(page) != self.manifest.digest(first + index):
                self.stats.refused_pages += 1
                raise PageTampered(f"page {first + index} (bytes {(first + index) * PAGE}-) "
                                   "does not match the pinned manifest: refused")
        os.pwrite(self._fd, data, offset)
        with self._marks:
            new = count - int(np.count_nonzero(self.present[first:first + count]))
            self.present[first:first + count] = 1  # after the bytes: a mark means they are
            self._present += new                    # there
            if self._present == self.manifest.pages and self.stats.whole_at is None:
                self.stats.whole_at = time.time()  # the moment the last page arrived
        return length

    def ensure(self, pages: np.ndarray) -> None:
        """Every one of these pages present before the call returns (or PageUnavailable)."""
        wanted = np.unique(pages)
        missing = wanted[self.present[wanted] == 0]
        if not missing.size:
            return
        runs = list(_runs(missing, MAX_RANGE_PAGES, MAX_GAP_PAGES))
        with self.demand():
            fetched = self._fetch_runs(runs, missing.size)
        self.stats.demand_bytes += fetched
        self.stats.demand_requests += len(runs)
        self.stats.demand_rounds += 1

    @contextmanager
    def demand(self) -> Iterator[None]:
        """While held, the fill sends no new range. A prediction holds it from its first
        pass to its answer: released between passes, the fill sent its next chunks in every
        gap (31 passes at 5.45 GB), and each pass then waited behind them."""
        with self._waiting_lock:
            self._waiting += 1
            self._no_demand.clear()
        try:
            yield
        finally:
            with self._waiting_lock:
                self._waiting -= 1
                if not self._waiting:
                    self._no_demand.set()

    def _fetch_runs(self, runs: list[Run], pages: int) -> int:
        """Every run fetched, verified and written: the runs dealt round-robin to the
        connections, each connection's runs pipelined. A run whose GET failed is asked again
        (up to RANGE_ATTEMPTS in all) with the runs after it on its connection, which it
        cut off, on a new connection."""
        finished: queue.SimpleQueue[_Report] = queue.SimpleQueue()
        asked: list[Future[None]] = []

        def ask(group: list[tuple[Run, int]]) -> None:  # (run, attempts failed so far)
            asked.append(self._pool.submit(self._get_many, group, finished))

        for k in range(min(self.connections, len(runs))):
            ask([(run, 0) for run in runs[k::self.connections]])
        fetched, outstanding = 0, len(runs)
        try:
            # The budget bounds a stall, not the whole round: sixteen rows of the 5.45 GB
            # forest need 36,000 pages in one pass, which take a minute here while pages
            # keep arriving; a store that stops answering fails the round within the budget.
            while outstanding:
                try:
                    report = finished.get(timeout=self.budget_s)
                except queue.Empty:
                    raise TimeoutError from None
                if report.error is None:
                    outstanding -= 1
                    fetched += report.written
                    continue
                (run, failures), *cut_off = report.left
                if isinstance(report.error, PageUnavailable) or failures + 1 >= RANGE_ATTEMPTS:
                    raise report.error
                # The store answers, this GET did not: its range again, and the ranges
                # behind it on the connection that failed.
                self.stats.range_retries += 1
                log.warning("range of pages %d-%d asked again (attempt %d): %s: %s",
                            run[0], run[0] + run[1] - 1, failures + 2,
                            type(report.error).__name__, report.error)
                ask([(run, failures + 1), *cut_off])
        except PageUnavailable:
            raise
        except TimeoutError:
            raise PageUnavailable(f"{pages} pages not fetched: none arrived within the budget "
                                  f"of {self.budget_s:g} s (the model store does not answer)"
                                  ) from None
        except Exception as error:
            raise PageUnavailable(f"{pages} pages could not be fetched: "
                                  f"{type(error).__name__}: {error}") from None
        finally:
            for future in asked:
                future.cancel()
        return fetched

    def _get_many(self, group: list[tuple[Run, int]], finished: queue.SimpleQueue[_Report]
                  ) -> None:
        """One connection's runs (a pool thread's), each reported as it is written; on a
        failure, the runs not received reported with it, the one that failed first."""
        received = 0

        def write(index: int, data: bytes) -> None:
            nonlocal received
            written = self._store(group[index][0], data)
            received = index + 1
            finished.put(_Report(written=written))

        try:
            self._fetch([self._range(run) for run, _ in group], write)
        except BaseException as error:
            finished.put(_Report(error=error, left=group[received:]))

    def ensure_bytes(self, offsets: np.ndarray, length: int) -> None:
        """The pages holding [offset, offset + length) for every offset."""
        first = offsets // PAGE
        last = (offsets + (length - 1)) // PAGE
        # An element spans at most this many pages past its first (records are 16 bytes,
        # page-aligned arrays: most never leave their page).
        spanned = int((last - first).max()) if offsets.size else 0
        self.ensure(np.concatenate([first] + [np.minimum(first + k, last)
                                              for k in range(1, spanned + 1)]))

    def snapshot(self) -> dict[str, object]:
        """The counters and what is present, as /metadata shows them."""
        return {**self.stats.__dict__, "present_bytes": self.present_bytes,
                "size_bytes": self.manifest.size, "whole": self.whole}

    # -- the background fill ---------------------------------------------------------------

    def start_fill(self) -> None:
        if self._fill is None and not self.whole:
            self._fill = threading.Thread(target=self._fill_all, name="fill", daemon=True)
            self._fill.start()

    def _fill_all(self) -> None:
        """Keep FILL_CONNECTIONS chunks in flight until the file is whole: a chunk is asked
        as soon as one arrives (waiting for a whole round left the link idle behind the
        round's slowest chunk), and none while a request waits for pages."""
        running: dict[Future[int], int] = {}  # a chunk's GET in flight -> the chunk
        with ThreadPoolExecutor(FILL_CONNECTIONS, thread_name_prefix="fill") as pool:
            while not self._stop.is_set():
                # Whole aligned chunks, the pages already here fetched again: after a few
                # predictions the missing pages are short runs between fetched ones (27 KB
                # a range at 5.45 GB), and a request costs more than its bytes.
                chunks = np.unique(np.flatnonzero(self.present == 0) // FILL_RANGE_PAGES)
                if not chunks.size and not running:
                    log.info("the file is whole: %s", self.path)
                    return
                self._no_demand.wait()
                for chunk in (int(c) for c in chunks):
                    if len(running) >= FILL_CONNECTIONS:
                        break
                    if chunk not in running.values():
                        first = chunk * FILL_RANGE_PAGES
                        run = (first, min(FILL_RANGE_PAGES, self.manifest.pages - first))
                        running[pool.submit(self._fill_one, run)] = chunk
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    del running[future]
                    error = future.exception()
                    if error is None:
                        self.stats.fill_bytes += future.result()
                        self.stats.fill_requests += 1
                        self.stats.fill_error = None
                    elif not self._stop.is_set():  # the link is down: keep what is here,
                        self.stats.fill_error = f"{type(error).__name__}: {error}"  # retry
                        log.warning("fill paused: %s", self.stats.fill_error)
                        self._stop.wait(1.0)

    def _fill_one(self, run: Run) -> int:
        # Again just before the GET: a request that began since this chunk was planned
        # goes first (the other chunks may already be on the link).
        self._no_demand.wait()
        written: list[int] = []
        with self._fill_in_flight():
            self._fill_fetch([self._range(run)],
                             lambda _index, data: written.append(self._store(run, data)))
        return written[0]

    @contextmanager
    def _fill_in_flight(self) -> Iterator[None]:
        """Count the seconds with at least one fill GET in flight (fill_active_s): the
        fill's own rate, apart from the pauses requests make it take."""
        with self._waiting_lock:
            self._fill_busy += 1
            if self._fill_busy == 1:
                self._fill_busy_since = time.monotonic()
        try:
            yield
        finally:
            with self._waiting_lock:
                self._fill_busy -= 1
                if not self._fill_busy:
                    self.stats.fill_active_s += time.monotonic() - self._fill_busy_since

    def close(self) -> None:
        """Stop the fill, then close the file: the descriptor is closed only once no fill
        writes through it (a number closed under a running pwrite may name another file)."""
        self._stop.set()
        self._no_demand.set()  # a fill waiting for demand to end wakes and sees the stop
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._fill is not None:
            self._fill.join(self.budget_s + 5.0)  # the GETs in flight at most
            if self._fill.is_alive():
                log.warning("the fill did not stop; its file stays open")
                return
        os.close(self._fd)
