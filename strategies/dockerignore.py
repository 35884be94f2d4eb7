"""Seed strategy 2: the code-only image with the seed's .dockerignore; the model still
arrives by a read-only mount. Its effect depends on the builder and the Dockerfile, so the
matrix variants (COPY . . with and without the .dockerignore) come along."""

from strategies.base import Factory, Strategy
from strategies.volume import BIND_MOUNTED_JOBLIB


class DockerIgnore(Strategy):
    name = "dockerignore"
    summary = "code-only image (COPY backend/), seed .dockerignore, model mounted"
    dockerfile = "Dockerfile.volume"
    exportable = True
    dockerignore = "dockerignore.seed"
    start_key = BIND_MOUNTED_JOBLIB


class CopyAll(Strategy):
    name = "copyall"
    summary = "COPY . . without .dockerignore (the model lands in the image), model mounted"
    dockerfile = "Dockerfile.copyall"
    exportable = True
    image_carries_model = True  # by accident (the service still reads the mounted file)
    start_key = BIND_MOUNTED_JOBLIB


class CopyAllIgnored(Strategy):
    name = "copyall-dockerignore"
    summary = "COPY . . with the seed .dockerignore, model mounted"
    dockerfile = "Dockerfile.copyall"
    exportable = True
    dockerignore = "dockerignore.seed"
    start_key = BIND_MOUNTED_JOBLIB


# The names this module adds to the command line, and where they sort in it.
ORDER = 30
STRATEGIES: dict[str, Factory] = {"dockerignore": lambda _: [DockerIgnore(), CopyAll(), CopyAllIgnored()]}
