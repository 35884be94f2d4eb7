"""Builds: every strategy's cold and warm builds with every builder, and what the run
added to BuildKit's build cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.engine import BuildResult
from bench.host import page_cache
from bench.measure.recorder import StrategyRecorder
from bench.prepare.context import touch_service_code
from bench.results.units import format_bytes
from bench.run.state import RunState
from strategies.base import Strategy


class Builds(RunState):
    def _read_build_cache(self) -> dict[str, int] | None:
        if "buildkit" not in self.config.builders:
            return None  # only BuildKit builds grow it; `docker system df` is not free
        try:
            return self.engine.build_cache()
        except Exception:  # an engine without BuildKit's df, or one that stopped answering
            return None

    def _account_build_cache(self) -> None:
        """What this run added to BuildKit's build cache (28.85 GB at full size, before),
        recorded and removed unless --keep; where the engine cannot, the exact command."""
        after = self._read_build_cache()
        if self._build_cache_before is None or after is None:
            return
        added = {i: size for i, size in after.items() if i not in self._build_cache_before}
        record: dict[str, Any] = {"added_bytes": sum(added.values()), "entries": len(added),
                                  "removed_bytes": 0}
        if added and not self.config.keep:
            try:
                record["removed_bytes"] = self.engine.prune_build_cache(list(added))
            except Exception as error:
                self.progress.warn(f"could not remove the {len(added)} build-cache entries "
                                   f"this run added ({type(error).__name__}); `docker builder "
                                   "prune` frees the whole build cache")
        if added:
            self.progress.info(f"BuildKit cache: this run added {format_bytes(record['added_bytes'])}"
                               f", removed {format_bytes(record['removed_bytes'])}"
                               + (" (--keep)" if self.config.keep else ""))
        if self.store is not None:
            self.store.record.metadata["build_cache"] = record
            self.store.flush()

    def _build(self, strategy: Strategy, context: Path, recorder: StrategyRecorder
               ) -> tuple[str, int]:
        """Cold and warm builds with every builder, --build-trials times each.

        The builder that goes first alternates from one strategy (and repetition) to the next:
        the second build of the same context reads it from a warm page cache, and always
        giving that advantage to one builder would bias the comparison. With --drop-caches the
        cache is dropped before every cold build instead, so every cold build reads from disk.
        """
        image = ""
        added = 0
        revision = 0
        order: list[str] = []
        for repetition in range(1, self.config.build_trials + 1):
            builders = list(self.config.builders)
            if (self._strategies_built + repetition) % 2 == 0:
                builders.reverse()
            for builder in builders:
                revision += 1
                order.append(builder)
                tag = f"mlbench-{strategy.name}-{builder}:{self.run_id.lower()}"
                if self.config.drop_caches:
                    page_cache.drop()
                repeat = ("" if self.config.build_trials == 1
                          else f" {repetition}/{self.config.build_trials}")
                cold = self._build_once(context, tag, builder, True,
                                        f"[{strategy.name}] cold build ({builder}, no cache)"
                                        f"{repeat}")
                touch_service_code(context, revision)
                warm = self._build_once(context, tag, builder, False,
                                        f"[{strategy.name}] warm build ({builder}, one-line "
                                        f"change){repeat}")
                if cold.image_id != warm.image_id:
                    # The tag moved to the warm image; the cold one would hold a second copy
                    # of a model copied in after the code (5.4 GB a strategy at full size).
                    self.engine.remove_image(cold.image_id)
                added = recorder.built(repetition, cold, warm, self.engine.image_bytes(tag),
                                       self.runtime.image_bytes)
                image = image or tag
        self._strategies_built += 1
        self._build_order[strategy.name] = order
        return image, added

    def _build_once(self, context: Path, tag: str, builder: str, no_cache: bool, title: str
                    ) -> BuildResult:
        with self.progress.step(title):
            return self.engine.build(context, "docker/Dockerfile", tag, self.labels,
                                     builder=builder, no_cache=no_cache,
                                     build_args={"RUNTIME_IMAGE": self.runtime.ref},
                                     on_line=self.progress.update,
                                     on_context=self._context_sent)
