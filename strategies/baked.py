"""The naive baseline (the seed's "Antes"): the model is COPY'd into the image."""

from strategies.base import Factory, Strategy


class Baked(Strategy):
    name = "baked"
    summary = "model copied into the image (naive baseline)"
    dockerfile = "Dockerfile.baked"
    exportable = True
    model_in_image = True
    image_carries_model = True


# The names this module adds to the command line, and where they sort in it.
ORDER = 10
STRATEGIES: dict[str, Factory] = {"baked": lambda _: [Baked()]}
