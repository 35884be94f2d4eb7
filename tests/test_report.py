"""The report reads stored results only: tables, charts, claims and both languages."""

from __future__ import annotations

import csv
import struct
from pathlib import Path

import pytest

from bench import cli
from bench.metrics import METRICS
from bench.report import render_report
from bench.report.claims import evaluate, load_claims
from bench.report.labels import LANGUAGES, Labels
from bench.report.view import RunView
from bench.results import load_run
from tests.stored_runs import MODEL_BYTES, write_run


@pytest.fixture
def stored(tmp_path: Path) -> Path:
    return write_run(tmp_path, "run-a")


def png_dpi(path: Path) -> float:
    """Pixels per metre from the PNG pHYs chunk, as dots per inch."""
    data = path.read_bytes()
    index = data.index(b"pHYs")
    per_metre = struct.unpack(">I", data[index + 4:index + 8])[0]
    return per_metre * 0.0254


def test_report_writes_tables_charts_and_document_without_an_engine(
        stored: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.engine

    def no_engine(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the report must not talk to the engine")

    monkeypatch.setattr(bench.engine.Engine, "connect", no_engine)
    files = render_report(stored)
    assert files.folder == stored / "report-en"
    assert {p.name for p in files.tables} == {"table.md", "table.csv", "table.tex"}
    assert {"context", "build_time", "image", "startup", "first_predict", "memory", "disk",
            "timeline"} <= set(files.charts)
    for paths in files.charts.values():
        assert {p.suffix for p in paths} == {".png", ".svg"}
        assert all(p.stat().st_size > 1000 for p in paths)
    assert round(png_dpi(files.charts["context"][0])) == 300
    report = files.report.read_text()
    for strategy in ("volume", "dockerignore", "compressed-gzip9"):
        assert strategy in report
    assert "charts/timeline.svg" in report and "overlay2" in report
    latex = (files.folder / "table.tex").read_text()
    assert r"\toprule" in latex and r"compressed-gzip9" in latex


def test_table_csv_holds_plain_numbers_of_every_summary(stored: Path) -> None:
    files = render_report(stored, formats=("svg",))
    rows = list(csv.DictReader((files.folder / "table.csv").open()))
    startup = [r for r in rows if r["strategy"] == "volume" and r["metric"] == "ready_s"]
    assert len(startup) == 1
    row = startup[0]
    assert float(row["min"]) <= float(row["q1"]) <= float(row["median"]) <= float(row["q3"]) \
        <= float(row["max"])
    assert row["n"] == "3" and row["unit"] == "s"


def test_spanish_report_translates_titles_headers_and_chart_text(stored: Path) -> None:
    files = render_report(stored, lang="es", formats=("svg",))
    report = files.report.read_text()
    assert "Entorno" in report and "Estrategia" in report and "Veredicto" in report
    assert "Environment" not in report
    svg = files.charts["context"][0].read_text()
    assert "Contexto enviado al builder" in svg  # text is kept as text in SVGs


def test_every_label_exists_in_every_language() -> None:
    from bench.report.labels import _TEXT

    missing = [(key, lang) for key, entry in _TEXT.items() for lang in LANGUAGES
               if not entry.get(lang)]
    assert missing == []
    assert Labels("es")("no-such-key") == "no-such-key"


def test_claims_file_names_only_known_metrics_and_strategies() -> None:
    from strategies import REGISTRY
    from strategies.base import StrategyOptions

    names = {s.name for factory in REGISTRY.values()
             for s in factory(StrategyOptions(codecs=("gzip9",)))}
    _seed_bytes, claims = load_claims()
    assert claims
    for claim in claims:
        for side in ("a", "b"):
            if side in claim:
                assert claim[side]["metric"] in METRICS, claim["id"]
                assert claim[side]["strategy"] in names, claim["id"]


def test_claims_verdicts_follow_the_measurements(stored: Path) -> None:
    seed_bytes, claims = load_claims()
    factor, results = evaluate(RunView.of(load_run(stored)), claims, seed_bytes)
    assert factor == pytest.approx(seed_bytes / MODEL_BYTES)
    verdicts = {r.claim["id"]: r.verdict for r in results}
    # Legacy: 102 MB -> 50 KB; BuildKit: 18 KB -> 18 KB. So it depends on the builder.
    assert verdicts["context_dockerignore"] == "depends_on_builder"
    assert verdicts["image_unchanged"] == "holds"
    # load 0.6 s -> 0.7 s on 100 MB is 0.1 s; at 5.45 GB that is 5.45 s, not 1-2 s.
    overhead = next(r for r in results if r.claim["id"] == "gzip_overhead")
    assert overhead.evaluations[0].measured == pytest.approx(0.1)
    assert overhead.evaluations[0].scaled == pytest.approx(0.1 * factor)
    assert verdicts["gzip_overhead"] == "does_not_hold"
    assert verdicts["gzip_reduction"] == "holds"  # 100 MB -> 28 MB: 72%, within 60-70% ±5%


def test_claims_missing_from_a_run_say_so(tmp_path: Path) -> None:
    folder = write_run(tmp_path, "run-b")
    run = load_run(folder)
    only_volume = [s for s in run.samples if s.strategy == "volume"]
    view = RunView.of(type(run)(run.folder, run.document, only_volume))
    seed_bytes, claims = load_claims()
    _factor, results = evaluate(view, claims, seed_bytes)
    assert {r.verdict for r in results if r.claim["id"].startswith("gzip")} == {"not_measured"}


def test_report_cli_errors_are_one_line_usage_errors(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["report", str(tmp_path)]) == 2
    assert "no run.json" in capsys.readouterr().err
    folder = write_run(tmp_path, "run-c")
    assert cli.main(["report", str(folder), "--format", "gif"]) == 2
    assert "unknown chart format gif" in capsys.readouterr().err
    assert cli.main(["report", str(folder), "--format", "svg", "--quiet"]) == 0
    assert (folder / "report-en" / "report.md").exists()
