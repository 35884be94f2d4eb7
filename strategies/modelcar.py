"""The model as an OCI image of its own (KServe's "modelcar"): `FROM scratch`, the model
under a VOLUME. The service image stays code-only. Each start creates a container of the
model image (never run) and the service mounts its volume read-only (`--volumes-from`):
with Docker, creating that container copies the model from the image into a new volume, so
the start pays a copy and the node holds the model twice (image and volume). Integrity
comes from the image's content-addressed layers."""

from __future__ import annotations

import shutil

from bench.host.fsutil import link_or_copy
from bench.host.paths import DOCKER_DIR
from bench.measure.spec import StartSpec
from strategies.base import (
    MODEL_NAME_IN_REPO,
    Factory,
    PreparedModel,
    Strategy,
    StrategyContext,
)

MODEL_DIR_IN_MODEL_IMAGE = "/models"  # the VOLUME of docker/Dockerfile.modelcar


class Modelcar(Strategy):
    name = "modelcar"
    summary = "model in its own FROM-scratch image, mounted read-only with --volumes-from"
    dockerfile = "Dockerfile.volume"
    dockerignore = "dockerignore.seed"
    # The model image, and the volume each start fills from it.
    disk_model_copies = 2.0

    def __init__(self) -> None:
        self._model_image: str | None = None
        self._model_image_bytes = 0

    def prepare(self, ctx: StrategyContext) -> PreparedModel:
        context = ctx.cache / "contexts" / ctx.run_id / "modelcar-model"
        shutil.rmtree(context, ignore_errors=True)
        context.mkdir(parents=True)
        shutil.copyfile(DOCKER_DIR / "Dockerfile.modelcar", context / "Dockerfile")
        link_or_copy(ctx.model.path, context / MODEL_NAME_IN_REPO)
        # Named by the model too: the next version (a rollout) gets an image of its own.
        tag = f"mlbench-modelcar-model:{ctx.run_id.lower()}-{ctx.model.sha256[:12]}"
        with ctx.progress.step("building the model image (FROM scratch, the model alone)"):
            built = ctx.engine.build(
                context, "Dockerfile", tag, ctx.labels, builder="legacy", no_cache=True,
                on_context=lambda sent, total: ctx.progress.count(sent, total, "B"))
        shutil.rmtree(context, ignore_errors=True)
        self._model_image = tag
        self._model_image_bytes = ctx.engine.image_bytes(tag)
        prepared = super().prepare(ctx)  # the repository holds the model, as in the seed
        return PreparedModel(
            context_files=prepared.context_files,
            env=self.local_env(f"{MODEL_DIR_IN_MODEL_IMAGE}/{MODEL_NAME_IN_REPO}"),
            model_file_bytes=ctx.model.bytes,
            extra_metrics={"model_image_build_s": built.seconds,
                           "model_image_bytes": self._model_image_bytes},
        )

    def starts(self, ctx: StrategyContext, prepared: PreparedModel, trial: int
               ) -> list[StartSpec]:
        assert self._model_image is not None
        return [StartSpec("-", env=prepared.env, model_image=self._model_image,
                          host_model_bytes=self._model_image_bytes)]


# The names this module adds to the command line, and where they sort in it.
ORDER = 80
STRATEGIES: dict[str, Factory] = {"modelcar": lambda _: [Modelcar()]}
