"""Image builds: the docker SDK's legacy builder and BuildKit through the docker CLI, behind
one interface (docker-py always uses the legacy builder; BuildKit needs the CLI). Both time
the build as a user sees it, packing and sending the context included, and report the
context bytes the engine received."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import docker
from docker.api.build import process_dockerfile
from docker.utils import build as build_utils

from bench.engine.connection import EngineConnection
from bench.engine.types import (
    ENGINE_TIMEOUT_S,
    LOG_TAIL_LINES,
    BuildResult,
    Labels,
    OnContext,
    OnLine,
)
from bench.errors import StepFailed


class ImageBuilder(Protocol):
    """One way of building an image; `name` is the builder name stored with every sample."""

    name: str

    def build(self, context_dir: Path, dockerfile: str, tag: str, labels: Labels,
              no_cache: bool, on_line: OnLine, timeout_s: float,
              build_args: Mapping[str, str], on_context: OnContext) -> BuildResult: ...


class BuildJobs(EngineConnection):
    def builders(self) -> dict[str, ImageBuilder]:
        return {"legacy": LegacyBuilder(self._api), "buildkit": BuildKitBuilder(self._api)}

    def build(
        self,
        context_dir: Path,
        dockerfile: str,
        tag: str,
        labels: Labels,
        *,
        builder: str,
        no_cache: bool,
        on_line: OnLine = lambda _: None,
        timeout_s: float = ENGINE_TIMEOUT_S,
        build_args: Mapping[str, str] | None = None,
        on_context: OnContext = lambda _sent, _total: None,
    ) -> BuildResult:
        """Build an image; the time includes packing and sending the context, as a user sees.
        `on_line` gets the build's log lines; `on_context` the context bytes sent so far and
        in all, where the builder streams it (legacy)."""
        chosen = self.builders().get(builder)
        if chosen is None:
            raise ValueError(f"unknown builder {builder!r}")
        return chosen.build(context_dir, dockerfile, tag, labels, no_cache, on_line, timeout_s,
                            build_args or {}, on_context)


def _built_image(api: docker.APIClient, tag: str, lines: Sequence[str]) -> dict[str, Any]:
    attrs = None
    with contextlib.suppress(docker.errors.ImageNotFound):
        attrs = dict(api.inspect_image(tag))
    if attrs is None:
        raise StepFailed(f"build of {tag} produced no image", "\n".join(lines[-LOG_TAIL_LINES:]))
    return attrs


class LegacyBuilder:
    """docker-py's build: the context packed by docker-py's own tar code and streamed."""

    name = "legacy"

    def __init__(self, api: docker.APIClient) -> None:
        self._api = api

    def build(self, context_dir: Path, dockerfile: str, tag: str, labels: Labels,
              no_cache: bool, on_line: OnLine, timeout_s: float,
              build_args: Mapping[str, str], on_context: OnContext) -> BuildResult:
        exclude = read_dockerignore(context_dir)
        processed = process_dockerfile(dockerfile, str(context_dir))
        # The bytes the context will hold (the files the tar will carry, without headers):
        # the total of the progress bar, counted before the clock starts.
        total = sum(os.path.getsize(os.path.join(context_dir, name)) for name in
                    build_utils.exclude_paths(str(context_dir), exclude or [], processed[0])
                    if os.path.isfile(os.path.join(context_dir, name)))
        started = time.perf_counter()
        # Packed exactly as `docker build` and docker-py do (the context minus .dockerignore)
        # and streamed to the engine while it is packed, as the docker CLI does: no temp file
        # written and read back first. The bytes the engine received are counted on the way.
        context = StreamedContext(str(context_dir), exclude, processed,
                                  lambda sent: on_context(sent, max(total, sent)))
        lines: list[str] = []
        image_id = ""
        try:
            stream = self._api.build(
                fileobj=context.chunks(), custom_context=True, dockerfile=processed[0],
                tag=tag, labels=dict(labels), nocache=no_cache, rm=True, forcerm=True,
                decode=True, buildargs=dict(build_args), timeout=ENGINE_TIMEOUT_S,
            )
            for chunk in stream:
                if "error" in chunk:
                    lines.append(str(chunk["error"]).strip())
                    raise StepFailed(f"build of {tag} failed: {chunk['error']}".strip(),
                                     "\n".join(lines[-LOG_TAIL_LINES:]))
                if "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = str(chunk["aux"]["ID"])
                text = str(chunk.get("stream", "")).strip()
                if text:
                    lines.append(text)
                    on_line(text)
        finally:
            context.close()
        context_bytes = context.sent_bytes
        seconds = time.perf_counter() - started
        attrs = _built_image(self._api, tag, lines)
        return BuildResult(image_id or str(attrs["Id"]), seconds, context_bytes, self.name,
                           "\n".join(lines[-LOG_TAIL_LINES:]))


class BuildKitBuilder:
    """BuildKit through the docker CLI (`docker buildx build --load`, or DOCKER_BUILDKIT=1 on
    a client older than 23); the context bytes come from its 'transferring context' line."""

    name = "buildkit"

    def __init__(self, api: docker.APIClient) -> None:
        self._api = api

    def build(self, context_dir: Path, dockerfile: str, tag: str, labels: Labels,
              no_cache: bool, on_line: OnLine, timeout_s: float,
              build_args: Mapping[str, str], on_context: OnContext) -> BuildResult:
        # The CLI streams the context itself; its "transferring context" lines reach on_line.
        command, env = buildkit_command()
        command += ["--progress=plain", "-f", str(context_dir / dockerfile), "-t", tag]
        for key, value in build_args.items():
            command += ["--build-arg", f"{key}={value}"]
        for key, value in labels.items():
            command += ["--label", f"{key}={value}"]
        if no_cache:
            command.append("--no-cache")
        command.append(str(context_dir))
        started = time.perf_counter()
        lines = _run_streaming(command, env, on_line, timeout_s, what=f"build of {tag}")
        seconds = time.perf_counter() - started
        attrs = _built_image(self._api, tag, lines)
        return BuildResult(str(attrs["Id"]), seconds, buildkit_context_bytes(lines), self.name,
                           "\n".join(lines[-LOG_TAIL_LINES:]))


class StreamedContext:
    """A build context packed by docker-py's own tar code in a thread and handed to the
    request as it is produced (chunked upload), counting the bytes sent."""

    CHUNK_QUEUE = 16  # 16 x up to 1 MiB in memory at most

    def __init__(self, root: str, exclude: list[str] | None,
                 dockerfile: tuple[str | None, str | None],
                 on_sent: Callable[[int], None] = lambda _: None) -> None:
        self.sent_bytes = 0
        self._on_sent = on_sent
        self._queue: queue.Queue[bytes | BaseException | None] = queue.Queue(self.CHUNK_QUEUE)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._pack, args=(root, exclude, dockerfile),
                                        name="context-tar", daemon=True)
        self._thread.start()

    def _pack(self, root: str, exclude: list[str] | None,
              dockerfile: tuple[str | None, str | None]) -> None:
        try:
            writer = _QueueWriter(self._put)
            build_utils.tar(root, exclude=exclude, dockerfile=dockerfile, fileobj=writer)
            writer.flush()
            self._put(None)
        except BaseException as error:  # handed to the reading side
            with contextlib.suppress(_Abandoned):
                self._put(error)

    def _put(self, item: bytes | BaseException | None) -> None:
        while not self._closed.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return
            except queue.Full:
                continue
        raise _Abandoned

    def chunks(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            self.sent_bytes += len(item)
            self._on_sent(self.sent_bytes)
            yield item

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)


class _Abandoned(Exception):
    """The request stopped reading the context (the build failed): stop packing."""


class _QueueWriter(io.RawIOBase):
    """The file object tarfile writes to: it only appends, so tell() is the count written and
    seek() (docker-py rewinds its temp file at the end) has nothing to do."""

    BLOCK = 1024 * 1024

    def __init__(self, put: Callable[[bytes | BaseException | None], None]) -> None:
        self._put = put
        self._position = 0
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._buffer += data
        self._position += len(data)
        if len(self._buffer) >= self.BLOCK:
            self._put(bytes(self._buffer))
            self._buffer.clear()
        return len(data)

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._position

    def flush(self) -> None:
        if self._buffer:
            self._put(bytes(self._buffer))
            self._buffer.clear()


def read_dockerignore(context_dir: Path) -> list[str] | None:
    path = context_dir / ".dockerignore"
    if not path.exists():
        return None
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


_CONTEXT_LINE = re.compile(r"transferring context:\s*([\d.]+)\s*([kKMGT]?B)")
_UNIT = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def buildkit_context_bytes(lines: Sequence[str]) -> int:
    """Bytes BuildKit reports sending ("transferring context: 64.07MB"; 3-4 digits only)."""
    value = 0
    for line in lines:
        match = _CONTEXT_LINE.search(line)
        if match:
            value = round(float(match.group(1)) * _UNIT[match.group(2)])
    return value


def docker_cli_candidates() -> list[str]:
    seen: list[str] = []
    for folder in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin"]:
        candidate = os.path.join(folder, "docker")
        if os.access(candidate, os.X_OK):
            real = os.path.realpath(candidate)
            if real not in [os.path.realpath(s) for s in seen]:
                seen.append(candidate)
    return seen


def buildkit_command() -> tuple[list[str], dict[str, str]]:
    """How to run a BuildKit build here: `docker buildx build --load` where buildx exists,
    else a client older than 23.0 with DOCKER_BUILDKIT=1 (a newer client refuses that)."""
    env = dict(os.environ)
    for cli in docker_cli_candidates():
        buildx = subprocess.run([cli, "buildx", "version"], capture_output=True, text=True)
        if buildx.returncode == 0:
            return [cli, "buildx", "build", "--load"], env
    for cli in docker_cli_candidates():
        version = subprocess.run([cli, "version", "--format", "{{.Client.Version}}"],
                                 capture_output=True, text=True)
        major = version.stdout.strip().split(".")[0]
        if major.isdigit() and int(major) < 23:
            env["DOCKER_BUILDKIT"] = "1"
            return [cli, "build"], env
    raise StepFailed(
        "no BuildKit-capable docker client: install the buildx plugin "
        "(`apt-get install docker-buildx`) or use --builder legacy"
    )


@functools.cache  # a subprocess probe; the client does not change while we run
def buildkit_available() -> bool:
    try:
        buildkit_command()
    except StepFailed:
        return False
    return True


def _run_streaming(
    command: list[str], env: dict[str, str], on_line: OnLine, timeout_s: float, what: str
) -> list[str]:
    lines: list[str] = []
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip())
            on_line(line.rstrip())
            if time.monotonic() > deadline:
                raise StepFailed(f"{what} timed out after {timeout_s:.0f}s",
                                 "\n".join(lines[-LOG_TAIL_LINES:]))
        code = process.wait()
    except BaseException:
        # Ctrl-C or a timeout: stop the client (and its session) before cleanup runs.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait()
        raise
    if code != 0:
        raise StepFailed(f"{what} failed (docker exit {code})", "\n".join(lines[-LOG_TAIL_LINES:]))
    return lines
