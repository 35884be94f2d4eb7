"""mlbench: what it costs to get a multi-GB model file into a Dockerized prediction service."""

__version__ = "0.1.0"
