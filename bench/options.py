"""Options declared once: a command-line option is a dataclass field's metadata (its flag,
help, how its text is parsed and shown), and the parser is generated from the fields, as
nox's `_options.py` generates its parser from one list of options.

    trials: int = option(3, "--trials", "container starts per strategy (default {default})",
                         parse=positive_int)

`add_options` adds a dataclass's options to an argparse parser (recursing into a field whose
value is itself such a dataclass); `given_fields` reads back only what the user gave, so an
option left out keeps the dataclass's own default: the CLI, the API and the tests meet one
default. Validation stays in the dataclass (its __post_init__), the one place for it.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Option:
    flag: str
    help: str  # "{default}" is replaced by the default as the command line writes it
    parse: Callable[[str], Any] | None = None  # text -> value (None: the text itself)
    show: Callable[[Any], str] = str  # value -> how the default reads in --help
    metavar: str | None = None
    choices: tuple[str, ...] | None = None
    switch: bool = False  # a flag without a value: it sets the field to `not default`
    nargs: str | None = None  # "?" with `const`: a flag whose value may be left out
    const: str | None = None
    # How a given value sets fields (None: this field only): one flag may set two fields
    # (--strategies also records that strategies were named).
    fills: Callable[[Any], dict[str, Any]] | None = None
    # What the command line parses when the flag is left out, where it differs from the
    # field's default (--builder: auto on the command line, legacy through the API).
    cli_default: str | None = None


def option(default: Any = dataclasses.MISSING, flag: str = "", help: str = "", *,
           factory: Callable[[], Any] | None = None, **kwargs: Any) -> Any:
    """A dataclass field that is also a command-line option."""
    meta = {"option": Option(flag, help, **kwargs)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def comma_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _default(f: dataclasses.Field[Any]) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _own(cls: type) -> Iterator[tuple[dataclasses.Field[Any], Option]]:
    """The option fields `cls` itself declares."""
    for f in dataclasses.fields(cls):
        if "option" in f.metadata:
            yield f, f.metadata["option"]


def nested(cls: type) -> dict[str, type]:
    """Field name -> the option dataclass it holds (RunConfig.options: StrategyOptions)."""
    found = {}
    for f in dataclasses.fields(cls):
        if "option" not in f.metadata and f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
            if dataclasses.is_dataclass(value):
                found[f.name] = type(value)
    return found


def _fields_of(cls: type) -> Iterator[tuple[dataclasses.Field[Any], Option]]:
    """Its option fields and those of the option dataclasses it holds."""
    yield from _own(cls)
    for inner in nested(cls).values():
        yield from _fields_of(inner)


def add_options(parser: argparse.ArgumentParser, cls: type,
                only: tuple[str, ...] | None = None) -> None:
    """Add the options `cls` declares (only those fields, if given)."""
    for f, opt in _fields_of(cls):
        if only is not None and f.name not in only:
            continue
        default = _default(f)
        text = opt.help.replace("{default}", opt.show(default))
        if opt.switch:
            parser.add_argument(opt.flag, dest=f.name, help=text, default=argparse.SUPPRESS,
                                action="store_false" if default else "store_true")
            continue
        parse, choices, metavar = opt.parse, opt.choices, opt.metavar
        if parse is not None and choices is not None:  # argparse checks choices after `type`
            parse, choices = _one_of(choices, parse), None
            metavar = metavar or "{" + ",".join(opt.choices or ()) + "}"
        if metavar is None and choices is None:  # the flag's name, not the field's
            metavar = opt.flag.lstrip("-").upper().replace("-", "_")
        extra: dict[str, Any] = {} if parse is None else {"type": parse}
        if opt.nargs is not None:
            extra |= {"nargs": opt.nargs, "const": opt.const}
        given = argparse.SUPPRESS if opt.cli_default is None else opt.cli_default
        parser.add_argument(opt.flag, dest=f.name, help=text, default=given,
                            metavar=metavar, choices=choices, **extra)


def _one_of(choices: tuple[str, ...], parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def checked(text: str) -> Any:
        if text not in choices:
            raise argparse.ArgumentTypeError(
                f"invalid choice: {text!r} (choose from {', '.join(choices)})")
        return parse(text)
    return checked


def value_of(args: argparse.Namespace, cls: type, name: str) -> Any:
    """One option's value: as given, else the dataclass's default."""
    if hasattr(args, name):
        return getattr(args, name)
    return _default(next(f for f in dataclasses.fields(cls) if f.name == name))


def given_fields(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of `cls` the user set on the command line (nested dataclasses built from
    theirs); a field left out is absent, so the dataclass's default applies."""
    values: dict[str, Any] = {}
    for f, opt in _own(cls):
        if hasattr(args, f.name):
            value = getattr(args, f.name)
            values.update(opt.fills(value) if opt.fills else {f.name: value})
    for name, inner in nested(cls).items():
        values[name] = inner(**given_fields(args, inner))
    return values
