"""The naive baseline (the seed's "Antes"): the model is COPY'd into the image."""

from strategies.base import Strategy


class Baked(Strategy):
    name = "baked"
    summary = "model copied into the image (naive baseline)"
    dockerfile = "Dockerfile.baked"
    model_in_image = True
    image_carries_model = True
