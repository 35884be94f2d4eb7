"""Ranged GETs of one object, pipelined on one HTTP/1.1 connection (mmap-lazy's pages).

A first prediction of the 5.45 GB forest asks thousands of ranges of a page or two; what
each costs the client and the store in CPU, not the bytes, decides its time on these 2 cores.
Asked one at a time per connection (http.client, 32 threads), the service's reader spent
0.44 ms of CPU a GET and the store (rclone serve s3) 0.26 ms, and the first one-row
prediction took 4.25 s on loopback; pipelined, 32 in flight on each of 8 connections,
0.11 ms and 0.15 ms, 1.32-1.38 s (`python -m bench.micro.fuse_pages --model-size 5.45GB`,
before and after this module). HTTP/1.1 lets a client send requests before the
answers to earlier ones (RFC 9112, section 9.3.2; answers come back in order); the clients
the service could use (http.client, urllib3, requests, httpx, aiohttp) each wait for an
answer before they send the next request on a connection, so this module does the little it
needs by hand: GET only, answers framed by Content-Length only (a ranged answer of S3 always
is), read in order from one buffered reader.
"""

from __future__ import annotations

import socket
import ssl
import typing
from collections.abc import Callable, Sequence
from typing import BinaryIO

PIPELINE_DEPTH = 32  # requests in flight on one connection: about 140 KB of 4 KiB answers
LINE_LIMIT = 65536  # a status line or header longer than this is not an S3 answer
ERROR_BODY_LIMIT = 1 << 20  # an error's body (S3's XML) is read, if no longer than this
# (index of the range, HTTP status, body); it may raise to stop: the connection is then closed
Answered = Callable[[int, int, bytes], None]


class ConnectionLost(ConnectionError):
    """The store closed the connection before answering every range asked on it."""


class UnexpectedAnswer(ValueError):
    """An answer this client cannot read as a ranged GET's (not HTTP, not framed by
    Content-Length, or longer than the range asked)."""


class RangeConnection:
    """One persistent connection to the store, opened when first needed. ``get`` sends every
    range's GET, at most PIPELINE_DEPTH unanswered at a time, and hands each answer over in
    order. A connection the store closes after answering some (an idle time-out, a server
    that answers a few requests a connection) is replaced and the rest asked on the new one;
    one that answers nothing is a failure, except a reused idle connection, replaced once."""

    def __init__(self, scheme: str, host: str, port: int | None, timeout: float) -> None:
        self.host, self.timeout = host, timeout
        self.port = port or (443 if scheme == "https" else 80)
        self.https = scheme == "https"
        self._socket: socket.socket | None = None
        self._reader: BinaryIO | None = None
        self._done = 0  # ranges of the current get answered (read after a ConnectionLost)

    def get(self, target: str, netloc: str, ranges: Sequence[tuple[int, int]],
            answered: Answered) -> None:
        """GET ``target`` once per (offset, length) range, ``answered`` told each answer in
        the ranges' order. Raises what stopped it (a time-out: the store stalled for the
        whole timeout); the connection is closed then, with its unread answers."""
        done = 0
        while done < len(ranges):
            reused = self._socket is not None
            start = done
            try:
                done = self._pipeline(target, netloc, ranges, done, answered)
            except ConnectionLost:
                done = self._done
                self.close()
                if done == start and not reused:
                    raise
            except BaseException:
                self.close()
                raise

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
        self._socket = self._reader = None

    def _open(self) -> tuple[socket.socket, BinaryIO]:
        if self._socket is None or self._reader is None:
            raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socket = (ssl.create_default_context().wrap_socket(raw, server_hostname=self.host)
                            if self.https else raw)
            self._reader = typing.cast(BinaryIO, self._socket.makefile("rb", buffering=1 << 20))
        return self._socket, self._reader

    def _pipeline(self, target: str, netloc: str, ranges: Sequence[tuple[int, int]],
                  start: int, answered: Answered) -> int:
        sock, reader = self._open()
        sent = done = self._done = start
        try:
            while done < len(ranges):
                if sent < len(ranges) and sent - done <= PIPELINE_DEPTH // 2:
                    upto = min(len(ranges), done + PIPELINE_DEPTH)
                    sock.sendall(b"".join(
                        f"GET {target} HTTP/1.1\r\nHost: {netloc}\r\nAccept-Encoding: identity"
                        f"\r\nRange: bytes={offset}-{offset + length - 1}\r\n\r\n".encode()
                        for offset, length in ranges[sent:upto]))
                    sent = upto
                status, body, closing = _answer(reader, ranges[done][1])
                answered(done, status, body)
                done = self._done = done + 1
                if closing and done < len(ranges):
                    raise ConnectionLost("the store closes the connection after this answer")
        except (BrokenPipeError, ConnectionResetError) as error:
            raise ConnectionLost(str(error)) from None
        return done


def _answer(reader: BinaryIO, asked: int) -> tuple[int, bytes, bool]:
    """One answer: its status, body and whether the store closes the connection after it."""
    status_line = reader.readline(LINE_LIMIT)
    if not status_line:
        raise ConnectionLost("the store closed the connection")
    version, _, rest = status_line.partition(b" ")
    if not version.startswith(b"HTTP/1.") or not rest[:3].isdigit():
        raise UnexpectedAnswer(f"not an HTTP answer: {status_line[:80]!r}")
    status, closing, length = int(rest[:3]), version == b"HTTP/1.0", None
    while (line := reader.readline(LINE_LIMIT)) not in (b"\r\n", b"\n"):
        if not line:
            raise ConnectionLost("the store closed the connection in an answer's headers")
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            raise UnexpectedAnswer(f"an answer in transfer encoding {value.strip()!r}")
        elif name == b"connection" and value.strip().lower() == b"close":
            closing = True
    if length is None:
        raise UnexpectedAnswer(f"HTTP {status} without Content-Length")
    limit = asked if status in (200, 206) else ERROR_BODY_LIMIT
    if length > limit:  # a store that ignores Range would send the whole object
        raise UnexpectedAnswer(f"HTTP {status} of {length} bytes for a range of {asked}")
    body = reader.read(length)
    if len(body) < length:
        raise ConnectionLost(f"the store closed the connection after {len(body)} of "
                             f"{length} bytes of an answer")
    return status, body, closing
