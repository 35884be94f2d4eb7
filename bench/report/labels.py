"""Every word the report prints, in English and Spanish (the seminar report is in Spanish).

One table (bench/report/vocabulary.py), looked up by key; metric names come from the metric
catalogue (bench/results/metrics.py). A key missing in a language falls back to English,
and a key missing everywhere is shown as itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bench.report.vocabulary import TEXT
from bench.results.metrics import METRICS
from bench.results.node_conditions import COUNT_PART, NODE_PART

LANGUAGES = ("en", "es")


# Condition parts that carry a count: the pattern start_condition writes, and the key of the
# phrase with the count (and the worker mode, itself a label) put back in.
_COUNTED = ((re.compile(r"^(?P<n>\d+) replicas$"), "replicas_n"),
            (re.compile(r"^(?P<n>\d+) workers \((?P<mode>\w+)\)$"), "workers_n"),
            # bench.results.node_conditions: a --nodes start and one node of it
            (COUNT_PART, "fresh_nodes_n"), (NODE_PART, "node_n"))


class MissingLabel(KeyError):
    """A strict Labels was asked for a key without an entry in its language."""


@dataclass(frozen=True)
class Labels:
    lang: str = "en"
    # strict: a key with no entry in this language raises MissingLabel instead of falling
    # back to English (the tests render every report strictly in Spanish).
    strict: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        if self.lang not in LANGUAGES:
            raise ValueError(f"unknown language {self.lang!r}")

    def __call__(self, key: str) -> str:
        metric = METRICS.get(key)
        if metric is not None:  # metric labels live in the catalogue
            return metric.es if self.lang == "es" else metric.en
        entry = TEXT.get(key)
        if entry is None or (self.strict and self.lang not in entry):
            if self.strict:
                raise MissingLabel(f"no {self.lang} label for {key!r}")
            return key
        return entry.get(self.lang) or entry["en"]

    def condition(self, text: str) -> str:
        """A start's condition ("cold cache volume, 2 replicas"), each part translated."""
        return ", ".join(self._condition_part(part) for part in text.split(", "))

    def _condition_part(self, part: str) -> str:
        for pattern, key in _COUNTED:
            match = pattern.match(part)
            if match:
                found = match.groupdict()
                if "mode" in found:
                    found["mode"] = self(found["mode"])
                if key == "fresh_nodes_n" and found["n"] == "1":
                    key = "one_fresh_node"
                return self(key).format(**found)
        return self(part)
