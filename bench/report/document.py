"""report.md: the environment, the comparison tables, who wins what, the seed's claims and
every chart, written next to the tables and charts it embeds. Reads only the stored run."""

from __future__ import annotations

import datetime
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.host.fsutil import write_atomic
from bench.report import charts, drift, scale_out, table
from bench.report.claims_table import claims_markdown
from bench.report.decision import decision_markdown
from bench.report.labels import Labels
from bench.report.ranking import Entry, ranking
from bench.report.view import RunView
from bench.results.metrics import WINNER_METRICS
from bench.results.store import load_run
from bench.results.summary import format_value
from bench.results.units import format_bytes, format_quantity, format_seconds, number, number_style
from bench.servers.link import LinkRate


@dataclass
class ReportFiles:
    folder: Path
    report: Path
    tables: list[Path] = field(default_factory=list)
    charts: dict[str, list[Path]] = field(default_factory=dict)


def order_text(view: RunView, labels: Labels) -> str:
    plan = view.plan
    text = (labels("order_interleaved").format(seed=plan.get("seed", "?"))
            if plan.get("order") == "interleaved" else labels("order_sequential"))
    return text + (labels("warmup_note") if plan.get("warmup") else "")


def span_text(view: RunView) -> str:
    span = drift.run_span(view)
    if span is None:
        return "?"
    first, last, seconds = span
    return f"{first[:19]}Z – {last[:19]}Z ({number(seconds / 60, '.1f')} min)"


def machine_text(machine: dict[str, Any], labels: Labels) -> str:
    kind = machine.get("virtualization")
    virt = (labels("virt_unknown") if not kind or kind == "unknown" else
            labels("virt_none") if kind == "none" else labels("virt_vm").format(kind=kind))
    return labels("machine_text").format(cpus=machine.get("logical_cpus", "?"), virt=virt)


def shared_text(view: RunView, labels: Labels) -> str:
    """Whether other tenants shared the machine, from the kernel's steal counter per round."""
    steal = drift.canary_by_round(view, "round_steal_fraction")
    if not steal:
        return labels("shared_unknown")
    if max(steal.values()) <= 0.001:
        return labels("shared_none")
    return labels("shared_steal").format(
        high=format_quantity("fraction", max(steal.values())),
        median=format_quantity("fraction", statistics.median(steal.values())))


def run_text(meta: dict[str, Any], labels: Labels) -> str:
    start, end = meta.get("started_at"), meta.get("finished_at")
    if not start:
        return "?"
    if not end:  # runs stored before finished_at was recorded, or cut short
        return f"{str(start)[:19]}Z – {labels('end_not_recorded')}"
    seconds = (datetime.datetime.fromisoformat(end)
               - datetime.datetime.fromisoformat(start)).total_seconds()
    return f"{str(start)[:19]}Z – {str(end)[:19]}Z ({format_seconds(seconds)})"


def citable(meta: dict[str, Any]) -> bool:
    """A run is citable only from a committed tree: its commit names what was measured."""
    git = meta.get("git", {})
    return bool(git.get("commit")) and not git.get("dirty")


def uncommitted(meta: dict[str, Any], labels: Labels, shown: int = 5) -> str:
    """What a dirty tree held beyond its commit: the files the run recorded, or what was
    found out afterwards for a run that recorded only the flag."""
    git = meta.get("git", {})
    files = list(git.get("uncommitted") or [])
    if files:
        more = f" (+{len(files) - shown})" if len(files) > shown else ""
        return labels("uncommitted_files") + " " + ", ".join(files[:shown]) + more
    later = git.get("uncommitted_probably_in")
    if later:
        return labels("uncommitted_probably").format(commit=str(git.get("commit", "?"))[:7],
                                                     later=", ".join(later))
    return labels("uncommitted_unknown")


def environment_rows(meta: dict[str, Any], labels: Labels, trials: int) -> list[tuple[str, str]]:
    machine, engine = meta.get("machine", {}), meta.get("engine", {})
    model, base, runtime = meta.get("model", {}), meta.get("base_image", {}), meta.get(
        "runtime_image", {})
    git = meta.get("git", {})
    details = model.get("details", {}) or {}
    model_text = (f"{format_bytes(float(model.get('bytes', 0)))}, "
                  f"{labels('model_' + str(model.get('kind', '?')))}")
    if details.get("n_estimators"):
        model_text += f", {details['n_estimators']} {labels('trees')}"
    if model.get("n_features"):
        model_text += f", {model['n_features']} {labels('features')}"
    rows = [
        ("env_run", run_text(meta, labels)),
        ("env_machine", machine_text(machine, labels)),
        ("env_engine", f"Docker {engine.get('server_version', '?')} (API "
                       f"{engine.get('api_version', '?')}), cgroup v{engine.get('cgroup_version', '?')}"),
        ("env_storage", str(engine.get("storage_driver", "?"))),
        ("env_builders", ", ".join(labels(b) for b in meta.get("builders", []))),
        ("env_cpu", f"{machine.get('cpu', '?')} × {machine.get('logical_cpus', '?')}"),
        ("env_ram", format_bytes(float(machine.get("ram_bytes", 0)))),
        ("env_disk", f"{format_bytes(float(machine.get('disk_total_bytes', 0)))} / "
                     f"{format_bytes(float(machine.get('disk_free_bytes', 0)))}"),
        ("env_os", f"{machine.get('kernel', '?')} / {engine.get('operating_system', '?')}"),
        ("env_base", f"{base.get('ref', '?')} ({base.get('origin', '?')})"),
        ("env_runtime", f"{runtime.get('ref', '?')}, "
                        f"{format_bytes(float(runtime.get('image_bytes', 0)))}"),
        ("env_model", model_text),
        ("env_page_cache", labels("cache_cold") if meta.get("config", {}).get("drop_caches")
         else labels("cache_warm")),
        ("env_trials", str(trials)),
        ("env_commit", f"{str(git.get('commit', '?'))[:12]}"
                       f"{' (' + labels('dirty_tree') + ')' if git.get('dirty') else ''}"),
    ]
    return [(labels(key), value) for key, value in rows]


def winners_markdown(view: RunView, labels: Labels) -> str:
    """Best, runner-up and worst per metric, from bench.report.ranking: a best is declared
    alone only when the noise rule separates it from every other; otherwise the tie is
    shown, and the runner-up is the best strategy outside it."""
    lines = [f"| {labels('metric')} | {labels('best')} | {labels('runner_up')} | "
             f"{labels('worst')} | {labels('worst_over_best')} |", "|---|---|---|---|--:|"]
    for metric in WINNER_METRICS:
        builders = view.builders() if metric in table.BUILD_METRICS else ["-"]
        for builder in builders:
            found = ranking(view, metric, builder)
            if found is None:
                continue
            name = labels(metric) + ("" if builder == "-" else f" ({labels(builder)})")

            def show(entry: Entry | None, m: str = metric) -> str:
                if entry is None:
                    return "–"
                return (f"{table.row_label(labels, entry.strategy, entry.condition)} "
                        f"{format_value(m, entry.median)}")

            if len(found.tie) > 1:
                leader = f"{labels('tie')}: " + ", ".join(show(e) for e in found.tie)
            else:
                leader = f"**{show(found.best)}**"
            factor = found.worst_over_best
            spread = f"{number(factor, ',.1f')}×" if factor is not None else "–"
            worst = ", ".join(show(e) for e in found.worst_group) or "–"
            lines.append(f"| {name} | {leader} | {show(found.runner_up)} | {worst} | "
                         f"{spread} |")
    return "\n".join(lines) + "\n"


def not_measured_markdown(view: RunView, labels: Labels) -> str:
    """Metrics a trial could not measure, each with its reason (never silently absent)."""
    seen: dict[tuple[str, str, str], list[int]] = {}
    for name, outcome in view.run.document.get("strategies", {}).items():
        for entry in outcome.get("not_measured", []):
            key = (name, labels(entry["metric"]), entry["reason"])
            seen.setdefault(key, []).append(int(entry.get("trial", 0)))
    return "".join(f"- **{name}** {metric}: {reason} ("
                   + labels("trials_n").format(n=", ".join(map(str, trials))) + ")\n"
                   for (name, metric, reason), trials in seen.items())


def cached_markdown(view: RunView, labels: Labels) -> str:
    """Preparation timings this run took from the cache, and the run that measured them."""
    lines = []
    for name, outcome in view.run.document.get("strategies", {}).items():
        for key, value in outcome.get("notes", {}).items():
            if isinstance(key, str) and key.endswith(" cached"):
                metric = key.removesuffix(" cached")
                lines.append(f"- **{name}** {labels(metric)}: {value}\n")
    return "".join(lines)


def skipped_markdown(view: RunView) -> str:
    return "".join(f"- **{name}**: {outcome['notes'].get('skipped', '')}\n"
                   for name, outcome in view.run.document.get("strategies", {}).items()
                   if outcome.get("status") == "skipped")


def remarks_markdown(view: RunView, labels: Labels) -> str:
    lines = []
    for name, outcome in view.run.document.get("strategies", {}).items():
        for entry in outcome.get("notes", {}).get("remarks", []):
            trial = labels("trial_n").format(n=entry["trial"])
            lines.append(f"- **{name}** ({trial}): {entry['remark']}\n")
    return "".join(lines)


def failures_markdown(view: RunView) -> str:
    lines = []
    for name, outcome in view.run.document.get("strategies", {}).items():
        for failure in outcome.get("failures", []):
            lines.append(f"- **{name}** ({failure.get('phase', '?')}): {failure.get('reason', '')}")
    return "\n".join(lines) + ("\n" if lines else "")


def render_report(run_folder: Path, lang: str = "en", formats: tuple[str, ...] = charts.FORMATS,
                  dpi: int = 300, out: Path | None = None,
                  egress: LinkRate | None = None) -> ReportFiles:
    """Every file of the report, its numbers written the way `lang` writes them; `egress`:
    the servers' egress the scale-out projection assumes (scale_out.DEFAULT_EGRESS)."""
    with number_style(lang):
        return _render(run_folder, Labels(lang), formats, dpi, out, egress)


def _render(run_folder: Path, labels: Labels, formats: tuple[str, ...], dpi: int,
            out: Path | None, egress: LinkRate | None = None) -> ReportFiles:
    egress = egress or LinkRate.parse(scale_out.DEFAULT_EGRESS)
    lang = labels.lang
    view = RunView.of(load_run(run_folder))
    folder = out or run_folder / f"report-{lang}"
    folder.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(folder, folder / "report.md")

    tables = table.build_tables(view, labels)
    markdown_tables = "\n".join(table.to_markdown(t) for t in tables)
    for name, text in (("table.md", markdown_tables),
                       ("table.tex", "\n".join(table.to_latex(t) for t in tables)),
                       ("table.csv", table.to_csv(view))):
        write_atomic(folder / name, text)
        files.tables.append(folder / name)
    # No formats: the text alone (the tests' strict renderings of every stored run).
    files.charts = charts.render_all(view, labels, folder / "charts", formats, dpi) if formats else {}
    node_costs = scale_out.node_costs(view)
    scale_chart = scale_out.scale_out_chart(view, node_costs, labels, egress) if formats else None
    if scale_chart is not None:
        files.charts["scale_out"] = charts.save(scale_chart, folder / "charts", "scale_out",
                                                formats, dpi)

    config = view.metadata.get("config", {})
    status = view.run.document.get("status", "?")
    title = labels("report_title") + (
        "" if citable(view.metadata) else
        f" ({labels('not_citable')}: {uncommitted(view.metadata, labels)})")
    doc = [f"# {title}", "",
           f"{labels('status')}: **{labels('status_' + status)}** · "
           f"{labels('run')} `{view.run.document.get('run_id', '?')}`", "",
           f"## {labels('environment')}", "", "| | |", "|---|---|"]
    doc += [f"| {k} | {v} |" for k, v in environment_rows(view.metadata, labels,
                                                            int(config.get("trials", 0)))]
    doc += [f"| {labels('env_shared')} | {shared_text(view, labels)} |",
            f"| {labels('env_order')} | {order_text(view, labels)} |",
            f"| {labels('env_duration')} | {span_text(view)} |"]
    warmup = labels("reading_warmup") if view.plan.get("warmup") else ""
    doc += ["", f"## {labels('reading_title')}", "",
            labels("reading_text").format(n=config.get("trials", "?"), warmup=warmup)]
    doc += ["", f"## {labels('aa_title')}", "", drift.aa_markdown(view, labels)]
    canary = drift.canary_markdown(view, labels)
    if canary:
        doc += [f"## {labels('canary_title')}", "", canary]
    slow = drift.slow_rounds_note(view, labels)
    doc += [f"## {labels('winners')}", "", winners_markdown(view, labels),
            f"## {labels('tables')}", "", f"*{labels('cell_note')}*", "",
            *([f"*{slow}*", ""] if slow else []), markdown_tables,
            f"## {labels('claims')}", "", claims_markdown(view, labels),
            f"## {labels('decision_title')}", "", decision_markdown(view, labels),
            f"## {labels('charts')}", ""]
    preferred = "svg" if "svg" in formats or not formats else formats[0]
    for stem, paths in files.charts.items():
        chosen = next((p for p in paths if p.suffix == f".{preferred}"), paths[0])
        doc += [f"![{labels('chart_' + stem)}]({chosen.relative_to(folder).as_posix()})", ""]
    # Sections that appear only when the run has something to say in them.
    checks = scale_out.scale_checks(view, node_costs)
    for title, text in (("scale_out_title", scale_out.scale_out_markdown(node_costs, labels,
                                                                          egress)),
                        ("scale_check_title", scale_out.scale_check_markdown(
                            view, checks, node_costs, labels)),
                        ("cached_title", cached_markdown(view, labels)),
                        ("skipped_title", skipped_markdown(view)),
                        ("remarks_title", remarks_markdown(view, labels)),
                        ("not_measured_title", not_measured_markdown(view, labels)),
                        ("failures", failures_markdown(view))):
        if text:
            doc += [f"## {labels(title)}", "", text]
    write_atomic(files.report, "\n".join(doc))
    return files
