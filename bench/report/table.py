"""The comparison tables: strategy x metric, median (min–max), humanised units.

Rendered as Markdown and LaTeX (booktabs) for reading, and as a long CSV of plain numbers
(one row per strategy, builder, condition and metric) for spreadsheets and other tools.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from bench.report.labels import Labels
from bench.report.view import RunView
from bench.results.metrics import METRICS, in_table
from bench.results.summary import Summary, format_value

BUILD_METRICS = in_table("build")
RUN_METRICS = in_table("start")
MODEL_METRICS = in_table("model")


@dataclass(frozen=True)
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]


def cell(summary: Summary | None) -> str:
    if summary is None:
        return "–"
    text = format_value(summary.metric, summary.median)
    if summary.n > 1 and summary.minimum != summary.maximum:
        text += (f" ({format_value(summary.metric, summary.minimum)}–"
                 f"{format_value(summary.metric, summary.maximum)})")
    return text


def row_label(labels: Labels, strategy: str, condition: str) -> str:
    if condition == "-":
        return strategy
    return f"{strategy} ({labels.condition(condition)})"


def build_tables(view: RunView, labels: Labels) -> list[Table]:
    tables: list[Table] = []
    builders = view.builders() or ["legacy"]
    metrics = [m for m in BUILD_METRICS if view.has(m)]
    rows = [[s, labels(b)] + [cell(view.get(s, m, b)) for m in metrics]
            for s in view.strategies for b in builders
            if any(view.get(s, m, b) for m in metrics)]
    if rows:
        tables.append(Table(labels("table_build"),
                            [labels("strategy"), labels("builder")] + [labels(m) for m in metrics],
                            rows))
    metrics = [m for m in RUN_METRICS if view.has(m)]
    rows = []
    for s in view.strategies:
        for condition in dict.fromkeys(view.conditions(s, "model_ready_s")):
            rows.append([row_label(labels, s, condition)]
                        + [cell(view.get(s, m, "-", condition)) for m in metrics])
    if rows:
        tables.append(Table(labels("table_run"), [labels("strategy")]
                            + [labels(m) for m in metrics], rows))
    metrics = [m for m in MODEL_METRICS if view.has(m)]
    rows = [[s] + [cell(view.get(s, m)) for m in metrics] for s in view.strategies
            if any(view.get(s, m) is not None for m in metrics)]
    if rows:
        tables.append(Table(labels("table_model"), [labels("strategy")]
                            + [labels(m) for m in metrics], rows))
    return tables


def to_markdown(table: Table) -> str:
    lines = [f"### {table.title}", "",
             "| " + " | ".join(table.header) + " |",
             "|" + "|".join("---" if i == 0 else "--:" for i in range(len(table.header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return "\n".join(lines) + "\n"


_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}", "–": "--"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(char, char) for char in text)


def to_latex(table: Table) -> str:
    """A booktabs table; needs \\usepackage{booktabs} in the preamble."""
    spec = "l" + "r" * (len(table.header) - 1)
    lines = [r"\begin{table}[htbp]", r"\centering", r"\small",
             rf"\caption{{{latex_escape(table.title)}}}",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_escape(h) for h in table.header) + r" \\", r"\midrule"]
    lines += [" & ".join(latex_escape(c) for c in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(view: RunView) -> str:
    """Every summary as plain numbers: median, min, max and quartiles of the raw samples."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("strategy", "builder", "condition", "metric", "unit", "n", "median", "min",
                     "max", "q1", "q3"))
    for s in view.summaries.values():
        writer.writerow((s.strategy, s.builder, s.condition, s.metric, METRICS[s.metric].unit,
                         s.n, repr(s.median), repr(s.minimum), repr(s.maximum), repr(s.q1),
                         repr(s.q3)))
    return buffer.getvalue()
