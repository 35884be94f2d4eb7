"""An in-memory engine for unit tests of the runner's and the trial's logic (as hyperfine's
scheduler is tested with a mock executor): builds return made-up images, and a started
container is a small HTTP server in this process that speaks the service's contract
(/health, /ready, /metadata, /predict) with stamps the test chooses. The real engine is
exercised by the integration tests; this one lets a unit test make a container die, answer
wrongly or fail to build, and see what the harness does.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.engine import (
    BuildResult,
    ContainerSpec,
    ContainerState,
    EngineInfo,
    MemoryStats,
)
from bench.engine.types import ENGINE_TIMEOUT_S, LOG_TAIL_LINES, Labels, OnContext, OnLine
from bench.errors import StepFailed


@dataclass
class ServiceBehaviour:
    """How the fake service behaves once its container starts."""

    predictions: list[float]  # answered for the reference rows (first ones for fewer rows)
    load_s: float = 0.05  # the model is ready this long after the start
    exit_code: int | None = None  # the container "exits" at once with this code
    oom_killed: bool = False
    wrong_predictions: bool = False
    downloaded_bytes: int = 0  # > 0: stamps a download before the load, like the registry
    # The kernel kills it (OOM) while it answers a 100-row batch: the connection just drops.
    killed_by_batch: bool = False


@dataclass
class FakeContainer:
    spec: ContainerSpec
    behaviour: ServiceBehaviour
    started_at: float | None = None
    server: ThreadingHTTPServer | None = None
    requests_before_loaded: int = 0


@dataclass
class FakeEngine:
    """Implements bench.engine.Engine; records what the harness asked for."""

    behaviour: ServiceBehaviour
    failing_builds: set[str] = field(default_factory=set)  # tags whose build fails
    image_size: int = 700_000_000
    builds: list[tuple[str, str, bool]] = field(default_factory=list)  # (tag, builder, cold)
    removed_images: list[str] = field(default_factory=list)
    containers: dict[str, FakeContainer] = field(default_factory=dict)
    removed_containers: list[str] = field(default_factory=list)
    volumes: dict[str, int] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    address: str = "127.0.0.1"

    # -- the connection
    def close(self) -> None:
        for container in self.containers.values():
            if container.server is not None:
                container.server.shutdown()

    def responds(self) -> bool:
        return True

    def info(self) -> EngineInfo:
        return EngineInfo("fake", "1.41", "overlay2", "1", "cgroupfs", "fake", "fake", "/fake")

    # -- images and builds
    def image_inspect(self, ref: str) -> dict[str, Any] | None:
        return {"Id": ref, "Size": self.image_size}

    def host_paths(self, ref: str, path: str) -> list[Path]:
        return []  # a fake engine keeps no layers on the host

    def volume_path(self, name: str) -> Path | None:
        return None

    def image_bytes(self, ref: str) -> int:
        return self.image_size

    def image_history(self, ref: str) -> list[dict[str, Any]]:
        return []

    def save_image(self, ref: str, destination: Path) -> None:
        raise NotImplementedError

    def try_pull(self, ref: str) -> bool:
        return False

    def import_rootfs(self, tar_path: Path, tag: str, changes: Sequence[str]) -> str:
        raise NotImplementedError

    def remove_image(self, ref: str, every_name: bool = False) -> bool:
        self.removed_images.append(ref)
        return True

    def tag_image(self, image: str, ref: str) -> None:
        raise NotImplementedError

    def push_image(self, ref: str, on_progress: OnContext | None = None) -> str:
        raise NotImplementedError

    def pull_image(self, ref: str, on_progress: OnContext | None = None) -> None:
        raise NotImplementedError

    def tag_exists(self, ref: str) -> bool:
        return True

    def build_cache(self) -> dict[str, int]:
        return {}

    def prune_build_cache(self, ids: Sequence[str]) -> int:
        return 0

    def prune_all_build_cache(self) -> int:
        return 0

    def build(self, context_dir: Path, dockerfile: str, tag: str, labels: Labels, *,
              builder: str, no_cache: bool, on_line: OnLine = lambda _: None,
              timeout_s: float = ENGINE_TIMEOUT_S,
              build_args: Mapping[str, str] | None = None,
              on_context: OnContext = lambda _sent, _total: None) -> BuildResult:
        self.builds.append((tag, builder, no_cache))
        if tag.split(":")[0] in self.failing_builds:
            raise StepFailed(f"build of {tag} failed: fake failure", "step 3/7 failed")
        context = sum(p.stat().st_size for p in context_dir.rglob("*") if p.is_file())
        image_id = f"sha256:{next(self._ids):064x}"
        return BuildResult(image_id, 0.01, context, builder, "")

    # -- networks, volumes, containers
    def create_network(self, name: str, labels: Labels, swarm: bool = False) -> str:
        return name

    def create_volume(self, name: str, labels: Labels) -> str:
        self.volumes[name] = 0
        return name

    def remove_volume(self, name: str) -> None:
        self.volumes.pop(name, None)

    def volume_bytes(self, name: str) -> int:
        return self.volumes.get(name, 0)

    def create_container(self, spec: ContainerSpec) -> str:
        container_id = f"{next(self._ids):012x}"
        self.containers[container_id] = FakeContainer(spec, self.behaviour)
        return container_id

    def start_container(self, container_id: str) -> None:
        container = self.containers[container_id]
        container.started_at = time.time()
        if container.behaviour.exit_code is None and not container.behaviour.oom_killed:
            container.server = _serve(container)

    def published_port(self, container_id: str, container_port: int = 8000) -> int:
        server = self.containers[container_id].server
        return 9 if server is None else server.server_address[1]  # 9: discard, refused

    def container_address(self, container_id: str, network: str) -> str | None:
        return "127.0.0.1"

    def network_hosts(self, network: str) -> dict[str, str]:
        return {}

    def network_subnets(self, network: str) -> tuple[str, ...]:
        return ()

    def container_inspect(self, container_id: str) -> dict[str, Any]:
        return {"Id": container_id}

    def container_state(self, container_id: str) -> ContainerState:
        behaviour = self.containers[container_id].behaviour
        if behaviour.oom_killed:
            return ContainerState("exited", 137, True, "")
        if behaviour.exit_code is not None:
            return ContainerState("exited", behaviour.exit_code, False, "")
        return ContainerState("running", None, False, "")

    def container_pid(self, container_id: str) -> int:
        return 0  # no such process: the process view is recorded as not measured

    def container_size_rw(self, container_id: str) -> int:
        return 4096

    def memory_stats(self, container_id: str) -> MemoryStats:
        return MemoryStats(300_000_000, 20_000_000, 310_000_000, 250_000_000, 30_000_000)

    def logs_tail(self, container_id: str, lines: int = LOG_TAIL_LINES) -> str:
        return "fake service log"

    def exec_in(self, container_id: str, command: Sequence[str]) -> tuple[int, str]:
        return 0, ""

    def remove_container(self, container_id: str) -> None:
        container = self.containers.pop(container_id, None)
        if container is not None and container.server is not None:
            container.server.shutdown()
            container.server.server_close()
        self.removed_containers.append(container_id)

    # -- swarm
    def swarm_active(self) -> bool:
        return False

    def swarm_init(self) -> bool:
        raise NotImplementedError

    def swarm_leave(self, remove_gateway_bridge: bool = False) -> None:
        raise NotImplementedError

    def create_service(self, spec: ContainerSpec, replicas: int) -> str:
        raise NotImplementedError

    def service_tasks(self, service_id: str) -> list[tuple[str, str]]:
        raise NotImplementedError

    def remove_service(self, service_id: str) -> None:
        raise NotImplementedError

    # -- housekeeping by label
    def labelled(self, label: str) -> dict[str, list[str]]:
        return {"containers": [], "images": [], "volumes": [], "networks": []}

    def remove_labelled(self, label: str, *, images: bool = True) -> dict[str, int]:
        return {"containers": 0, "images": 0, "volumes": 0, "networks": 0}

    def run_labels(self, selector: str) -> set[str]:
        return set()

    def owner_pids(self, run_id: str) -> set[int]:
        return set()

    def keeps(self, run_id: str) -> bool:
        return False


def _serve(container: FakeContainer) -> ThreadingHTTPServer:
    behaviour = container.behaviour
    assert container.started_at is not None
    start = container.started_at
    server_up = start + 0.01
    download_end = start + 0.02 if behaviour.downloaded_bytes else None
    load_start = download_end or server_up
    load_end = load_start + behaviour.load_s

    def loaded() -> bool:
        return time.time() >= load_end

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if not loaded():
                container.requests_before_loaded += 1
            if self.path == "/health":
                self._answer(200, {"status": "ok"})
            elif self.path == "/ready":
                body: dict[str, Any] = {"ready": loaded(), "error": None}
                if behaviour.downloaded_bytes and not loaded():  # as the service reports it
                    body["download"] = {"received_bytes": behaviour.downloaded_bytes // 2,
                                        "total_bytes": behaviour.downloaded_bytes}
                self._answer(200 if loaded() else 503, body)
            elif self.path == "/metadata":
                story: dict[str, Any] = {"process_start": start + 0.005, "server_up": server_up,
                                         "requests_before_loaded":
                                         container.requests_before_loaded}
                if loaded():
                    story |= {"load_start": load_start, "load_end": load_end}
                if download_end is not None:
                    story |= {"downloaded": True, "download_start": server_up,
                              "download_end": download_end,
                              "download_bytes": behaviour.downloaded_bytes,
                              "download_retries": 0}
                self._answer(200, {"loading": "eager", "story": story,
                                   "load_s": behaviour.load_s if loaded() else None})
            else:
                self._answer(404, {})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if not loaded():
                self._answer(503, {"detail": "model is still loading"})
                return
            rows = len(body["rows"])
            if behaviour.killed_by_batch and rows >= 100:
                behaviour.oom_killed = True
                self.close_connection = True
                return  # no answer at all: the client sees the connection closed
            answer = behaviour.predictions[:rows]
            if behaviour.wrong_predictions:
                answer = [value + 1.0 for value in answer]
            self._answer(200, {"predictions": answer})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
