"""The comparison printed at the end of every run: strategies as rows, the headline metrics
of the catalogue as columns (build metrics once per builder), medians, and a star on the best
value of each column and on every value tied with it within noise (bench.report.ranking)."""

from __future__ import annotations

from bench.report.labels import Labels
from bench.report.ranking import ranking
from bench.report.table import BUILD_METRICS, row_label
from bench.report.view import RunView
from bench.results.metrics import HEADLINE_METRICS
from bench.results.summary import format_value
from bench.results.units import number_style

BEST_MARK = "*"


def _columns(view: RunView, labels: Labels) -> list[tuple[str, str, str]]:
    """(metric, builder, header) for every headline metric the run measured."""
    builders = view.builders() or ["legacy"]
    columns = []
    for metric in HEADLINE_METRICS:
        if not view.has(metric):
            continue
        if metric in BUILD_METRICS and metric != "image_added_bytes":
            columns += [(metric, b, f"{labels(metric)} ({b})") for b in builders]
        elif metric in BUILD_METRICS:  # the same bytes whichever builder built the image
            columns.append((metric, builders[0], labels(metric)))
        else:
            columns.append((metric, "-", labels(metric)))
    return columns


def comparison_table(view: RunView, labels: Labels) -> str:
    with number_style(labels.lang):
        return _comparison_table(view, labels)


def _comparison_table(view: RunView, labels: Labels) -> str:
    columns = _columns(view, labels)
    rows: list[tuple[str, str]] = []  # (strategy, condition)
    for strategy in view.strategies:
        measured = [c for (s, _b, c, m) in view.summaries
                    if s == strategy and m in HEADLINE_METRICS]
        if not measured:  # a reference row (the in-process predict): not a strategy to rank
            continue
        conditions = [c for c in measured if c != "-"]
        rows += [(strategy, c) for c in dict.fromkeys(conditions)] or [(strategy, "-")]
    cells: list[list[str]] = []
    for strategy, condition in rows:
        line = []
        for metric, builder, _header in columns:
            summary = (view.get(strategy, metric, builder, condition)
                       or view.get(strategy, metric, builder, "-"))
            line.append("–" if summary is None else format_value(metric, summary.median))
        cells.append(line)
    for index, (metric, builder, _header) in enumerate(columns):
        _mark_best(view, metric, builder, rows, cells, index)
    header = [labels("strategy"), *(h for _m, _b, h in columns)]
    body = [[row_label(labels, s, c), *line] for (s, c), line in zip(rows, cells, strict=True)]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        return "  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                         for i, cell in enumerate(row))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(header), rule, *(fmt(r) for r in body),
                      f"{BEST_MARK} {labels('best_mark_note')}"])


def _mark_best(view: RunView, metric: str, builder: str, rows: list[tuple[str, str]],
               cells: list[list[str]], index: int) -> None:
    found = ranking(view, metric, builder, rows)
    if found is None:
        return
    tied = {(e.strategy, e.condition) for e in found.tie}
    for row, key in enumerate(rows):
        if key in tied:
            cells[row][index] += BEST_MARK
