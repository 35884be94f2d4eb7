"""Cached images are made once on a host, however many runs ask for them at once."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bench.host.made_once import made_once
from bench.prepare.base_image import OFFICIAL_BASE, ensure_base_image
from bench.progress import Progress
from tests.fake_engine import FakeEngine, ServiceBehaviour


def test_whoever_comes_second_waits_for_the_first(tmp_path: Path) -> None:
    inside: list[int] = []
    overlapped = threading.Event()

    def take(number: int) -> None:
        with made_once("thing", tmp_path):
            inside.append(number)
            if len(inside) > 1:
                overlapped.set()
            time.sleep(0.2)
            inside.remove(number)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not overlapped.is_set()
    assert (tmp_path / "locks" / "thing.lock").exists()


@dataclass
class SlowPullEngine(FakeEngine):
    """An engine that holds no base image until a pull, which takes a while."""

    pulls: list[str] = field(default_factory=list)
    pulled: set[str] = field(default_factory=set)

    def image_inspect(self, ref: str) -> dict[str, Any] | None:
        return {"Id": f"sha256:{ref}", "Size": 1} if ref in self.pulled else None

    def try_pull(self, ref: str) -> bool:
        self.pulls.append(ref)
        time.sleep(0.3)
        self.pulled.add(ref)
        return True


def test_two_runs_asking_for_the_base_image_at_once_make_it_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in a fresh CI: both engine lanes made a base image (debootstrap twice), and the
    second moved the tag under the first's runtime image."""
    monkeypatch.setenv("MLBENCH_CACHE", str(tmp_path))
    engine = SlowPullEngine(ServiceBehaviour(predictions=[]))
    refs: list[str] = []
    threads = [threading.Thread(target=lambda: refs.append(
        ensure_base_image(engine, Progress(quiet=True)).ref)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert engine.pulls == [OFFICIAL_BASE]
    assert refs == [OFFICIAL_BASE, OFFICIAL_BASE]
