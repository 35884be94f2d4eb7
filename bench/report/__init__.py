"""The report: tables, charts, the seed's claims and report.md, from stored results only."""

from bench.report.document import ReportFiles, render_report

__all__ = ["ReportFiles", "render_report"]
