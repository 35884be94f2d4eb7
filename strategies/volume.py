"""Seed strategy 1: code-only image, the model bind-mounted read-only at run time.
No .dockerignore, as in the seed: what the builder receives depends on the builder."""

from strategies.base import Strategy


class Volume(Strategy):
    name = "volume"
    summary = "code-only image, model bind-mounted read-only"
    dockerfile = "Dockerfile.volume"
