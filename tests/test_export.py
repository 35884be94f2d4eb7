"""`python -m bench export` and docker/compose.yaml: made from the strategies' data."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench import cli
from bench.export import export, exportable, repository_compose
from bench.host.paths import DOCKER_DIR
from bench.model.source import ModelArtifact


def test_the_repository_compose_file_is_the_one_the_strategies_make() -> None:
    """docker/compose.yaml is generated: a strategy whose Dockerfile, loading or mounts
    change makes this fail until the file is written again."""
    assert (DOCKER_DIR / "compose.yaml").read_text() == repository_compose(), (
        "docker/compose.yaml is stale: run `python -m bench.export`")
    services = yaml.safe_load(repository_compose())["services"]
    assert set(services) == set(exportable()) == {
        "baked", "volume", "dockerignore", "copyall", "copyall-dockerignore",
        "compressed-gzip9", "compressed-zstd9", "compressed-lz4"}
    assert services["baked"].get("volumes") is None  # the model is in the image
    assert services["volume"]["volumes"] == [
        "./datos/modelos/modelo_fifa.joblib:/app/datos/modelos/modelo_fifa.joblib:ro"]
    assert services["compressed-gzip9"]["environment"]["MODEL_CODEC"] == "gzip"
    for service in services.values():
        assert service["read_only"] and service["cap_drop"] == ["ALL"]
        assert (DOCKER_DIR.parent / service["build"]["dockerfile"]).is_file()


def test_export_writes_a_project_that_names_each_file(tiny_model: ModelArtifact,
                                                      tmp_path: Path) -> None:
    written = export("compressed-zstd9", tmp_path / "project", tiny_model.path)
    names = {p.relative_to(tmp_path / "project").as_posix() for p in written}
    assert {"Dockerfile", "Dockerfile.runtime", "compose.yaml", "README.md",
            "requirements.txt", "backend/app.py",
            "datos/modelos/modelo_fifa.joblib.zst"} <= names
    readme = (tmp_path / "project" / "README.md").read_text()
    for name in ("Dockerfile.runtime", "compose.yaml", "backend/"):
        assert f"`{name}`" in readme
    dockerfile = (tmp_path / "project" / "Dockerfile").read_text()
    assert "ARG RUNTIME_IMAGE=model-runtime\n" in dockerfile and "COPY backend/" in dockerfile
    packed = (tmp_path / "project" / "datos/modelos/modelo_fifa.joblib.zst").read_bytes()
    assert packed[:4] == b"\x28\xb5\x2f\xfd"  # a zstd frame
    assert not (tmp_path / "project" / ".export-cache").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["export", "registry", "DIR"], "cannot export 'registry'"),
    (["export", "volume", "FILE"], "is a file"),
    (["export", "volume", "DIR", "--model", "missing.joblib"], "is not a file"),
])
def test_export_refuses_bad_input_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              argv: list[str], message: str) -> None:
    (tmp_path / "FILE").write_text("x")
    argv = [str(tmp_path / a) if a in ("DIR", "FILE", "missing.joblib") else a for a in argv]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not (tmp_path / "DIR").exists()  # nothing written


def test_a_model_of_an_older_scikit_learn_is_exported_with_its_own_versions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The project gets the environment the run served the model in (bench.model.serving_env),
    every version pip chose pinned: not the runtime's scikit-learn, which would load another
    version's pickle."""
    import joblib
    import sklearn.base
    from sklearn.preprocessing import FunctionTransformer

    monkeypatch.setattr(sklearn.base, "__version__", "1.3.2")  # what the pickle records
    model = tmp_path / "old.joblib"
    joblib.dump(FunctionTransformer(), model)
    monkeypatch.undo()
    monkeypatch.setenv("MLBENCH_CACHE", str(tmp_path / "cache"))
    export("volume", tmp_path / "project", model)
    pins = dict(line.split("==") for line in
                (tmp_path / "project" / "requirements.txt").read_text().splitlines())
    assert pins["scikit-learn"] == "1.3.2" and pins["numpy"].startswith("1.")
    assert all(version for version in pins.values())  # nothing left for pip to choose
    assert pins["fastapi"] == dict(
        line.split("#")[0].strip().split("==") for line in
        (DOCKER_DIR / "requirements.txt").read_text().splitlines()
        if "==" in line.split("#")[0])["fastapi"]
