"""Parse and print byte sizes and durations. Decimal units (MB = 10**6) as the seed uses them:
its "5.45 GB" is 5,451,894,798 bytes. Binary units (MiB) are accepted too."""

from __future__ import annotations

import re

from bench.errors import UsageError

_UNITS = {
    "": 1, "B": 1,
    "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
    "K": 10**3, "M": 10**6, "G": 10**9,
    "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str) -> int:
    """'64MB' -> 64_000_000; raises UsageError naming the accepted forms."""
    match = _SIZE.match(text)
    unit = match.group(2).upper() if match else None
    if match is None or unit not in _UNITS:
        raise UsageError(
            f"malformed size {text!r}: use a number and a unit such as 64MB, 1.5GB or 512MiB"
        )
    return int(float(match.group(1)) * _UNITS[unit])


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """'60s' -> 60.0, '2m' -> 120.0, '90' -> 90.0 (seconds)."""
    match = _DURATION.match(text.lower())
    if match is None:
        raise UsageError(f"malformed duration {text!r}: use a number and a unit such as 60s, "
                         "2m or 500ms")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def format_quantity(unit: str, value: float) -> str:
    """The one humanised form of a value of a unit (tables, terminal, claims, labels)."""
    if unit == "bytes":
        return format_bytes(value)
    if unit == "s":
        return format_seconds(value)
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "ratio":
        return f"{value:.3g}×"
    if unit == "fraction":
        return f"{value * 100:.1f} %"
    if unit == "count":
        return f"{value:.0f}"
    return f"{value:.1f} {unit}"


def format_compact(unit: str, value: float, digits: str) -> str:
    """A short form for chart ticks and bar labels: `digits` is a format spec ("g", ".3g")."""
    if unit == "bytes":
        for name, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
            if abs(value) >= scale:
                return f"{value / scale:{digits}} {name}"
        return f"{value:{digits}} B"
    if unit == "s":
        if abs(value) >= 1 or value == 0:
            return f"{value:{digits}} s"
        return f"{value * 1000:{digits}} ms"
    return f"{value:{digits}}" if unit in ("ratio", "count", "") else f"{value:{digits}} {unit}"


def format_bytes(count: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(count) >= scale:
            return f"{count / scale:.2f} {unit}"
    return f"{count:.0f} B"


def format_seconds(seconds: float) -> str:
    if abs(seconds) >= 60:
        return f"{int(seconds // 60)}m{seconds % 60:04.1f}s"
    if abs(seconds) >= 1:
        return f"{seconds:.2f} s"
    return f"{seconds * 1000:.1f} ms"
