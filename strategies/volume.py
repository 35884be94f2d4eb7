"""Seed strategy 1: code-only image, the model bind-mounted read-only at run time.
No .dockerignore, as in the seed: what the builder receives depends on the builder."""

from strategies.base import Factory, Strategy

# One start for volume, dockerignore, copyall and copyall-dockerignore: the same code and the
# same joblib file bind-mounted read-only (in copyall the mount hides the image's copy).
BIND_MOUNTED_JOBLIB = "code image + bind-mounted joblib"


class Volume(Strategy):
    name = "volume"
    summary = "code-only image, model bind-mounted read-only"
    dockerfile = "Dockerfile.volume"
    exportable = True
    start_key = BIND_MOUNTED_JOBLIB


class VolumeAA(Volume):
    """The A/A control: `volume` again under a second name, measured as a strategy of its own
    in every round. Whatever separates it from `volume` is the run's noise."""

    name = "volume-aa"
    summary = "A/A control: volume repeated under a second name (identical work)"
    aa_of = "volume"
    exportable = False  # a control of the measurement, not a setup to adopt


# The names this module adds to the command line, and where they sort in it.
ORDER = 20
STRATEGIES: dict[str, Factory] = {"volume": lambda _: [Volume()], "volume-aa": lambda _: [VolumeAA()]}
