"""A click group whose commands are imported when they are used (click's lazy-loading pattern):
`kgctl --help`, `kgctl query` and `kgctl db …` answer without importing torch, PyTorch
Geometric, RDKit or anndata, which only the commands that compute need."""

from __future__ import annotations

import importlib
from typing import Any

import click

# name → ("module:attribute", short help). The attribute is a command, or a function that builds
# one (the generated train, evaluate and predict commands read the model registry). A test checks
# every short help against the command's own.
LAZY: dict[str, tuple[str, str]] = {
    "db": ("kgctl.cli.db:db", "Install, start, stop and inspect the Neo4j server; apply the schema."),
    "demo": ("kgctl.cli.db:demo", "The whole loop on generated data: ingest, train CAL, evaluate, write back, query."),
    "ingest": ("kgctl.cli.ingest:register_ingest_commands", "Load a source's files into the graph."),
    "download": (
        "kgctl.cli.download:download",
        "Download a public release (STRING, DepMap, Perturb-seq, Repurposing Hub, GENCODE).",
    ),
    "build": (
        "kgctl.cli.build:build_group",
        "Derive edges from what is in the graph (a build replaces the earlier one of its kind).",
    ),
    "export": ("kgctl.cli.export:export", "Export a view for the models."),
    "train": (
        "kgctl.cli.train:train_commands",
        "Train a registered model on a view exported from the graph (`kgctl models` lists them).",
    ),
    "evaluate": (
        "kgctl.cli.dispatched:evaluate_command",
        "Evaluate a trained run with a registered evaluator: held-out figures beside baselines.",
    ),
    "predict": (
        "kgctl.cli.dispatched:predict_command",
        "Score with a trained run and keep the predictions in the run folder.",
    ),
    "runs": ("kgctl.cli.runs:runs_group", "List, show and delete model runs."),
    "query": (
        "kgctl.cli.query:query",
        "Run a named query from queries/ (without NAME: list them with their parameters).",
    ),
    "browser": (
        "kgctl.cli.browser:browser",
        "Print the Neo4j Browser URL with the connection details, and serve kgctl's guide.",
    ),
    "models": (
        "kgctl.cli.models:models",
        "List the registered models, evaluators, baselines, probe label sets and retrieval tasks.",
    ),
}


def load(name: str) -> click.Command:
    """Import and build the command `name` of LAZY."""
    module, attribute = LAZY[name][0].split(":")
    found: Any = getattr(importlib.import_module(module), attribute)
    command = found if isinstance(found, click.Command) else found()
    assert isinstance(command, click.Command)
    return command


def first_line(command: click.Command) -> str:
    """What LAZY keeps of a command's help: its short help or its help's first line."""
    return command.short_help or (command.help or "").strip().splitlines()[0]


def _shorten(text: str, limit: int) -> str:
    """As click shortens a short help: whole words, an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 3, 0)].rsplit(" ", 1)[0].rstrip(",:;") + "..."


class LazyGroup(click.Group):
    """Lists the LAZY commands beside its own and imports one only when it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY and name not in self.commands:
            self.add_command(load(name), name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from LAZY's short help, so `--help` imports nothing."""
        limit = formatter.width - 6 - max(map(len, self.list_commands(ctx)))
        rows = [
            (
                name,
                _shorten(LAZY[name][1], limit)
                if name in LAZY and name not in self.commands
                else self.commands[name].get_short_help_str(limit),
            )
            for name in self.list_commands(ctx)
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)
