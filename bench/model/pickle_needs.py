"""What a joblib file needs to be loaded, read without running any of its code.

The file is read by joblib's own unpickler (so its compression and the array data it writes
beside the pickle are handled as `joblib.load` handles them), but every class or function
the pickle names outside numpy, joblib and a few builtins is replaced by an inert stand-in
that only records its state: scikit-learn, LightGBM or the user's own modules need not be
installed, and nothing of theirs runs. From the names and the states: the modules the pickle
imports, the distributions they come from, and the versions it records (scikit-learn stores
`_sklearn_version` in every estimator; numpy 2 pickles name `numpy._core`, numpy 1 pickles
`numpy.core`, which numpy 1 cannot load).
"""

from __future__ import annotations

import builtins
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The real objects the reading needs, by module and name: array data, dtypes, containers.
# Each builds data and runs nothing else; every other name (numpy.load or numpy.f2py too)
# becomes a stand-in.
_CORE_NAMES = frozenset({"_reconstruct", "scalar", "_frombuffer"})
_REAL: dict[str, frozenset[str]] = {
    "joblib.numpy_pickle": frozenset({"NumpyArrayWrapper", "NDArrayWrapper",
                                      "ZNDArrayWrapper"}),
    "numpy": frozenset({"dtype", "ndarray"}),
    "numpy.core.multiarray": _CORE_NAMES, "numpy._core.multiarray": _CORE_NAMES,
    "numpy.core.numeric": _CORE_NAMES, "numpy._core.numeric": _CORE_NAMES,
    "copyreg": frozenset({"_reconstructor"}),
    "collections": frozenset({"OrderedDict", "defaultdict", "deque"}),
    "_codecs": frozenset({"encode"}),
    "builtins": frozenset({"set", "frozenset", "dict", "list", "tuple", "slice", "complex",
                           "bytearray", "bytes", "object", "int", "float", "str", "bool",
                           "range"}),
}
# Random states (a fitted forest keeps its random_state): bit generators built by name.
_REAL_PREFIXES = ("numpy.random.",)
# Top-level module -> the distribution that installs it, where the names differ.
DISTRIBUTION_OF = {"sklearn": "scikit-learn", "xgboost": "xgboost", "lightgbm": "lightgbm",
                   "catboost": "catboost", "numpy": "numpy", "scipy": "scipy",
                   "pandas": "pandas", "joblib": "joblib"}
_STANDARD = frozenset({"builtins", "copyreg", "collections", "_codecs", "functools",
                       "datetime", "decimal", "fractions", "uuid", "pathlib", "re", "enum",
                       "operator", "itertools", "types", "array"})


@dataclass(frozen=True)
class PickleNeeds:
    modules: tuple[str, ...]  # every module the pickle imports, sorted
    distributions: tuple[str, ...]  # what installs them (a user module stays a module name)
    saved_with: dict[str, str] = field(default_factory=dict)  # distribution -> version seen
    classes: tuple[str, ...] = ()  # module.Name of each class it builds, sorted

    def to_json(self) -> dict[str, Any]:
        return {"modules": list(self.modules), "distributions": list(self.distributions),
                "saved_with": dict(self.saved_with), "classes": list(self.classes)}


class _StandIn:
    """Takes any construction and any state, and keeps the state: what a class of the
    pickle becomes while it is read."""

    _states: list[Any]

    def __new__(cls, *args: Any, **kwargs: Any) -> _StandIn:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        type(self)._states.append(state)

    def __call__(self, *args: Any, **kwargs: Any) -> _StandIn:
        return _StandIn.__new__(type(self))

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, value: Any) -> None:
        pass

    def extend(self, values: Any) -> None:
        pass


def _reader(path: Path, handle: Any, mmap_mode: str | None) -> Any:
    from joblib.numpy_pickle import NumpyUnpickler

    names: set[tuple[str, str]] = set()
    states: list[Any] = []

    class Reader(NumpyUnpickler):  # type: ignore[misc]  # joblib's, untyped
        def find_class(self, module: str, name: str) -> Any:
            names.add((module, name))
            if name in _REAL.get(module, ()) or module.startswith(_REAL_PREFIXES):
                return getattr(builtins, name) if module == "builtins" else super().find_class(
                    module, name)
            return type(name, (_StandIn,), {"__module__": module, "_states": states})

    # Mapped where the file allows it (uncompressed): the arrays' bytes are never read.
    reader = Reader(str(path), handle, ensure_native_byte_order=mmap_mode is None,
                    mmap_mode=mmap_mode)
    reader.names, reader.states = names, states
    return reader


def _walk(value: Any, depth: int = 0) -> Iterator[Any]:
    """Every value inside recorded states (dicts, lists, tuples), to a bounded depth."""
    yield value
    if depth > 6:
        return
    items = (value.values() if isinstance(value, dict)
             else value if isinstance(value, list | tuple) else ())
    for item in items:
        yield from _walk(item, depth + 1)


def read_needs(path: Path) -> PickleNeeds:
    """What loading `path` needs; raises ValueError when it is not a readable joblib file."""
    from joblib.numpy_pickle import _validate_fileobject_and_memmap

    with warnings.catch_warnings():
        # joblib says a compressed file cannot be mapped (it is then read, decompressed).
        warnings.filterwarnings("ignore", message='mmap_mode "r" is not compatible')
        try:
            with path.open("rb") as raw, _validate_fileobject_and_memmap(
                    raw, str(path), "r") as (handle, mmap_mode):
                if isinstance(handle, str):  # joblib < 0.10's format, with companion files
                    raise ValueError("written by joblib older than 0.10: save it again")
                reader = _reader(path, handle, mmap_mode)
                reader.load()
        except Exception as error:  # a broken, truncated or foreign file
            raise ValueError(f"{path} cannot be read as a joblib pickle ({type(error).__name__}:"
                             f" {error})") from None
    modules = sorted({module for module, _ in reader.names})
    saved_with: dict[str, str] = {}
    versions = {str(v["_sklearn_version"]) for state in reader.states for v in _walk(state)
                if isinstance(v, dict) and isinstance(v.get("_sklearn_version"), str)}
    if versions:
        saved_with["scikit-learn"] = ", ".join(sorted(versions))
    if any(m.startswith("numpy._core") for m in modules):
        saved_with["numpy"] = "2.x"
    elif any(re.match(r"numpy\.core(\.|$)", m) for m in modules):
        saved_with["numpy"] = "1.x"
    tops = {m.split(".")[0] for m in modules} - _STANDARD
    distributions = sorted(DISTRIBUTION_OF.get(top, top) for top in tops)
    classes = sorted(f"{m}.{n}" for m, n in reader.names
                     if m.split(".")[0] not in _STANDARD and n[:1].isupper())
    return PickleNeeds(tuple(modules), tuple(distributions), saved_with, tuple(classes))


def served_versions(requirements: Path) -> dict[str, str]:
    """Distribution -> the version the runtime image installs (docker/requirements.txt)."""
    pins = {}
    for line in requirements.read_text().splitlines():
        name, sep, version = line.split("#")[0].strip().partition("==")
        if sep:
            pins[name.strip().lower()] = version.strip()
    return pins


def environment(needs: PickleNeeds, served: dict[str, str],
                provided: frozenset[str] = frozenset()) -> dict[str, Any]:
    """run.json's `model.environment`: what the pickle needs, the versions it records, what
    the service serves it with, and where the two part (`differs`: a version recorded that is
    not the one served; `missing`: needed and not installed by the service at all).
    `provided`: the top-level modules of the user's --model-code, which the image holds."""
    differs = sorted(name for name, version in needs.saved_with.items()
                     if "x" not in version and served.get(name) not in (None, version))
    code = sorted(d for d in needs.distributions if d in provided)
    return {**needs.to_json(), "served": {d: served.get(d) for d in needs.distributions},
            "differs": differs, "model_code": code,
            "missing": sorted(d for d in needs.distributions
                              if d not in served and d not in provided)}


def model_environment(path: Path, sha256: str, cache: Path,
                      provided: frozenset[str] = frozenset(),
                      served: dict[str, str] | None = None) -> dict[str, Any]:
    """The environment record of a model file, cached by its digest (a 5.45 GB forest is
    read in seconds: its arrays are mapped, never read); `served`, the versions its own
    environment installs (None: the runtime's pins, docker/requirements.txt)."""
    import json

    from bench.host.fsutil import write_atomic
    from bench.host.paths import REQUIREMENTS_FILE

    record = cache / "needs" / f"{sha256}.v1.json"
    if record.exists():
        stored = json.loads(record.read_text())
        needs = PickleNeeds(tuple(stored["modules"]), tuple(stored["distributions"]),
                            dict(stored["saved_with"]), tuple(stored["classes"]))
    else:
        needs = read_needs(path)
        write_atomic(record, json.dumps(needs.to_json()))
    return environment(needs, served_versions(REQUIREMENTS_FILE) if served is None else served,
                       provided)


def mismatch_lines(name: str, env: dict[str, Any]) -> list[str]:
    """One line per distribution whose saved and served versions differ."""
    return [f"{name} was saved with {d} {env['saved_with'][d]}; the service loads it with "
            f"{env['served'][d]}: the run measures that version's load (run.json "
            "model.environment records both)" for d in env["differs"]]


def unimportable_here(env: dict[str, Any]) -> list[str]:
    """The needed distributions the service lacks that this host cannot import either (a
    module of the user's own project, a library not installed): nothing can load the model."""
    import importlib.util

    tops = {m.split(".")[0] for m in env["modules"]}
    return sorted({DISTRIBUTION_OF.get(top, top) for top in tops
                   if DISTRIBUTION_OF.get(top, top) in env["missing"]
                   and importlib.util.find_spec(top) is None})
