"""The service's environment contract, declared once in docker/service/settings.py: the
harness writes only what the service reads, `export` writes what the run gave it, and the
defaults of the CLI, the API and the service agree."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from bench import cli
from bench.errors import StepFailed
from bench.export import exportable, repository_compose
from bench.host.paths import PROJECT_ROOT, service_module
from bench.measure import spec
from bench.measure.spec import StartSpec
from bench.model.source import ModelArtifact
from bench.options import given_fields
from bench.progress import Progress
from bench.run.config import RunConfig
from bench.service_env import DEFAULT, READ_BY_SERVICE, VARIABLE, default_int, service_env
from strategies.base import StrategyContext, StrategyOptions
from tests.fake_engine import FakeEngine, ServiceBehaviour


def test_the_service_reads_each_declared_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Settings field comes from its own variable (set each to a value unlike its
    default, and each field changes)."""
    settings = service_module("settings")
    odd = {"str": "x-odd", "int": "7", "float": "2.5", "bool": "1"}
    kinds = {f.name: str(f.type) for f in settings.fields(settings.Settings)}
    assert set(kinds) == set(VARIABLE)
    for field, name in VARIABLE.items():
        monkeypatch.setenv(name, odd[kinds[field]])
    loaded = settings.load_settings()
    for field in VARIABLE:
        assert getattr(loaded, field) == settings.parse(kinds[field], odd[kinds[field]]), field
        assert getattr(loaded, field) != settings.parse(kinds[field], DEFAULT[field]), field


def test_a_setting_the_service_does_not_have_is_an_error() -> None:
    assert service_env(model_path="/m", preload=True) == {"MODEL_PATH": "/m",
                                                           "MODEL_PRELOAD": "1"}
    with pytest.raises(TypeError, match="no setting model_pth"):
        service_env(model_pth="/m")
    with pytest.raises(TypeError, match="no loader for model_format='onnx'"):
        service_env(model_format="onnx")


def test_a_start_that_sets_a_variable_the_service_does_not_read_is_refused() -> None:
    """A typo in a strategy's (or a plug-in's) literal would start a service on its
    default and measure it as something else: the one place a spec is made refuses it."""
    start = StartSpec("-", env={"MODEL_PATH": "/m", "MODEL_PAHT": "/m"})
    with pytest.raises(StepFailed, match="sets MODEL_PAHT, which the service does not read"):
        spec.container_spec("img", "c", {}, start, spec.TrialSettings())
    good = spec.container_spec("img", "c", {}, StartSpec("-", env={"MODEL_PATH": "/m"}),
                                spec.TrialSettings())
    assert good.env == {"MODEL_PATH": "/m"}


def _string_constants(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)}


def test_no_harness_module_spells_a_service_variable() -> None:
    """The names are written once, by docker/service/settings.py; the harness names
    Settings fields (bench/service_env.py), so a renamed variable cannot be missed."""
    sources = [p for folder in ("bench", "strategies") for p in (PROJECT_ROOT / folder).rglob("*.py")]
    assert len(sources) > 30
    spelled = {str(p.relative_to(PROJECT_ROOT)): _string_constants(p) & READ_BY_SERVICE
               for p in sources}
    assert {path: names for path, names in spelled.items() if names} == {}


def test_export_gives_the_service_what_the_run_gives_it(tiny_model: ModelArtifact,
                                                        tmp_path: Path) -> None:
    """Found: export wrote MODEL_PATH, MODEL_LOADING and MODEL_CODEC by hand; a strategy
    setting another variable would have been exported as something never measured."""
    engine = FakeEngine(ServiceBehaviour(list(tiny_model.reference_predictions)))
    ctx = StrategyContext("RUN", tiny_model, tmp_path, {}, "net", "rt", engine,
                          Progress(quiet=True), StrategyOptions())
    services = yaml.safe_load(repository_compose())["services"]
    strategies = exportable()
    assert {"baked", "volume", "compressed-gzip9"} <= set(strategies)
    for name, strategy in strategies.items():
        prepared = strategy.prepare(ctx)
        assert services[name]["environment"] == dict(prepared.env), name


def test_the_cli_the_api_and_the_service_default_to_one_chunk_size(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Found: --download-chunk defaulted to 16MB (16,000,000 bytes), StrategyOptions and the
    service to 16 MiB."""
    config = RunConfig(**given_fields(cli.build_parser().parse_args(["run"]), RunConfig))
    assert config.options.download_chunk_bytes == default_int("download_chunk_bytes")
    assert config.options.download_concurrency == default_int("download_concurrency")
    assert StrategyOptions().download_chunk_bytes == default_int("download_chunk_bytes")
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["run", "--help"])
    assert "(default 16MiB, the service's own)" in " ".join(capsys.readouterr().out.split())


def test_the_runtime_dockerfile_runs_the_declared_server_as_the_declared_user() -> None:
    """docker/Dockerfile.runtime cannot import the harness: it must spell the same user and
    command the harness declares (bench.engine SERVICE_UID, bench.service_env SERVER_COMMAND),
    as the runtime Dockerfile `export` writes does."""
    import json

    from bench.engine import SERVICE_UID
    from bench.export import RUNTIME_DOCKERFILE
    from bench.host.paths import RUNTIME_DOCKERFILE as RUNTIME_FILE
    from bench.service_env import SERVER_COMMAND

    for text in (RUNTIME_FILE.read_text(), RUNTIME_DOCKERFILE):
        lines = text.splitlines()
        assert f"USER {SERVICE_UID}" in lines
        assert any(f"useradd --uid {SERVICE_UID} " in line for line in lines)
        command = next(line for line in lines if line.startswith("CMD "))
        assert json.loads(command[4:]) == list(SERVER_COMMAND)
