"""The service's environment, written by the harness from the service's own declaration
(docker/service/settings.py ENVIRONMENT): strategies, the trial and `export` name Settings
fields, never a variable, so a typo is an error here instead of a silent default there."""

from __future__ import annotations

from collections.abc import Mapping

from bench.errors import StepFailed
from bench.host.paths import SERVICE_DIR, service_module

_SETTINGS = service_module("settings")

# Settings field -> environment variable, and the service's default for each field.
VARIABLE: Mapping[str, str] = {field: var.name for field, var in _SETTINGS.ENVIRONMENT.items()}
DEFAULT: Mapping[str, str] = {field: var.default for field, var in _SETTINGS.ENVIRONMENT.items()}
READ_BY_SERVICE = frozenset(VARIABLE.values())
# How the service is served: the runtime image's CMD (docker/Dockerfile.runtime), and the
# module a pre-forking server imports.
SERVICE_APP = "backend.app:app"
SERVER_COMMAND = ("python", "-m", "uvicorn", SERVICE_APP, "--host", "0.0.0.0", "--port", "8000")


def _text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):  # the service reads "1" as true (settings.parse)
        return "1" if value else ""
    return str(value)


def service_env(**settings: str | int | float | bool) -> dict[str, str]:
    """The variables that give the service these Settings fields."""
    unknown = sorted(set(settings) - VARIABLE.keys())
    if unknown:
        raise TypeError(f"the service has no setting {', '.join(unknown)} "
                        f"(docker/service/settings.py declares {', '.join(VARIABLE)})")
    model_format = settings.get("model_format")
    if model_format is not None and not (SERVICE_DIR / f"load_{model_format}.py").is_file():
        raise TypeError(f"the service has no loader for model_format={model_format!r} "
                        f"(docker/service/load_{model_format}.py)")
    return {VARIABLE[field]: _text(value) for field, value in settings.items()}


def default_int(field: str) -> int:
    """The service's default for an integer setting (the harness's options start from it)."""
    return int(DEFAULT[field])


def check_read_by_service(env: Mapping[str, str], what: str) -> None:
    """Refuse a start whose environment sets a variable the service never reads: it would
    run with the service's default and be measured as something it is not."""
    unread = sorted(set(env) - READ_BY_SERVICE)
    if unread:
        raise StepFailed(f"{what} sets {', '.join(unread)}, which the service does not read "
                         "(docker/service/settings.py ENVIRONMENT lists what it reads)")
