"""The flat forest served page by page (MODEL_FORMAT=flat_lazy): the same predictions as the
whole file, only the pages a prediction touches fetched before it, a tampered page refused
and never written, a dead store a clear failure, and the fill resumed when it answers."""

from __future__ import annotations

import importlib
import threading
import time
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from bench.host.paths import service_module
from bench.model.flat_forest import convert
from tests.conftest import load_service


class Store:
    """The object's bytes, served by (offset, length) as a ranged GET would, with switches."""

    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)
        self.requests = 0
        self.down = threading.Event()
        self._lock = threading.Lock()

    def fetch(self, offset: int, length: int) -> bytes:
        if self.down.is_set():
            raise ConnectionError("the link is down")
        with self._lock:
            self.requests += 1
        return bytes(self.data[offset:offset + length])


def _flat(model: Any, tmp_path: Path) -> Path:
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    return convert(path, "test" * 16, tmp_path / "cache", "test-run").path


def _big_forest(classifier: bool = False) -> tuple[Any, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 10))
    y = x[:, 0] * 3 + np.sin(x[:, 1]) + rng.normal(size=3000) * 0.1
    if classifier:
        model: Any = RandomForestClassifier(n_estimators=30, random_state=0).fit(
            x, np.digitize(y, [-1, 0, 1]))
    else:
        model = RandomForestRegressor(n_estimators=30, random_state=0).fit(x, y)
    return model, rng.normal(size=(50, 10))


def _case(tmp_path: Path, classifier: bool = False) -> tuple[Any, ...]:
    """The service's modules (imported as in the image: the test's `service_env` puts the
    environment back), a forest, its flat file, a store holding it and its manifest."""
    load_service({})
    paging = importlib.import_module("backend.paged_file")
    lazy = importlib.import_module("backend.load_flat_lazy")
    model, rows = _big_forest(classifier)
    flat_path = _flat(model, tmp_path)
    manifest = paging.Manifest.parse(service_module("page_manifest").manifest_of(
        str(flat_path)))
    return paging, lazy, model, rows, flat_path, Store(flat_path.read_bytes()), manifest


def _paged(paging: Any, path: Path, manifest: Any, demand: Any, fill: Any, **options: Any
           ) -> Any:
    """A PagedFile whose connections ask a range at a time of these (offset, length)
    functions (the service's pipelines them: tests/test_page_fetcher.py)."""
    return paging.PagedFile(str(path), manifest, paging.one_at_a_time(demand),
                            paging.one_at_a_time(fill), **options)


def _wait_whole(paged: Any, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not paged.whole and time.monotonic() < deadline:
        time.sleep(0.05)


def _pages_touched(flat_path: Path, rows: np.ndarray, page: int) -> set[int]:
    """Pages of the flat file a prediction of `rows` reads, traced on the whole file."""
    flat = service_module("flat_forest")
    whole = flat.FlatForest.open(str(flat_path))
    arrays = whole.header["arrays"]
    visited: list[np.ndarray] = []
    whole.predict(rows, on_pass=visited.append)
    nodes = arrays["nodes"]["offset"] + np.concatenate(visited) * whole.nodes.dtype.itemsize
    roots = arrays["roots"]
    with open(flat_path, "rb") as handle:
        header_end = 16 + int.from_bytes(handle.read(16)[8:16], "little")
    touched = set(range((header_end + page - 1) // page))
    touched |= set(range(roots["offset"] // page,
                         (roots["offset"] + 8 * roots["shape"][0] - 1) // page + 1))
    touched |= {int(p) for p in np.unique(nodes // page)}
    if whole.leaf_rows is not None:  # a classifier's leaves: each leaf's row of fractions
        row_bytes = whole.leaf_rows.shape[1] * 8
        leaves = whole.nodes["value"][np.concatenate(visited)][
            whole.nodes["right"][np.concatenate(visited)] == -1].astype(np.int64)
        offsets = arrays[flat.leaf_rows_array(whole.header)]["offset"] + leaves * row_bytes
        touched |= {int(p) for p in np.unique(np.concatenate(
            [offsets // page, (offsets + row_bytes - 1) // page]))}
    return touched


@pytest.mark.parametrize("classifier", [False, True], ids=["regressor", "classifier"])
def test_pages_fetched_on_demand_predict_what_the_whole_file_predicts(
        tmp_path: Path, service_env: None, classifier: bool) -> None:
    paging, lazy, model, rows, flat_path, store, manifest = _case(tmp_path, classifier)
    paged = _paged(paging, tmp_path / "node", manifest, store.fetch, store.fetch)
    try:
        forest = lazy.open_paged_forest(paged)
        one = forest.predict(rows[:1])
        # The pages that row's walk touched (traced on the whole file), the header's and the
        # roots', and of others only those lying between two of them close enough to be
        # asked in the same range.
        touched = sorted(_pages_touched(flat_path, rows[:1], paging.PAGE))
        present = set(np.flatnonzero(paged.present).tolist())
        assert set(touched) <= present
        for extra in present - set(touched):
            below = max(p for p in touched if p < extra)
            above = min(p for p in touched if p > extra)
            assert above - below <= paging.MAX_GAP_PAGES + 1, (extra, below, above)
        assert paged.present_bytes < manifest.size
        if classifier:
            assert np.array_equal(forest.predict_proba(rows), model.predict_proba(rows))
            assert np.array_equal(forest.predict(rows), model.predict(rows))
        else:
            assert np.array_equal(forest.predict(rows), model.predict(rows))
            assert np.array_equal(one, model.predict(rows[:1]))
        # The fill brings the rest; the local copy is then the file, byte for byte.
        paged.start_fill()
        _wait_whole(paged)
        assert paged.whole and paged.stats.whole_at is not None
        assert (tmp_path / "node").read_bytes() == flat_path.read_bytes()
        assert paged.stats.fill_bytes + paged.stats.demand_bytes >= manifest.size
    finally:
        paged.close()


def test_a_tampered_page_is_refused_and_never_written(
        tmp_path: Path, service_env: None) -> None:
    paging, lazy, model, rows, _flat_path, store, manifest = _case(tmp_path)
    paged = _paged(paging, tmp_path / "node", manifest, store.fetch, store.fetch)
    try:
        forest = lazy.open_paged_forest(paged)
        last = int(np.flatnonzero(paged.present == 0)[-1])  # not fetched: change a byte of it
        store.data[last * paging.PAGE] ^= 0xFF
        with pytest.raises(paging.PageTampered, match=f"page {last} .*refused"):
            paged.ensure(np.asarray([last]))
        assert paged.present[last] == 0 and paged.stats.refused_pages == 1
        with open(tmp_path / "node", "rb") as handle:  # nothing of it was written
            handle.seek(last * paging.PAGE)
            assert not any(handle.read(paging.PAGE))
        # Predictions that need only good pages are still served, exactly.
        store.data[last * paging.PAGE] ^= 0xFF
        assert np.array_equal(forest.predict(rows), model.predict(rows))
    finally:
        paged.close()


def test_a_dead_store_fails_within_the_budget_and_the_fill_resumes(
        tmp_path: Path, service_env: None) -> None:
    paging, lazy, model, rows, _flat_path, store, manifest = _case(tmp_path)

    def hanging(offset: int, length: int) -> bytes:
        if store.down.is_set():
            time.sleep(5)  # a link that does not answer
        return store.fetch(offset, length)

    paged = _paged(paging, tmp_path / "node", manifest, hanging, store.fetch,
               budget_s=0.5)
    try:
        forest = lazy.open_paged_forest(paged)
        served = forest.predict(rows[:1])  # these pages are here from now on
        store.down.set()
        began = time.monotonic()
        with pytest.raises(paging.PageUnavailable, match=r"none arrived within the budget of 0\.5 s"):
            forest.predict(rows)
        assert time.monotonic() - began < 3
        assert np.array_equal(forest.predict(rows[:1]), served)  # what it has, it serves
        paged.start_fill()
        time.sleep(1.5)
        assert not paged.whole and "link is down" in str(paged.stats.fill_error)
        store.down.clear()  # the link returns: the fill goes on from where it was
        _wait_whole(paged)
        assert paged.whole and paged.stats.fill_error is None
        assert np.array_equal(forest.predict(rows), model.predict(rows))
    finally:
        paged.close()


def test_a_range_whose_get_fails_is_asked_again_and_a_range_that_keeps_failing_fails(
        tmp_path: Path, service_env: None) -> None:
    """A stalled connection (its read timed out) costs a retry of its range, not the round;
    a range that fails every attempt fails the round with its reason."""
    paging, lazy, model, rows, _flat_path, store, manifest = _case(tmp_path)
    failed: set[int] = set()
    calls: dict[int, int] = {}

    def once_each(offset: int, length: int) -> bytes:
        calls[offset] = calls.get(offset, 0) + 1
        if offset not in failed and offset > 0:  # the header's range works the first time
            failed.add(offset)
            raise TimeoutError("read timed out")
        return store.fetch(offset, length)

    paged = _paged(paging, tmp_path / "node", manifest, once_each, store.fetch)
    try:
        forest = lazy.open_paged_forest(paged)
        assert np.array_equal(forest.predict(rows), model.predict(rows))
        assert paged.stats.range_retries == len(failed) > 0
        assert all(calls[offset] == 2 for offset in failed)
    finally:
        paged.close()

    def never(offset: int, length: int) -> bytes:
        if offset > 0:
            calls[offset] = calls.get(offset, 0) + 1
            raise ConnectionResetError("reset by peer")
        return store.fetch(offset, length)

    calls.clear()
    paged = _paged(paging, tmp_path / "node2", manifest, never, store.fetch)
    try:
        with pytest.raises(paging.PageUnavailable, match="ConnectionResetError: reset by peer"):
            lazy.open_paged_forest(paged).predict(rows)
        assert calls and max(calls.values()) == paging.RANGE_ATTEMPTS
    finally:
        paged.close()


def test_a_restart_keeps_the_pages_it_fetched(tmp_path: Path, service_env: None) -> None:
    paging, lazy, model, rows, _flat_path, store, manifest = _case(tmp_path)
    first = _paged(paging, tmp_path / "node", manifest, store.fetch, store.fetch)
    lazy.open_paged_forest(first).predict(rows)
    kept = first.present_bytes
    first.close()
    store.requests = 0
    again = _paged(paging, tmp_path / "node", manifest, store.fetch, store.fetch)
    try:
        assert again.present_bytes == kept
        assert np.array_equal(lazy.open_paged_forest(again).predict(rows), model.predict(rows))
        assert store.requests == 0  # every page those rows need was kept
    finally:
        again.close()


def test_the_fill_sends_nothing_new_while_a_prediction_runs(
        tmp_path: Path, service_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between a prediction's passes too: each pass would otherwise wait behind the fill's
    chunks sent in the gap before it. What may land in a prediction is the fill's ranges
    already past their gate when it began, one per fill connection; released between
    passes (each pass's GETs take 20 ms here), the fill sent a round in every gap. (The
    regressor: the test's classifier is so small that its predictions fetch every page
    before the fill could.)"""
    paging, lazy, model, rows, _flat_path, store, manifest = _case(tmp_path)
    monkeypatch.setattr(paging, "FILL_RANGE_PAGES", 1)  # many small chunks: a fill all along
    predicting = threading.Event()
    sent_in_prediction: list[int] = [0]  # fill GETs begun during each prediction

    def fill(offset: int, length: int) -> bytes:
        if predicting.is_set():
            sent_in_prediction[-1] += 1
        time.sleep(0.05)
        return store.fetch(offset, length)

    def demand(offset: int, length: int) -> bytes:
        predicting.set()  # from the prediction's first missing page to its answer
        time.sleep(0.02)
        return store.fetch(offset, length)

    paged = _paged(paging, tmp_path / "node", manifest, demand, fill)
    model_served = lazy.PagedFlatModel(lazy.open_paged_forest(paged), paged)
    try:
        predicting.clear()
        paged.start_fill()
        time.sleep(0.05)  # the fill is under way
        for row in range(0, 20, 4):
            sent_in_prediction.append(0)
            try:
                served = model_served.predict(rows[row:row + 4])
            finally:
                predicting.clear()
            assert np.array_equal(served, model.predict(rows[row:row + 4]))
        assert paged.stats.demand_rounds > 5  # the passes fetched pages
        assert not paged.whole  # and the fill was still under way
        assert max(sent_in_prediction) <= paging.FILL_CONNECTIONS, sent_in_prediction
        _wait_whole(paged)
        assert paged.whole
    finally:
        paged.close()


def test_the_fill_does_not_wait_for_its_slowest_chunk(tmp_path: Path, service_env: None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk that takes long holds one of the fill's connections, not the others: in
    rounds of FILL_CONNECTIONS chunks the fill waited for each round's slowest, the link idle
    meanwhile."""
    paging, _lazy, _model, _rows, _flat_path, store, manifest = _case(tmp_path)
    monkeypatch.setattr(paging, "FILL_RANGE_PAGES", 1)
    slow_page, in_flight, release = 5, threading.Event(), threading.Event()
    done_meanwhile: list[int] = []

    def fill(offset: int, length: int) -> bytes:
        if offset == slow_page * paging.PAGE:
            in_flight.set()
            release.wait(10)
        elif in_flight.is_set() and not release.is_set():
            done_meanwhile.append(offset)
        return store.fetch(offset, length)

    paged = _paged(paging, tmp_path / "node", manifest, store.fetch, fill)
    try:
        filling_since = time.monotonic()
        paged.start_fill()
        deadline = time.monotonic() + 10
        while len(done_meanwhile) < 4 * paging.FILL_CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()
        assert len(done_meanwhile) >= 4 * paging.FILL_CONNECTIONS, done_meanwhile
        _wait_whole(paged)
        assert paged.whole
        # The seconds its GETs were in flight, counted once where they overlap: never more
        # than the fill's wall time.
        assert 0 < paged.stats.fill_active_s <= time.monotonic() - filling_since
    finally:
        release.set()
        paged.close()


def test_pages_close_together_are_asked_in_one_range(service_env: None) -> None:
    """Many rows touch most pages of a region: asked a page at a time they cost a request
    each (at 5.45 GB, 2,000 rows asked 144,764 single pages); nearby ones share a range, as
    long as at most half of what is asked is not needed."""
    load_service({})
    paging = importlib.import_module("backend.paged_file")

    def asked(pages: np.ndarray) -> list[tuple[int, int]]:
        runs = list(paging._runs(pages, paging.MAX_RANGE_PAGES, paging.MAX_GAP_PAGES))
        covered = np.concatenate([np.arange(first, first + count) for first, count in runs])
        assert np.all(np.diff(covered) > 0)  # sorted, no page asked twice
        assert set(pages.tolist()) <= set(covered.tolist())
        assert covered.size - pages.size <= pages.size  # no more unneeded than needed
        assert all(count <= paging.MAX_RANGE_PAGES for _, count in runs)
        return runs

    dense = np.arange(0, 2_000, 2)  # every other page: a thousand pages, one request each
    assert len(asked(dense)) == -(-1_999 // paging.MAX_RANGE_PAGES)
    clusters = np.concatenate([np.arange(c, c + 3) for c in range(0, 6_000, 6)])
    assert len(asked(clusters)) < clusters.size / 3 / 10  # runs of 3, holes of 3: joined
    sparse = np.arange(0, 130 * 300, 130)  # a page per tree, as one row asks at 5.45 GB
    assert asked(sparse) == [(int(p), 1) for p in sparse]
    lonely = np.arange(0, 1_000, 10)  # single pages 9 apart: joining would ask 9x the need
    assert len(asked(lonely)) == lonely.size
