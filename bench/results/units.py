"""Parse and print byte sizes and durations. Decimal units (MB = 10**6) as the seed uses them:
its "5.45 GB" is 5,451,894,798 bytes. Binary units (MiB) are accepted too."""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bench.errors import UsageError

# How numbers are written: "en" 12,345.6; "es" 12 345,6 (a decimal comma, a thin space between
# thousands from five digits on, as the RAE and the SI write them). Set for a whole rendering
# with number_style(); every formatter below writes its digits through number().
NUMBER_STYLES = ("en", "es")
_STYLE: contextvars.ContextVar[str] = contextvars.ContextVar("number_style", default="en")
THIN_SPACE = "\u2009"


@contextlib.contextmanager
def number_style(lang: str) -> Iterator[None]:
    """Numbers formatted inside the block are written the way `lang` writes them."""
    if lang not in NUMBER_STYLES:
        raise ValueError(f"unknown number style {lang!r}")
    token = _STYLE.set(lang)
    try:
        yield
    finally:
        _STYLE.reset(token)


def number(value: float, spec: str = "") -> str:
    """`format(value, spec)` in the current style; a "," in spec groups thousands."""
    text = format(value, spec)
    if _STYLE.get() == "en":
        return text
    # Spanish: every digit run left of the decimal point of five digits or more is grouped by
    # thin spaces (a four-digit 2026 stays whole), then the decimal point becomes a comma.
    plain = text.replace(",", "")
    return re.sub(r"\d+(?:\.\d+)?", _spanish_digits, plain)


def _spanish_digits(match: re.Match[str]) -> str:
    whole, _, fraction = match.group(0).partition(".")
    if len(whole) >= 5:
        head = len(whole) % 3 or 3
        whole = THIN_SPACE.join([whole[:head]] + [whole[i:i + 3]
                                                  for i in range(head, len(whole), 3)])
    return whole + ("," + fraction if fraction else "")

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


@dataclass(frozen=True)
class Unit:
    """One unit of measure, declared once: how its values are written in tables and prose,
    on chart ticks, what a chart axis of it is called, and the absolute difference that is
    noise whatever the ratio (a 70 ms build that takes 85 ms; `compare` and the report's
    ties use it)."""

    name: str
    format: Callable[[float], str]
    compact: Callable[[float, str], str]  # (value, format spec such as "g" or ".3g")
    noise_floor: float
    axis: str | None = None  # the Labels key of a chart axis of it (None: the unit's name)


def _suffixed(suffix: str, spec: str = ",.1f") -> Callable[[float], str]:
    return lambda value: f"{number(value, spec)} {suffix}" if suffix else number(value, spec)


def _compact_suffixed(suffix: str) -> Callable[[float, str], str]:
    return lambda value, digits: (f"{number(value, digits)} {suffix}" if suffix
                                  else number(value, digits))


def _compact_bytes(value: float, digits: str) -> str:
    for name, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(value) >= scale:
            return f"{number(value / scale, digits)} {name}"
    return f"{number(value, digits)} B"


def _compact_seconds(value: float, digits: str) -> str:
    if abs(value) >= 1 or value == 0:
        return f"{number(value, digits)} s"
    return f"{number(value * 1000, digits)} ms"


def _ratio(value: float) -> str:
    return f"{number(value, ',.3g' if abs(value) < 1000 else ',.0f')}×"


UNITS: dict[str, Unit] = {unit.name: unit for unit in (
    Unit("s", lambda v: format_seconds(v), _compact_seconds, 0.05, axis="axis_s"),
    Unit("ms", _suffixed("ms", ".1f"), _compact_suffixed("ms"), 2.0, axis="axis_ms"),
    Unit("bytes", lambda v: format_bytes(v), _compact_bytes, 1e6, axis="axis_bytes"),
    Unit("ratio", _ratio, _compact_suffixed(""), 0.01, axis="axis_ratio"),
    Unit("fraction", lambda v: f"{number(v * 100, '.1f')} %",
         lambda v, digits: f"{number(v * 100, digits)} %", 0.005),
    Unit("count", _suffixed("", ",.0f"), _compact_suffixed(""), 1.0),
    Unit("MB/s", _suffixed("MB/s"), _compact_suffixed("MB/s"), 5.0),
    Unit("req/s", _suffixed("req/s"), _compact_suffixed("req/s"), 1.0),
)}


def unit_of(name: str) -> Unit:
    """The declared unit (a metric of an undeclared unit is refused by bench.results.metrics)."""
    try:
        return UNITS[name]
    except KeyError:
        raise ValueError(f"unknown unit {name!r}: declare it in bench/results/units.py UNITS") from None


def format_quantity(unit: str, value: float) -> str:
    """The one humanised form of a value of a unit (tables, terminal, claims, labels)."""
    return unit_of(unit).format(value)


def format_compact(unit: str, value: float, digits: str) -> str:
    """A short form for chart ticks and bar labels: `digits` is a format spec ("g", ".3g")."""
    return unit_of(unit).compact(value, digits)


def format_bytes(count: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(count) >= scale:
            return f"{number(count / scale, '.2f')} {unit}"
    return f"{number(count, '.0f')} B"


def format_seconds(seconds: float) -> str:
    if abs(seconds) >= 60:
        return f"{int(seconds // 60)}m{number(seconds % 60, '04.1f')}s"
    if abs(seconds) >= 1:
        return f"{number(seconds, '.2f')} s"
    return f"{number(seconds * 1000, '.1f')} ms"
