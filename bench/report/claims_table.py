"""The seed-claims table of the report: each claim, what it expects, what the run measured
(per round where it was measured in rounds) and the verdict, from bench.report.claims."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.report.claims import CLAIMS_FILE, Evaluation, cold_cache, evaluate, load_claims
from bench.report.labels import Labels
from bench.report.view import RunView
from bench.results.units import format_bytes, format_quantity, number


def expectation_text(claim: dict[str, Any]) -> str:
    unit = claim["unit"]
    if claim["expect"] == "within":
        low, high = (float(x) for x in claim["range"])
        text = (format_quantity(unit, low) if low == high else
                f"{format_quantity(unit, low)}–{format_quantity(unit, high)}")
    else:
        sign = "≥" if claim["expect"] == "at_least" else "≤"
        text = f"{sign} {format_quantity(unit, float(claim['value']))}"
    if claim.get("tolerance"):
        text += f" (±{number(float(claim['tolerance']) * 100, '.0f')} %)"
    return text


def measured_as(claim: dict[str, Any], labels: Labels) -> str:
    """The metric(s) a claim is judged on, named as the tables name them: the seed's "Tiempo
    de startup" is this report's first correct prediction."""
    names = dict.fromkeys(labels(side["metric"]).lower()
                          for side in (claim["a"], claim.get("b")) if side)
    return " / ".join(names)


def claims_markdown(view: RunView, labels: Labels, path: Path = CLAIMS_FILE) -> str:
    seed_bytes, claims = load_claims(path)
    factor, results = evaluate(view, claims, seed_bytes)
    model_bytes = float(view.metadata.get("model", {}).get("bytes") or 0)
    if factor == 1.0:
        note = labels("claims_direct").format(model=format_bytes(model_bytes),
                                              target=format_bytes(seed_bytes))
        size_header = labels("at_seed_size_measured")
    else:
        note = labels("scaling_note").format(factor=number(factor, ".1f"), target=format_bytes(seed_bytes),
                                             model=format_bytes(model_bytes))
        size_header = labels("scaled")
    cache = labels("cold_cache_note" if cold_cache(view) else "warm_cache_note")
    lines = [note, "", labels("interval_note"), "", cache, "",
             f"| {labels('claim')} | {labels('measured')} | {size_header} | "
             f"{labels('verdict')} |", "|---|---|---|---|"]
    for result in results:
        claim = result.claim
        unit = claim["unit"]
        seed = labels("quoted").format(text=claim.get(f"seed_{labels.lang}")
                                       or claim["seed_en"])
        seed += f" <br>*{expectation_text(claim)}*"
        seed += " <br>" + labels("measured_as").format(metrics=measured_as(claim, labels))
        if claim.get(f"note_{labels.lang}"):
            seed += f" <br>{claim[f'note_{labels.lang}']}"

        def prefix(e: Evaluation) -> str:
            return "" if e.builder == "-" else f"{labels(e.builder)}: "

        def interval(e: Evaluation, unit: str = unit) -> str:
            text = format_quantity(unit, e.value)
            if e.low != e.high:
                text += (f" [{format_quantity(unit, e.low)} – "
                         f"{format_quantity(unit, e.high)}]")
            text += f", n={e.pairs}"
            if len(e.per_round) >= 2:  # every paired round's own value, as the rule saw it
                text += "<br>" + labels("per_round") + ": " + ", ".join(
                    f"{r}: {format_quantity(unit, v)}" for r, v in e.per_round)
            return text

        missing = labels("not_measured")
        if claim.get("needs"):
            missing += " (" + labels("claim_needs").format(flags=f"`{claim['needs']}`") + ")"
        measured = "<br>".join(f"{prefix(e)}{format_quantity(unit, e.measured)} ({e.detail})"
                               for e in result.evaluations) or missing
        scaled = "<br>".join(f"{prefix(e)}{interval(e)}" for e in result.evaluations) or "–"
        verdict = f"**{labels(result.verdict)}**"
        if len(result.evaluations) > 1 or any(e.reason for e in result.evaluations):
            verdict += "".join(
                f"<br>{prefix(e)}{labels(e.verdict)}"
                + (f" ({labels(e.reason)})" if e.reason else "")
                for e in result.evaluations)
        lines.append(f"| {seed} | {measured} | {scaled} | {verdict} |")
    return "\n".join(lines) + "\n"
