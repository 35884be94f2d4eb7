"""A Unix-socket proxy in front of the Docker engine that records the body length of every
POST /build (its Content-Length, or the payload of a chunked upload counted chunk by chunk):
the number of context bytes the engine actually received."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from pathlib import Path

_BUILD_HEADERS = re.compile(rb"POST /[^ ]*build\?[^\r\n]* HTTP/1\.1\r\n(.*?)\r\n\r\n", re.S)
_LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)\s*$")


class _ChunkedBody:
    """Counts the payload bytes of an HTTP/1.1 chunked body as it streams past."""

    def __init__(self) -> None:
        self.payload_bytes = 0
        self.finished = False
        self._line = b""  # a chunk-size line not yet complete
        self._data_left = 0  # payload bytes left in the current chunk
        self._crlf_left = 0  # the CRLF after a chunk's payload

    def feed(self, data: bytes) -> None:
        view, at = memoryview(data), 0
        while at < len(view) and not self.finished:
            if self._data_left:
                taken = min(self._data_left, len(view) - at)
                self._data_left -= taken
                self.payload_bytes += taken
                at += taken
                if not self._data_left:
                    self._crlf_left = 2
            elif self._crlf_left:
                taken = min(self._crlf_left, len(view) - at)
                self._crlf_left -= taken
                at += taken
            else:
                end = bytes(view[at:]).find(b"\r\n")
                if end < 0:
                    self._line += bytes(view[at:])
                    return
                line, self._line = self._line + bytes(view[at:at + end]), b""
                at += end + 2
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.finished = True
                self._data_left = size


class BuildBodyRecorder:
    def __init__(self, listen: Path, upstream: str = "/var/run/docker.sock") -> None:
        self.listen, self.upstream = listen, upstream
        self.build_body_bytes: list[int] = []
        self.chunked_builds = 0
        self._live: list[socket.socket] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(listen))
        self._server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._server.close()

    def cut(self) -> None:
        """The engine "stops": refuse new connections and drop the open ones."""
        self.close()
        for live in self._live:
            with contextlib.suppress(OSError):
                live.shutdown(socket.SHUT_RDWR)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.upstream)
            self._live += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, inspect: bool) -> None:
        head = b""
        chunked: _ChunkedBody | None = None
        watching = inspect  # one build per connection is enough
        try:
            while data := source.recv(1 << 16):
                target.sendall(data)
                if not watching:
                    continue
                if chunked is not None:
                    chunked.feed(data)
                else:
                    head += data
                    match = _BUILD_HEADERS.search(head)
                    if match is None:
                        watching = len(head) < 1 << 16
                        continue
                    length = _LENGTH.search(match.group(1))
                    if length:
                        self.build_body_bytes.append(int(length.group(1)))
                        watching = False
                        continue
                    chunked = _ChunkedBody()
                    chunked.feed(head[match.end():])
                if chunked.finished:
                    self.chunked_builds += 1
                    self.build_body_bytes.append(chunked.payload_bytes)
                    watching = False
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
