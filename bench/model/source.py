"""The model under test: the user's own joblib file or a synthetic FIFA forest of a given size.

Both end as a ModelArtifact with the reference predictions every trial is checked against.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.errors import UsageError
from bench.host.fsutil import write_atomic
from bench.model.hashing import cached_sha256
from bench.model.model_code import activate, check_model_code, code_digest, provided_modules
from bench.model.pickle_needs import mismatch_lines, model_environment, unimportable_here
from bench.model.serving_env import (
    ServingEnvironment,
    read_user_requirements,
    runtime_requirements,
    served_versions,
    serving_environment,
)
from bench.prepare.wheelhouse import ensure_wheelhouse
from bench.progress import Progress

JOBLIB_MAGIC_PREFIXES = (b"\x80", b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"\x04\x22\x4d\x18",
                         b"ZF", b"\xfd7zXZ", b"BZh")


@dataclass(frozen=True)
class ModelArtifact:
    path: Path
    bytes: int
    sha256: str
    kind: str  # "synthetic" or "user"
    n_features: int
    reference_rows: list[list[float]]
    reference_predictions: list[Any]  # floats, or a classifier's classes (int, str)
    details: dict[str, Any]
    # A classifier's predict_proba on the reference rows (None: the model has none).
    reference_probabilities: list[list[float]] | None = None

    @property
    def flat_refusal(self) -> str | None:
        """Why the flat format (the mmap strategies) cannot hold this model; None: it can
        (a forest, but a classifier of several outputs; a GradientBoosting or HistGradientBoosting model, or a
        Pipeline ending in one: bench.model.flat_forest.flat_refusal). A synthetic model is
        a forest."""
        refusal = self.details.get("flat_refusal")
        return None if refusal is None else str(refusal)

    @property
    def missing_in_service(self) -> list[str]:
        """Libraries the pickle needs that the service's image does not install."""
        return list((self.details.get("environment") or {}).get("missing", []))

    @property
    def served_sklearn(self) -> str | None:
        """The scikit-learn version the model is served with (None: it needs none)."""
        served = (self.details.get("environment") or {}).get("served") or {}
        version = served.get("scikit-learn")
        return None if version is None else str(version)

    @property
    def is_tree_ensemble(self) -> bool:
        """A forest or a gradient-boosting ensemble (or a Pipeline ending in one): what the
        sharded strategies can take apart tree by tree."""
        from bench.model.sharding import ENSEMBLE_BASES

        bases = set(self.details.get("final_bases", []))
        return self.kind == "synthetic" or bool(bases & set(ENSEMBLE_BASES))

    @property
    def serving(self) -> ServingEnvironment:
        """The environment the model is served in: its own (a user model saved with other
        versions, or needing another library), or the runtime's pins."""
        found = (self.details.get("environment") or {}).get("serving")
        if found is None:
            return ServingEnvironment(tuple(runtime_requirements()), ())
        return ServingEnvironment(tuple(found["requirements"]), tuple(found["changes"]))

    def describe(self) -> dict[str, Any]:
        info = asdict(self)
        info["path"] = str(self.path)
        del info["reference_rows"], info["reference_predictions"]
        del info["reference_probabilities"]
        return info


def synthetic_model(target_bytes: int, seed: int, models_dir: Path, cache: Path,
                    progress: Progress, kind: str = "forest-regressor") -> ModelArtifact:
    from datos.model_generator import kind_label

    what = kind_label(kind)
    with progress.step(f"synthetic FIFA {what} of {target_bytes / 1e6:.0f} MB "
                       f"(seed {seed}; cached after the first time)"):
        # Imported here: scikit-learn takes a second to import, and `--help` needs none of it.
        from datos.model_generator import generate_model

        generated = generate_model(target_bytes, seed, models_dir,
                                   lambda done, total: progress.count(done, total, "trees"),
                                   kind)
    path = Path(generated.path)
    details = {k: v for k, v in asdict(generated).items()
               if k not in ("reference_rows", "reference_predictions", "path",
                            "reference_probabilities")}
    sha = cached_sha256(path, cache)
    details["environment"] = model_environment(path, sha, cache)
    return ModelArtifact(path, generated.bytes, sha, "synthetic",
                         generated.n_features, generated.reference_rows,
                         generated.reference_predictions, details,
                         generated.reference_probabilities)


def check_model_path(path: Path) -> None:
    """A usage error naming the problem and the fix, for a --model that cannot be a model."""
    if path.is_dir():
        raise UsageError(f"--model {path} is a folder: pass the .joblib file inside it")
    if not path.is_file():
        raise UsageError(f"model file {path} does not exist: pass --model PATH to a .joblib file")
    if path.stat().st_size == 0:
        raise UsageError(f"model file {path} is empty (0 bytes): save the model again with "
                         "joblib.dump")


def _cannot_import(path: Path, names: list[str]) -> UsageError:
    return UsageError(
        f"{path.name} needs {', '.join(names)}, which the service's image does not install and "
        "this host cannot import: pip install it here if it is a library (the flat format may "
        "then serve the model), or pass --model-code DIR, the folder that holds it, if it is "
        "a module of your own project")


def served_environment(path: Path, sha: str, cache: Path, progress: Progress,
                       model_code: Path | None = None, requirements: Path | None = None
                       ) -> dict[str, Any]:
    """run.json's `model.environment`: what the pickle needs and was saved with
    (bench.model.pickle_needs), the environment it is served in (bench.model.serving_env,
    resolved: a usage error when it cannot be installed) and the versions that installs."""
    pins = read_user_requirements(requirements) if requirements is not None else {}
    try:
        env = model_environment(path, sha, cache, provided_modules(model_code))
    except ValueError as error:
        raise UsageError(f"{error}; save the model with joblib.dump") from None
    serving = serving_environment(env, pins)
    if serving.own:
        with progress.step(f"the model's own environment ({'; '.join(serving.changes)})"):
            wheels = ensure_wheelhouse(cache, serving.requirements_file(cache), progress)
        env = model_environment(path, sha, cache, provided_modules(model_code),
                                served_versions(wheels))
    env["serving"] = {"key": serving.key, "requirements": list(serving.requirements),
                      "changes": list(serving.changes)}
    return env


def user_model(path: Path, cache: Path, progress: Progress,
               model_code: Path | None = None, requirements: Path | None = None
               ) -> ModelArtifact:
    """The user's model file, checked and described; `model_code`, the folder of their own
    modules it imports (put on this process's import path: the host loads it too);
    `requirements`, the user's pins for the environment it is served in
    (bench.model.serving_env), resolved here, before anything is built."""
    check_model_path(path)
    if model_code is not None:
        check_model_code(model_code)
        activate(model_code)
    with path.open("rb") as handle:
        head = handle.read(8)
    if not head.startswith(JOBLIB_MAGIC_PREFIXES):
        raise UsageError(f"{path} is not a joblib/pickle file (unknown header {head[:4]!r}); "
                         "save the model with joblib.dump")
    sha = cached_sha256(path, cache)
    env = served_environment(path, sha, cache, progress, model_code, requirements)
    # A model of a library the service's image lacks (LightGBM) runs where the flat format
    # holds it: the unpickling strategies skip it (Strategy.skip_reason); the host still
    # loads it once, for the reference and the conversion, so it must import it.
    unimportable = unimportable_here(env)
    if unimportable:
        raise _cannot_import(path, unimportable)
    for line in mismatch_lines(path.name, env):
        progress.warn(line)
    # v6: why the flat format cannot hold it (boosting models flattened)
    # The user's modules shape the predictions too (a transformer's code): keyed by both.
    code = "" if model_code is None else f"-code{code_digest(model_code)[:12]}"
    record = cache / "reference" / f"{sha}{code}.v6.json"
    if not record.exists():
        from datos.model_generator import REFERENCE_ROWS

        with progress.step(f"reference predictions of {path.name} (loads it once on the host)"):
            result = subprocess.run([sys.executable, "-m", "datos.reference", str(path),
                                     str(REFERENCE_ROWS)], capture_output=True, text=True)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            if env["missing"] and "ModuleNotFoundError" in last:
                raise _cannot_import(path, env["missing"])
            raise UsageError(f"cannot load {path} as a scikit-learn model: {last}")
        write_atomic(record, result.stdout)
    reference = json.loads(record.read_text())
    return ModelArtifact(path.resolve(), path.stat().st_size, sha, "user",
                         int(reference["n_features"]), reference["reference_rows"],
                         reference["reference_predictions"],
                         {"model_class": reference["model_class"],
                          "final_estimator": reference.get("final_estimator"),
                          "flat_refusal": reference["flat_refusal"],
                          "final_bases": reference.get("final_bases", []),
                          "environment": env},
                         reference.get("reference_probabilities"))
