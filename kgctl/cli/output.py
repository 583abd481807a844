"""How commands talk: results on stdout (text or `--json`), progress and errors on stderr."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from kgctl.core.errors import KgctlError
from kgctl.core.progress import OnProgress

if TYPE_CHECKING:
    from rich.console import Console

    from kgctl.core.settings import Settings
    from kgctl.graph.connection import Connection

Result = dict[str, Any]


@functools.cache
def stderr() -> Console:
    """The rich console on stderr, imported when first needed: `--help` never loads rich."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


DEVICE = click.Choice(["auto", "cpu", "cuda"])


def json_command(
    render: Callable[[Result], None],
) -> Callable[[Callable[..., Result]], Callable[..., None]]:
    """Give a command `--json`, print its returned dict as JSON or through `render`, and turn a
    KgctlError into one clear line on stderr (plus a JSON error object with --json) and its exit code."""

    def decorate(func: Callable[..., Result]) -> Callable[..., None]:
        @click.option(
            "--json",
            "as_json",
            is_flag=True,
            help="Print a machine-readable JSON result on stdout.",
        )
        @functools.wraps(func)
        def wrapper(*args: Any, as_json: bool, **kwargs: Any) -> None:
            try:
                result = func(*args, **kwargs)
            except KgctlError as exc:
                report_error(exc, as_json)
                sys.exit(exc.exit_code)
            except OSError as exc:
                if exc.errno is None or from_neo4j(exc):
                    raise
                where = f"{exc.filename}: " if exc.filename else ""  # e.g. the disk is full
                report_error(KgctlError(f"{where}{exc.strerror or exc}"), as_json)
                sys.exit(1)
            except Exception as exc:
                if not from_neo4j(exc):
                    raise
                report_error(KgctlError(f"Neo4j: {exc}"), as_json)  # e.g. the server went away
                sys.exit(1)
            if as_json:
                click.echo(json.dumps({"ok": True, **result}, indent=2, default=str))
            else:
                render(result)

        return wrapper

    return decorate


def from_neo4j(exc: BaseException) -> bool:
    """A driver or server error (checked without importing the driver where none was used)."""
    if "neo4j" not in sys.modules:
        return False
    from neo4j.exceptions import DriverError, Neo4jError

    return isinstance(exc, DriverError | Neo4jError)


def report_error(exc: KgctlError, as_json: bool = False) -> None:
    from rich.markup import escape

    stderr().print(f"[bold red]error:[/] {escape(exc.message)}", markup=True, soft_wrap=True)
    if exc.detail:
        stderr().print(exc.detail, markup=False, soft_wrap=True, style="dim")
    if as_json:
        click.echo(json.dumps(exc.to_dict(), indent=2, default=str))


@contextmanager
def progress_bar(unit: str = "steps") -> Iterator[OnProgress]:
    """A progress bar on stderr, when it is a terminal, driven by a library progress callback;
    `unit` "bytes" shows sizes and speed, anything else counts steps."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns: list[ProgressColumn] = [TextColumn("{task.description}"), BarColumn()]
    if unit == "bytes":
        columns += [DownloadColumn(), TransferSpeedColumn()]
    else:
        columns.append(MofNCompleteColumn())
    columns.append(TimeRemainingColumn())
    console = stderr()
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("", total=None)

        def update(done: float, total: float | None, text: str) -> None:
            bar.update(task, completed=done, total=total, description=text)

        yield update


@contextmanager
def spinner(message: str) -> Iterator[Callable[[str], None]]:
    """A progress spinner on stderr for work of unknown length; yields a function to change its text."""
    with stderr().status(message) as status:
        yield lambda text: status.update(text)


def connect_with_spinner(settings: Settings) -> Connection:
    """Connect to the graph (starting the managed server when needed), with a spinner meanwhile."""
    from kgctl.graph.connection import connect

    with spinner("Connecting to Neo4j") as update:
        return connect(settings, on_wait=update)


@contextmanager
def connected() -> Iterator[tuple[Settings, Connection]]:
    """The settings and a connection to the graph, for a command's body."""
    from kgctl.core.settings import load_settings

    settings = load_settings()
    with connect_with_spinner(settings) as conn:
        yield settings, conn


def human_bytes(n: int) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    size, unit = float(n), 0
    while size >= 1024 and unit < len(units) - 1:
        size, unit = size / 1024, unit + 1
    return f"{n} B" if unit == 0 else f"{size:.1f} {units[unit]}"


def confirm_or_stop(yes: bool, question: str, refused: str, declined: str) -> None:
    """What a destructive command asks first: nothing with --yes; on a terminal, the question;
    without one, the `refused` error (no one can be asked)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise KgctlError(f"{refused} when no one can be asked")
    if not click.confirm(question, err=True):
        raise KgctlError(declined)
