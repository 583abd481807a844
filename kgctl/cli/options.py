"""Click options from the library's `Option`s (adapter options, model config fields, evaluate
and predict options), and the check that refuses options that do not apply."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import click

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option

F = TypeVar("F", bound=Callable[..., Any])


def click_option(opt: Option, *, with_default: bool = True) -> Callable[[F], F]:
    """One click option; `with_default` False leaves every default out (None means not given)."""
    kwargs: dict[str, Any] = {"help": opt.help, "multiple": opt.multiple}
    if opt.is_flag:
        kwargs["is_flag"] = True
    else:
        kwargs["type"] = click.Choice(opt.choices) if opt.choices else opt.type
        if opt.type is bool and not opt.multiple:
            return click.option(f"--{opt.name}/--no-{opt.name}", opt.key, default=None, help=opt.help)
        if with_default and opt.default is not None:
            kwargs |= {"default": opt.default, "show_default": True}
        elif opt.default not in (None, ""):
            kwargs["help"] = f"{opt.help} [default: {opt.default}]"
    return click.option(f"--{opt.name}", opt.key, **kwargs)


def add_options(command: F, options: Iterable[Option], *, with_default: bool = True) -> F:
    for opt in reversed(list(options)):
        command = click_option(opt, with_default=with_default)(command)
    return command


def union(groups: Iterable[Sequence[Option]]) -> list[Option]:
    """Options of several models, each once (the first declaration of a name wins)."""
    seen: dict[str, Option] = {}
    for group in groups:
        for opt in group:
            seen.setdefault(opt.name, opt)
    return list(seen.values())


def given(names: Iterable[str]) -> list[str]:
    """Which of these parameters the user set on the command line (or in the environment)."""
    ctx = click.get_current_context()
    sources = (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)
    return [n for n in names if ctx.get_parameter_source(n) in sources]


def refuse(names: Iterable[str], why: str) -> None:
    """A clear error when any of these options was given: they do not apply here."""
    shown = [f"--{n.replace('_', '-')}" for n in given(names)]
    if shown:
        raise KgctlError(f"{', '.join(shown)} {'does' if len(shown) == 1 else 'do'} not apply: {why}")
