"""The seed document's claims, checked against a stored run.

The claims live as data in ``seed_claims.toml``. A claim compares one or two measured
quantities; when the run's model is smaller than the seed's 5.45 GB, each quantity's
model-caused part (its difference to a model-free reference) is scaled linearly to the seed's
size and the rest is kept, so a fixed cost (Python start-up, a 50 KB context) is never inflated.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report.labels import Labels
from bench.report.view import RunView
from bench.summary import format_value
from bench.units import format_bytes, format_seconds

CLAIMS_FILE = Path(__file__).with_name("seed_claims.toml")
KINDS = ("value", "ratio", "reduction", "difference")
EXPECTS = ("at_least", "at_most", "within")


@dataclass(frozen=True)
class Evaluation:
    builder: str
    measured: float
    scaled: float
    holds: bool
    detail: str  # the measured quantities, humanised


@dataclass(frozen=True)
class ClaimResult:
    claim: dict[str, Any]
    evaluations: list[Evaluation]  # empty: not measured in this run

    @property
    def verdict(self) -> str:
        if not self.evaluations:
            return "not_measured"
        outcomes = {e.holds for e in self.evaluations}
        if outcomes == {True}:
            return "holds"
        if outcomes == {False}:
            return "does_not_hold"
        return "depends_on_builder"


def load_claims(path: Path = CLAIMS_FILE) -> tuple[int, list[dict[str, Any]]]:
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    claims = document.get("claim", [])
    for claim in claims:
        if claim.get("kind") not in KINDS or claim.get("expect") not in EXPECTS:
            raise ValueError(f"claim {claim.get('id')!r} in {path}: kind must be one of {KINDS} "
                             f"and expect one of {EXPECTS}")
    return int(document["seed_model_bytes"]), claims


def _quantity(view: RunView, spec: dict[str, Any], builder: str, factor: float
              ) -> tuple[float, float] | None:
    """(measured, scaled) median of one quantity, or None when the run did not measure it."""
    use_builder = spec.get("builder", builder)
    summary = view.get(spec["strategy"], spec["metric"], use_builder)
    if summary is None:
        return None
    value = summary.median
    free_spec = spec.get("model_free")
    if free_spec is None:
        return value, value
    if free_spec.get("zero"):
        free = 0.0
    else:
        reference = view.get(free_spec.get("strategy", spec["strategy"]),
                             free_spec.get("metric", spec["metric"]), use_builder)
        if reference is None:
            return None
        free = min(reference.median, value)
    return value, value + (value - free) * (factor - 1)


def _derive(kind: str, a: float, b: float) -> float:
    if kind == "value":
        return a
    if kind == "difference":
        return b - a
    ratio = b / a if a else float("inf")
    return ratio if kind == "ratio" else 1 - ratio


def _holds(claim: dict[str, Any], value: float) -> bool:
    tolerance = float(claim.get("tolerance", 0.0))
    if claim["expect"] == "at_least":
        return value >= float(claim["value"]) * (1 - tolerance)
    if claim["expect"] == "at_most":
        return value <= float(claim["value"]) * (1 + tolerance)
    low, high = (float(x) for x in claim["range"])
    return low * (1 - tolerance) <= value <= high * (1 + tolerance)


def format_claim_value(unit: str, value: float) -> str:
    if unit == "fraction":
        return f"{value * 100:.1f} %"
    if unit == "ratio":
        return f"{value:.3g}×"
    if unit == "s":
        return format_seconds(value)
    if unit == "bytes":
        return format_bytes(value)
    return f"{value:.3g}"


def evaluate(view: RunView, claims: list[dict[str, Any]], seed_model_bytes: int
             ) -> tuple[float, list[ClaimResult]]:
    model_bytes = float(view.metadata.get("model", {}).get("bytes") or 0) or 1.0
    factor = max(1.0, seed_model_bytes / model_bytes)
    results = []
    for claim in claims:
        builders = (view.builders() or ["legacy"]) if claim.get("per_builder") else ["-"]
        evaluations = []
        for builder in builders:
            a = _quantity(view, claim["a"], builder, factor)
            b = _quantity(view, claim["b"], builder, factor) if "b" in claim else (0.0, 0.0)
            if a is None or b is None:
                continue
            measured = _derive(claim["kind"], a[0], b[0])
            scaled = _derive(claim["kind"], a[1], b[1])
            parts = [f"{claim['a']['strategy']} {format_value(claim['a']['metric'], a[0])}"]
            if "b" in claim:
                parts.append(f"{claim['b']['strategy']} "
                             f"{format_value(claim['b']['metric'], b[0])}")
            evaluations.append(Evaluation(builder, measured, scaled, _holds(claim, scaled),
                                          " → ".join(parts)))
        results.append(ClaimResult(claim, evaluations))
    return factor, results


def expectation_text(claim: dict[str, Any]) -> str:
    unit = claim["unit"]
    if claim["expect"] == "within":
        low, high = (float(x) for x in claim["range"])
        text = (format_claim_value(unit, low) if low == high else
                f"{format_claim_value(unit, low)}–{format_claim_value(unit, high)}")
    else:
        sign = "≥" if claim["expect"] == "at_least" else "≤"
        text = f"{sign} {format_claim_value(unit, float(claim['value']))}"
    if claim.get("tolerance"):
        text += f" (±{float(claim['tolerance']) * 100:.0f}%)"
    return text


def claims_markdown(view: RunView, labels: Labels, path: Path = CLAIMS_FILE) -> str:
    seed_bytes, claims = load_claims(path)
    factor, results = evaluate(view, claims, seed_bytes)
    model_bytes = float(view.metadata.get("model", {}).get("bytes") or 0)
    lines = [labels("scaling_note").format(factor=factor, target=format_bytes(seed_bytes),
                                           model=format_bytes(model_bytes)), "",
             f"| {labels('claim')} | {labels('measured')} | {labels('scaled')} | "
             f"{labels('verdict')} |", "|---|---|---|---|"]
    for result in results:
        claim = result.claim
        unit = claim["unit"]
        seed = claim.get(f"seed_{labels.lang}") or claim["seed_en"]
        seed += f" <br>*{expectation_text(claim)}*"
        if claim.get(f"note_{labels.lang}"):
            seed += f" <br>{claim[f'note_{labels.lang}']}"

        def prefix(e: Evaluation) -> str:
            return "" if e.builder == "-" else f"{labels(e.builder)}: "

        measured = "<br>".join(f"{prefix(e)}{format_claim_value(unit, e.measured)} ({e.detail})"
                               for e in result.evaluations) or labels("not_measured")
        scaled = "<br>".join(f"{prefix(e)}{format_claim_value(unit, e.scaled)}"
                             for e in result.evaluations) or "–"
        lines.append(f"| {seed} | {measured} | {scaled} | **{labels(result.verdict)}** |")
    return "\n".join(lines) + "\n"
