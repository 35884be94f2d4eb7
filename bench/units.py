"""Parse and print byte sizes and durations. Decimal units (MB = 10**6) as the seed uses them:
its "5.45 GB" is 5,451,894,798 bytes. Binary units (MiB) are accepted too."""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterator

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


def format_quantity(unit: str, value: float) -> str:
    """The one humanised form of a value of a unit (tables, terminal, claims, labels)."""
    if unit == "bytes":
        return format_bytes(value)
    if unit == "s":
        return format_seconds(value)
    if unit == "ms":
        return f"{number(value, '.1f')} ms"
    if unit == "ratio":
        return f"{number(value, ',.3g' if abs(value) < 1000 else ',.0f')}×"
    if unit == "fraction":
        return f"{number(value * 100, '.1f')} %"
    if unit == "count":
        return number(value, ",.0f")
    return f"{number(value, ',.1f')} {unit}"


def format_compact(unit: str, value: float, digits: str) -> str:
    """A short form for chart ticks and bar labels: `digits` is a format spec ("g", ".3g")."""
    if unit == "bytes":
        for name, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
            if abs(value) >= scale:
                return f"{number(value / scale, digits)} {name}"
        return f"{number(value, digits)} B"
    if unit == "s":
        if abs(value) >= 1 or value == 0:
            return f"{number(value, digits)} s"
        return f"{number(value * 1000, digits)} ms"
    text = number(value, digits)
    return text if unit in ("ratio", "count", "") else f"{text} {unit}"


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
