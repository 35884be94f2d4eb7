"""Images: inspect, size, history, pull, import, remove; and BuildKit's build cache."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docker.errors
from docker.utils import parse_repository_tag

from bench.engine.build import docker_cli_candidates
from bench.engine.connection import EngineConnection
from bench.engine.types import OnContext
from bench.errors import StepFailed


class ImageJobs(EngineConnection):

    def image_inspect(self, ref: str) -> dict[str, Any] | None:
        try:
            return dict(self._api.inspect_image(ref))
        except docker.errors.ImageNotFound:
            return None

    def host_paths(self, ref: str, path: str) -> list[Path]:
        """Where `path` of an image's or a container's filesystem lies on this host: one path
        per layer that holds it (overlay2's upper and lower folders). Empty when the storage
        driver or a remote engine does not expose its layers: the caller then has nothing to
        read back, and says so through what mincore finds."""
        try:
            attrs = self._api.inspect_image(ref)
        except docker.errors.NotFound:
            try:
                attrs = self._api.inspect_container(ref)
            except docker.errors.NotFound:
                return []
        driver = attrs.get("GraphDriver") or {}
        if driver.get("Name") != "overlay2":
            return []
        data = driver.get("Data") or {}
        layers = [data.get("UpperDir") or "", *(data.get("LowerDir") or "").split(":")]
        found = [Path(layer) / path.lstrip("/") for layer in layers if layer]
        return [p for p in found if p.exists()]

    def image_bytes(self, ref: str) -> int:
        attrs = self.image_inspect(ref)
        if attrs is None:
            raise StepFailed(f"image {ref} not found")
        return int(attrs["Size"])

    def image_history(self, ref: str) -> list[dict[str, Any]]:
        return list(self._api.history(ref))

    def save_image(self, ref: str, destination: Path) -> None:
        """Write `docker save` of an image to a file (for layer scans in tests)."""
        image = self._client.images.get(ref)
        # Under the name asked for: named=True takes the image's first tag, which may be
        # another name of it (a registry's tag).
        with destination.open("wb") as handle:
            for chunk in image.save(named=ref if ref in image.tags else True):
                handle.write(chunk)

    def load_image(self, source: Path) -> None:
        """`docker load` of a file `save_image` wrote (a node's engine gets the images it
        is given, as a fresh host that cannot pull them would)."""
        with source.open("rb") as handle:
            self._client.images.load(handle)

    def try_pull(self, ref: str) -> bool:
        try:
            self._client.images.pull(ref)
            return True
        except docker.errors.APIError:
            return False

    def tag_image(self, image: str, ref: str) -> None:
        repository, tag = parse_repository_tag(ref)
        self._api.tag(image, repository, tag)

    def push_image(self, ref: str, on_progress: OnContext | None = None) -> str:
        """Push repository:tag to its registry; returns the manifest digest the registry
        stored (what a node pulls by). `on_progress` is told the layers' bytes done and in
        all, as the engine reports them."""
        repository, tag = parse_repository_tag(ref)
        digest = ""
        layers = _LayerProgress(on_progress)
        for event in self._api.push(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise StepFailed(f"push of {ref} failed: {event['error']}")
            layers.update(event)
            digest = (event.get("aux") or {}).get("Digest", digest)
        if not digest:
            raise StepFailed(f"push of {ref} ended without a digest from the registry")
        return str(digest)

    def pull_image(self, ref: str, on_progress: OnContext | None = None) -> None:
        """Pull an image (repository@sha256:... pins it)."""
        layers = _LayerProgress(on_progress)
        try:
            for event in self._api.pull(ref, stream=True, decode=True):
                if "error" in event:
                    raise StepFailed(f"pull of {ref} failed: {event['error']}")
                layers.update(event)
        except docker.errors.APIError as error:
            raise StepFailed(f"pull of {ref} failed: {error.explanation or error}") from None

    def import_rootfs(self, tar_path: Path, tag: str, changes: Sequence[str]) -> str:
        """`docker import` through the CLI: docker-py's chunked upload is refused by 20.10."""
        candidates = docker_cli_candidates()
        if not candidates:
            raise StepFailed("no docker CLI on PATH to import the base image")
        command = [candidates[0], "import"]
        for change in changes:
            command += ["--change", change]
        result = subprocess.run([*command, str(tar_path), tag], capture_output=True, text=True)
        attrs = self.image_inspect(tag)
        if result.returncode != 0 or attrs is None:
            raise StepFailed(f"docker import of {tar_path} failed: {result.stderr.strip()}")
        return str(attrs["Id"])

    def remove_image(self, ref: str, every_name: bool = False) -> bool:
        """Remove an image if nothing uses it (True when removed). `every_name`: the image
        itself, under every tag and digest it has (a reference alone untags only it)."""
        try:
            self._api.remove_image(ref, force=every_name)
            return True
        except docker.errors.APIError:
            return False

    def build_cache(self) -> dict[str, int]:
        """BuildKit's build cache: entry id -> bytes (`docker system df -v`)."""
        entries = self._api.df().get("BuildCache") or []
        return {str(e["ID"]): int(e.get("Size") or 0) for e in entries}

    def prune_build_cache(self, ids: Sequence[str]) -> int:
        """Remove these build-cache entries (not in use); returns the bytes reclaimed. The
        engine's prune filter takes one id at a time ("filters expect only one value")."""
        reclaimed = 0
        for entry in ids:
            result = self._api.prune_builds(filters={"id": entry})
            reclaimed += int(result.get("SpaceReclaimed") or 0)
        return reclaimed

    def prune_all_build_cache(self) -> int:
        result = self._api.prune_builds(all=True)
        return int(result.get("SpaceReclaimed") or 0)

    def tag_exists(self, ref: str) -> bool:
        return self.image_inspect(ref) is not None


class _LayerProgress:
    """The bytes of a push or pull so far, summed over its layers from the engine's stream
    (each event names one layer's current and total of the phase it is in)."""

    def __init__(self, on_progress: OnContext | None) -> None:
        self._on_progress = on_progress
        self._layers: dict[str, tuple[int, int]] = {}

    def update(self, event: dict[str, Any]) -> None:
        detail = event.get("progressDetail") or {}
        if (self._on_progress is None or "total" not in detail or "id" not in event
                or event.get("status") not in ("Pushing", "Downloading")):
            return  # extraction reports its own totals: the bar counts the transfer only
        self._layers[str(event["id"])] = (int(detail.get("current", 0)), int(detail["total"]))
        self._on_progress(sum(c for c, _ in self._layers.values()),
                          sum(t for _, t in self._layers.values()))
