"""The environment a user's model is served in: the runtime's own pins (docker/requirements.txt)
moved to the versions the pickle records, with the libraries it needs, and to what the user
pins (`--requirements FILE`).

scikit-learn refuses no pickle of another version: it warns (InconsistentVersionWarning) and
loads the state into its own classes, which may predict otherwise or hold other memory. A run
that served a 1.3.2 forest with 1.9.1 would measure a load the user's deployment never
performs, and check it against 1.9.1's own predictions. So the model is served by the
scikit-learn that saved it, with the numpy, scipy, joblib and threadpoolctl that install with
it (pip chooses them), and the host's references are computed in that same image
(bench.measure.own_environment).

The environment is resolved (`pip download` into a wheelhouse, bench.prepare.wheelhouse)
before anything is built: a version with no wheel for the container's Python, or pins that
conflict, is a usage error naming the requirement. The versions served are read from the
wheels pip chose, not from the pins.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from bench.errors import UsageError
from bench.host.paths import REQUIREMENTS_FILE
from bench.model.pickle_needs import DISTRIBUTION_OF

# The wheel that installs a distribution where the names differ: xgboost's own wheel pulls
# NVIDIA's NCCL (hundreds of MB of CUDA); xgboost-cpu is the same library without it.
WHEEL_OF = {"xgboost": "xgboost-cpu"}
# What a pickled scikit-learn estimator is bound to: at the pickle's scikit-learn version the
# runtime's pins of these are lifted and pip chooses versions that install with it.
MOVES_WITH_SKLEARN = ("numpy", "scipy", "joblib", "threadpoolctl")
# scikit-learn's first release built against numpy 2; older ones stop at import under numpy 2
# ("A module that was compiled using NumPy 1.x cannot be run in NumPy 2"), and not all of
# them say so: 1.3.2's metadata asks numpy<2, 1.1.3's only numpy>=1.17.3 (both read here).
FIRST_ON_NUMPY_2 = Version("1.4.2")
# The scikit-learn this harness reads (and, for the sharded strategies, pickles again) models with.
HOST_SKLEARN = importlib.metadata.version("scikit-learn")


@dataclass(frozen=True)
class ServingEnvironment:
    requirements: tuple[str, ...]  # one requirement a line, in the runtime's order
    changes: tuple[str, ...]  # how it departs from the runtime's pins, one phrase each

    @property
    def own(self) -> bool:
        """Not the runtime's default pins: its own wheelhouse and runtime image."""
        return bool(self.changes)

    @property
    def text(self) -> str:
        return "".join(f"{line}\n" for line in self.requirements)

    @property
    def key(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]

    def locked(self, versions: dict[str, str]) -> str:
        """The requirements with what pip chose written as pins (`served_versions` of the
        wheelhouse): what a project's own image installs to serve the model alike."""
        back = {canonicalize_name(w): d for d, w in WHEEL_OF.items()}
        lines = []
        for line in self.requirements:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            version = versions.get(back.get(name, name))
            lines.append(f"{requirement.name}=={version}" if version else line)
        return "".join(f"{line}\n" for line in lines)

    def requirements_file(self, cache: Path) -> Path:
        """The requirements as a file (the wheelhouse and the runtime image take a file):
        the runtime's own file for the default environment, else one kept in the cache."""
        if not self.own:
            return REQUIREMENTS_FILE
        path = cache / "environments" / self.key / "requirements.txt"
        if not path.exists():
            from bench.host.fsutil import write_atomic

            write_atomic(path, self.text)
        return path


def _pins(lines: list[str]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in (Requirement(line) for line in lines)}


def runtime_requirements() -> list[str]:
    return [line.split("#")[0].strip() for line in REQUIREMENTS_FILE.read_text().splitlines()
            if line.split("#")[0].strip()]


def read_user_requirements(path: Path) -> dict[str, Requirement]:
    """A requirements or lock file's pins, by distribution: `name==1.2`, specifiers, markers
    and `--hash` options (pip-compile's output) are read; options and includes are ignored,
    a line that is no requirement is a usage error naming it."""
    if not path.is_file():
        raise UsageError(f"--requirements {path} is not a file: pass your project's "
                         "requirements.txt (or a lock exported as one)")
    found: dict[str, Requirement] = {}
    # A trailing backslash continues a line (pip-compile's --hash lines).
    text = re.sub(r"\\\r?\n", " ", path.read_text())
    for number, raw in enumerate(text.splitlines(), 1):
        line = re.sub(r"\s--hash[= ]\S+", "", raw.split(" #")[0]).strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as error:
            raise UsageError(f"--requirements {path}, line {number}: {line!r} is not a "
                             f"requirement ({error}); write it as name==version") from None
        if requirement.url:
            raise UsageError(f"--requirements {path}, line {number}: {requirement.name} comes "
                             "from a URL; pin a version from the package index instead")
        found[canonicalize_name(requirement.name)] = requirement
    return found


def _served_as_saved(saved: str, numpy_saved: str | None, pins: dict[str, Requirement]
                     ) -> None:
    """Pins scikit-learn at the pickle's version, and lifts what moves with it."""
    if ", " in saved:
        raise UsageError(f"the model holds estimators pickled by several scikit-learn versions "
                         f"({saved}): save it again with one, or pass --requirements pinning "
                         "the scikit-learn to serve it with")
    try:
        version = Version(saved)
    except InvalidVersion:
        raise UsageError(f"the model records scikit-learn version {saved!r}, which is no "
                         "version: pass --requirements pinning scikit-learn") from None
    pins["scikit-learn"] = Requirement(f"scikit-learn=={saved}")
    pins.update((name, Requirement(name)) for name in MOVES_WITH_SKLEARN)
    if version < FIRST_ON_NUMPY_2:
        if numpy_saved == "2.x":
            raise UsageError(f"the model was pickled by numpy 2 but records scikit-learn "
                             f"{saved}, which runs only on numpy 1: pass --requirements with "
                             "the versions it was made with")
        pins["numpy"] = Requirement("numpy<2")


def serving_environment(environment: dict[str, Any], user_pins: dict[str, Requirement]
                        ) -> ServingEnvironment:
    """The pins the model is served with, from its `model.environment` record
    (bench.model.pickle_needs) and the user's pins."""
    lines = runtime_requirements()
    pins = _pins(lines)
    order = list(pins)
    changes: list[str] = []
    saved = environment["saved_with"].get("scikit-learn")
    chosen = user_pins.get("scikit-learn")  # the user's scikit-learn pin decides, if given
    if chosen is not None:
        if str(chosen.specifier) != str(pins["scikit-learn"].specifier):
            pins.update((name, Requirement(name)) for name in MOVES_WITH_SKLEARN)
            exact = [s.version for s in chosen.specifier if s.operator == "=="]
            if exact and Version(exact[0]) < FIRST_ON_NUMPY_2:
                pins["numpy"] = Requirement("numpy<2")
    elif saved is not None and saved != str(pins["scikit-learn"].specifier).lstrip("="):
        _served_as_saved(saved, environment["saved_with"].get("numpy"), pins)
        changes.append(f"scikit-learn {saved}, as saved")
    libraries = set(DISTRIBUTION_OF.values())
    for name in environment["distributions"]:
        if name in libraries and canonicalize_name(name) not in pins:
            pins[canonicalize_name(name)] = Requirement(WHEEL_OF.get(name, name))
            order.append(canonicalize_name(name))
            changes.append(f"{name}, which the model needs")
    # The user's pins win where they name what the environment installs (their whole lock
    # may name much more: only what serves the model is taken).
    by_wheel: dict[str, str] = {canonicalize_name(w): canonicalize_name(d)
                                for d, w in WHEEL_OF.items()}
    for name, requirement in user_pins.items():
        target = by_wheel.get(name, name)
        if target in pins and str(requirement.specifier) != str(pins[target].specifier):
            pins[target] = Requirement(f"{pins[target].name}{requirement.specifier}")
            changes.append(f"{requirement}, as pinned")
    return ServingEnvironment(tuple(str(pins[name]) for name in order), tuple(changes))


def served_versions(wheelhouse: Path) -> dict[str, str]:
    """Distribution -> the version pip chose, from the wheels' names (xgboost-cpu read as
    xgboost, the module the pickle imports)."""
    back = {w: d for d, w in WHEEL_OF.items()}
    served = {}
    for wheel in wheelhouse.glob("*.whl"):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        served[back.get(str(name), str(name))] = str(version)
    return served
