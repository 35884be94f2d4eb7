"""A Unix-socket proxy in front of the Docker engine that records the Content-Length of every
POST /build: the number of context bytes the engine actually received."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from pathlib import Path

_BUILD_HEADERS = re.compile(rb"POST /[^ ]*build\?[^\r\n]* HTTP/1\.1\r\n(.*?)\r\n\r\n", re.S)
_LENGTH = re.compile(rb"(?im)^content-length:\s*(\d+)\s*$")


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
        try:
            while data := source.recv(1 << 16):
                if inspect and len(head) < 1 << 16:
                    head += data
                    match = _BUILD_HEADERS.search(head)
                    if match:
                        length = _LENGTH.search(match.group(1))
                        if length:
                            self.build_body_bytes.append(int(length.group(1)))
                        else:
                            self.chunked_builds += 1
                        head = b"\0" * (1 << 16)  # one build per connection is enough
                target.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
