"""The `kgctl` command line: a group whose commands load when used (`kgctl/cli/lazy.py`)."""

from __future__ import annotations

import click

from kgctl import __version__
from kgctl.cli.lazy import LazyGroup


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kgctl")
def cli() -> None:
    """kgctl: public biology in one Neo4j context graph, models trained on it, predictions back in it.

    With no NEO4J_URI set (environment or kgctl.toml), every command uses the managed local
    Neo4j server, starting it when needed.
    """


def main() -> None:
    cli(prog_name="kgctl")
