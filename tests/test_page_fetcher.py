"""mmap-lazy's page GETs (load_flat_lazy._UrlSigner.fetcher): a persistent connection per
thread, the exact bytes of each range, a connection the server dropped while idle replaced
once, and a store that does not answer a failure, not a loop."""

from __future__ import annotations

import importlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from bench.host.paths import service_package

BLOB = bytes(range(256)) * 64  # 16 KiB


class _Ranges(BaseHTTPRequestHandler):
    """Answers a Range with its bytes, keeps the connection open as HTTP/1.1 says it may,
    then drops it silently: what an idle time-out of a server does to a pooled connection."""

    protocol_version = "HTTP/1.1"
    connections: ClassVar[list[int]] = []

    def setup(self) -> None:
        super().setup()
        _Ranges.connections.append(id(self.connection))

    def do_GET(self) -> None:
        first, last = (int(v) for v in self.headers["Range"].split("=")[1].split("-"))
        body = BLOB[first:last + 1]
        self.send_response(206)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True  # without saying so: the client finds out on reuse

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def store() -> Iterator[str]:
    _Ranges.connections = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ranges)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _fetch(endpoint: str, tmp_path: Path, budget_s: float = 5.0) -> Any:
    service_package()
    lazy = importlib.import_module("backend.load_flat_lazy")
    credentials = tmp_path / "credentials"
    credentials.write_text("AWS_ACCESS_KEY_ID=AKIDTEST\nAWS_SECRET_ACCESS_KEY=secret\n")
    settings = SimpleNamespace(s3_endpoint=endpoint, s3_bucket="models", s3_key="m.flat",
                               s3_credentials_file=str(credentials), page_budget_s=budget_s)
    return lazy._UrlSigner(settings).fetcher()


def test_ranges_come_exactly_and_a_dropped_connection_is_replaced_once(
        store: str, tmp_path: Path, service_env: None) -> None:
    fetch = _fetch(store, tmp_path)
    for offset, length in ((0, 4096), (4096, 8192), (100, 1), (12288, 4096)):
        assert fetch(offset, length) == BLOB[offset:offset + length]
    # Every request after the first found its connection dropped and opened one anew.
    assert len(_Ranges.connections) == 4


def test_a_store_that_does_not_answer_fails_the_fetch(tmp_path: Path, service_env: None
                                                     ) -> None:
    with socket.socket() as listener:  # accepts nothing it is sent: a stalled store
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        fetch = _fetch(f"http://127.0.0.1:{listener.getsockname()[1]}", tmp_path, budget_s=0.5)
        with pytest.raises(TimeoutError):
            fetch(0, 4096)
