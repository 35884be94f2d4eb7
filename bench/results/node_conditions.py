"""How a --nodes start names its conditions, declared once for the recorder that writes them
and the report that reads them: "N fresh nodes" for the start as a whole (all_ready_s, the
bytes to all nodes) and "N fresh nodes, node k" for node k's own container."""

from __future__ import annotations

import re

_NODE = re.compile(r"^(?P<base>.*), node (?P<index>\d+)$")
# The parts of such a condition (its parts are joined by ", "), for the report's labels.
COUNT_PART = re.compile(r"^(?P<n>\d+) fresh nodes?$")
NODE_PART = re.compile(r"^node (?P<n>\d+)$")


def nodes_part(count: int) -> str:
    """The part of a condition that says how many fresh nodes started at once."""
    return f"{count} fresh node" + ("" if count == 1 else "s")


def node_condition(condition: str, index: int) -> str:
    """The condition of node `index`'s container in a start of `condition`."""
    return f"{condition}, node {index}"


def split_node(condition: str) -> tuple[str, int | None]:
    """(the start's condition, the node's index), or (condition, None) for a whole start."""
    match = _NODE.match(condition)
    return (condition, None) if match is None else (match["base"], int(match["index"]))


def node_count(condition: str) -> int | None:
    """How many nodes a --nodes start's condition names (None: not a --nodes start)."""
    for part in split_node(condition)[0].split(", "):
        match = COUNT_PART.match(part)
        if match is not None:
            return int(match["n"])
    return None


def without_count(condition: str) -> str:
    """The strategy's own condition of a --nodes start (prefetch, a cold cache), or "-"."""
    parts = [p for p in split_node(condition)[0].split(", ") if not COUNT_PART.match(p)]
    return ", ".join(parts) or "-"
