"""The seed's decision tree ("¿Build sigue lento? ... ¿Necesitas múltiples instancias?")
answered from one stored run: for each need, who wins it here (bench.report.ranking, the
run's noise rule and A/A floor), by how much, and where the seed's own answer stands.

A need is data: the metric that measures it, the conditions it is read under, and the
strategy the seed recommends for it (None: the seed does not say).
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.report.claims import condition_matches
from bench.report.labels import Labels
from bench.report.ranking import Entry, Ranking, ranking
from bench.report.table import BUILD_METRICS, row_label
from bench.report.view import RunView
from bench.results.summary import format_value
from bench.results.units import format_quantity


@dataclass(frozen=True)
class Need:
    key: str  # label of the question; "<key>_seed" is the seed's answer in words
    metric: str
    seed_choice: str | None  # the strategy the seed recommends for it
    condition: str | None = None  # only starts under this condition (claims' syntax)
    needs: str = ""  # the flag a run needs to measure it, when a default run does not


NEEDS = (
    Need("need_fast_builds", "build_cold_s", "dockerignore"),
    Need("need_fast_start", "model_ready_s", "compressed-gzip9"),
    Need("need_low_ram", "server_pss_bytes", None),
    Need("need_little_disk", "disk_bytes", "registry"),
    Need("need_replicas", "replicas_mem_total_bytes", "registry", needs="--replicas 2"),
    Need("need_fresh_nodes", "model_ready_s", "registry", condition="fresh node",
         needs="--fresh-node"),
    Need("need_updates", "rollout_s", "volume", needs="--rollout"),
)


def _rows(view: RunView, need: Need, builder: str) -> list[tuple[str, str]]:
    return [(s, c) for (s, b, c, m) in view.summaries
            if m == need.metric and b == builder and condition_matches(need.condition, c)]


def _seed_entry(found: Ranking, strategy: str) -> Entry | None:
    """The seed's choice as a first start meets it: a cold cache before a warm one."""
    mine = [e for e in found.ranked if e.strategy == strategy]
    cold = [e for e in mine if "warm" not in e.condition]
    chosen = cold or mine
    return chosen[0] if chosen else None


def _factor(entry: Entry, best: Entry) -> str:
    if not best.median:
        return "–"
    return format_quantity("ratio", entry.median / best.median)


def decision_markdown(view: RunView, labels: Labels) -> str:
    lines = [labels("decision_intro"), "",
             f"| {labels('need')} | {labels('seed_answer')} | {labels('winner_here')} | "
             f"{labels('margin')} | {labels('seed_choice_here')} |", "|---|---|---|--:|---|"]
    for need in NEEDS:
        builders = (view.builders() or ["legacy"]) if need.metric in BUILD_METRICS else ["-"]
        for builder in builders:
            question = labels(need.key) + ("" if builder == "-" else f" ({labels(builder)})")
            seed = labels(need.key + "_seed")
            rows = _rows(view, need, builder)
            found = ranking(view, need.metric, builder, rows) if rows else None
            if found is None:
                missing = labels("not_measured") + (
                    f" ({labels('claim_needs').format(flags=f'`{need.needs}`')})"
                    if need.needs else "")
                lines.append(f"| {question} | {seed} | {missing} | – | – |")
                continue

            def show(e: Entry, metric: str = need.metric) -> str:
                return f"{row_label(labels, e.strategy, e.condition)} {format_value(metric, e.median)}"

            winner = (f"**{show(found.best)}**" if len(found.tie) == 1 else
                      f"{labels('tie')}: " + ", ".join(show(e) for e in found.tie))
            runner = found.runner_up
            margin = (labels("margin_text").format(factor=_factor(runner, found.best),
                                                   runner=row_label(labels, runner.strategy,
                                                                    runner.condition))
                      if runner is not None else "–")
            choice = "–"
            if need.seed_choice is not None:
                entry = _seed_entry(found, need.seed_choice)
                if entry is None:
                    choice = labels("not_in_this_run")
                elif entry in found.tie:
                    choice = labels("seed_choice_wins").format(value=show(entry))
                else:
                    choice = labels("seed_choice_behind").format(
                        value=show(entry), factor=_factor(entry, found.best))
            lines.append(f"| {question} | {seed} | {winner} | {margin} | {choice} |")
    return "\n".join(lines) + "\n"
