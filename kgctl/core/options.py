"""Options that generate the command line: an ingest adapter's source options and a model's
config fields both become `Option`s, which the CLI turns into click options in one place."""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass
from typing import Any

from kgctl.core.errors import KgctlError


@dataclass(frozen=True)
class Option:
    """One command-line option `--name`, passed to the library as `key`. `type` is a plain Python
    type (str, int, float, bool); `choices` limits a string's values."""

    name: str
    help: str
    type: Any = str
    default: Any = None
    multiple: bool = False
    is_flag: bool = False
    choices: tuple[str, ...] | None = None

    @property
    def key(self) -> str:
        return self.name.replace("-", "_")


def comma_list(text: str, option: str, cast: type, what: str) -> tuple[Any, ...]:
    """The values of a comma-separated option (`--seeds 1,2,3`), each cast; a bad one is an
    error naming the option."""
    try:
        return tuple(cast(v.strip()) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise KgctlError(f"--{option}: {text!r} is not a comma-separated list of {what}") from None


def setting(default: Any, help: str, choices: tuple[str, ...] | None = None) -> Any:
    """A config dataclass field with its help text (and allowed values), for the CLI and docs."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices})


@functools.cache
def field_types(config_class: type) -> dict[str, tuple[type, bool]]:
    """{field: (plain type, optional)} of a config dataclass whose fields are str, int, float,
    bool or `X | None`."""
    hints = typing.get_type_hints(config_class)
    out: dict[str, tuple[type, bool]] = {}
    for f in dataclasses.fields(config_class):
        hint = hints[f.name]
        args = typing.get_args(hint)
        optional = isinstance(hint, types.UnionType) and type(None) in args
        plain = next(a for a in args if a is not type(None)) if optional else hint
        if plain not in (str, int, float, bool):
            raise TypeError(f"{config_class.__name__}.{f.name}: {hint} is not str, int, float, bool")
        out[f.name] = (plain, optional)
    return out


def config_options(config_class: type) -> tuple[Option, ...]:
    """One option per config field (`pca_dim` → `--pca-dim`), with no default: an option not
    given leaves the config file's value or the field's default in place."""
    options = []
    for f in dataclasses.fields(config_class):
        plain, _ = field_types(config_class)[f.name]
        shown = f" [default: {f.default}]" if f.default not in (None, "") else ""
        options.append(
            Option(
                f.name.replace("_", "-"),
                f.metadata.get("help", "") + shown,
                plain,
                choices=f.metadata.get("choices"),
            )
        )
    return tuple(options)


def check_value(config_class: type, key: str, value: Any, where: str) -> Any:
    """`value` for field `key`, type-checked (an int where a float is wanted is fine); a wrong
    type or an unknown key is a KgctlError naming `where` and the key."""
    types_ = field_types(config_class)
    if key not in types_:
        raise KgctlError(f"{where}: unknown key {key!r} (known: {', '.join(types_)})")
    plain, optional = types_[key]
    if value is None and optional:
        return None
    if plain is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, plain) or (plain is int and isinstance(value, bool)):
        raise KgctlError(f"{where}: {key} must be {plain.__name__}, not {value!r}")
    choices = {f.name: f.metadata.get("choices") for f in dataclasses.fields(config_class)}[key]
    if choices and value not in choices:
        raise KgctlError(f"{where}: {key} must be one of {', '.join(choices)}, not {value!r}")
    return value
