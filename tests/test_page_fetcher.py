"""mmap-lazy's page GETs (load_flat_lazy._UrlSigner.fetcher over range_pipeline): many ranges
pipelined on one persistent connection per thread, the exact bytes of each, in order; a
connection the store closes after some answers replaced and the rest asked anew; an error
status, a store that ignores Range and a store that does not answer each a failure, not a
loop."""

from __future__ import annotations

import importlib
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from bench.host.paths import service_package

BLOB = bytes(range(256)) * 64  # 16 KiB


class _Ranges(BaseHTTPRequestHandler):
    """Answers a Range with its bytes over HTTP/1.1, reading the next request only after
    answering (pipelined requests wait in the socket, as with Go's server). ``answers``
    answers a connection gets before it is dropped silently (what a server's idle time-out
    or request limit does); ``status`` and ``whole`` make it misbehave."""

    protocol_version = "HTTP/1.1"
    connections: ClassVar[list[int]] = []
    answers: ClassVar[int] = 1_000_000
    status: ClassVar[int] = 206
    whole: ClassVar[bool] = False  # ignore Range: the whole object, 200

    def setup(self) -> None:
        super().setup()
        _Ranges.connections.append(id(self.connection))
        self.answered = 0

    def do_GET(self) -> None:
        first, last = (int(v) for v in self.headers["Range"].split("=")[1].split("-"))
        body = BLOB if self.whole else BLOB[first:last + 1]
        if self.status != 206:
            body = b"<Error><Code>AccessDenied</Code></Error>"
        self.send_response(200 if self.whole else self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.answered += 1
        self.close_connection = self.answered >= self.answers  # without saying so

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def store() -> Iterator[str]:
    _Ranges.connections, _Ranges.answers, _Ranges.status = [], 1_000_000, 206
    _Ranges.whole = False
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ranges)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _fetcher(endpoint: str, tmp_path: Path, budget_s: float = 5.0) -> Any:
    service_package()
    lazy = importlib.import_module("backend.load_flat_lazy")
    credentials = tmp_path / "credentials"
    credentials.write_text("AWS_ACCESS_KEY_ID=AKIDTEST\nAWS_SECRET_ACCESS_KEY=secret\n")
    settings = SimpleNamespace(s3_endpoint=endpoint, s3_bucket="models", s3_key="m.flat",
                               s3_credentials_file=str(credentials), page_budget_s=budget_s)
    return lazy._UrlSigner(settings, settings.s3_key).fetcher()


def _fetch_all(fetch_many: Callable[..., None], ranges: list[tuple[int, int]]) -> list[bytes]:
    got: list[tuple[int, bytes]] = []
    fetch_many(ranges, lambda index, data: got.append((index, data)))
    assert [index for index, _ in got] == list(range(len(ranges)))  # each once, in order
    return [data for _, data in got]


RANGES = [(offset, length) for offset, length in
          [(0, 4096), (4096, 8192), (100, 1), (12288, 4096)] * 25]


def test_many_ranges_come_exactly_in_order_on_one_connection(
        store: str, tmp_path: Path, service_env: None) -> None:
    fetch_many = _fetcher(store, tmp_path)
    assert _fetch_all(fetch_many, RANGES) == [BLOB[o:o + n] for o, n in RANGES]
    assert len(_Ranges.connections) == 1  # 100 GETs, pipelined on one connection
    assert _fetch_all(fetch_many, RANGES[:3]) == [BLOB[o:o + n] for o, n in RANGES[:3]]
    assert len(_Ranges.connections) == 1  # and kept for the next call


@pytest.mark.parametrize("answers", [1, 7])
def test_a_connection_dropped_after_some_answers_is_replaced_for_the_rest(
        store: str, tmp_path: Path, service_env: None, answers: int) -> None:
    _Ranges.answers = answers
    fetch_many = _fetcher(store, tmp_path)
    assert _fetch_all(fetch_many, RANGES) == [BLOB[o:o + n] for o, n in RANGES]
    assert len(_Ranges.connections) == -(-len(RANGES) // answers)
    # The last connection was dropped while idle: the next call finds out and opens one.
    assert _fetch_all(fetch_many, RANGES[:1]) == [BLOB[:4096]]


def test_an_error_status_and_a_store_ignoring_range_fail_with_the_reason(
        store: str, tmp_path: Path, service_env: None) -> None:
    fetch_many = _fetcher(store, tmp_path)
    paging = importlib.import_module("backend.paged_file")  # as the fetcher imported it
    _Ranges.status = 403
    with pytest.raises(paging.PageUnavailable, match="HTTP 403 for bytes 4096-12287"):
        _fetch_all(fetch_many, [(4096, 8192)])
    _Ranges.status, _Ranges.whole = 206, True
    with pytest.raises(paging.PageUnavailable, match="16384 bytes for a range of 4096"):
        _fetch_all(fetch_many, [(0, 4096)])


def test_a_store_that_does_not_answer_fails_the_fetch(tmp_path: Path, service_env: None
                                                     ) -> None:
    with socket.socket() as listener:  # accepts nothing it is sent: a stalled store
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        fetch_many = _fetcher(f"http://127.0.0.1:{listener.getsockname()[1]}", tmp_path,
                              budget_s=0.5)
        with pytest.raises(TimeoutError):
            _fetch_all(fetch_many, [(0, 4096)])
