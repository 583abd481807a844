"""`kgctl train <model>`: one command per registered model, its options generated from the
model's config fields; the platform's own options (--config, --device, --nproc, --stop-after,
--resume) on every one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from kgctl.cli.options import add_options, refuse
from kgctl.cli.output import DEVICE, Result, connected, json_command, progress_bar
from kgctl.core.options import config_options
from kgctl.models.base import Model


def _render(r: Result) -> None:
    t = r["metrics"]["training"]
    procs = f" × {t['nproc']} processes" if t["nproc"] > 1 else ""
    click.echo(
        f"Run {r['id']} ({r['model']}): {r['status']}, {t['epochs_done']} epochs on "
        f"{t['device']}{procs} in {t['seconds']:.1f} s ({t['seconds_per_epoch']} s/epoch)"
    )
    figures = ", ".join(f"{k} {v:.4g}" for k, v in t["final"].items() if isinstance(v, int | float))
    click.echo(f"  loss {t['final_loss']:.4f}" + (f", {figures}" if figures else ""))
    facts = [
        f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
        for k, v in r["data"].items()
        if isinstance(v, int | str) and not k.endswith(("sha256", "fingerprint"))
    ]
    click.echo(f"  data: {'; '.join(facts)}")
    chosen = r.get("selection") or {}
    if chosen.get("epoch"):
        settings = ", ".join(f"{k}={v}" for k, v in chosen["settings"].items())
        tried = len(chosen["candidates"] or [None])
        click.echo(
            f"  selected on validation: epoch {chosen['epoch']} ({chosen['metric']} "
            f"{chosen['value']:.4f})" + (f", {settings} of {tried} candidates" if settings else "")
        )
    for warning in t.get("warnings", []):
        click.secho(f"  warning: {warning}", fg="yellow", err=True)
    if r["status"] == "trained":
        click.echo(f"  next: kgctl evaluate {r['id']}   kgctl predict {r['id']} --write-back")
        if r["config"].get("split", "none") != "none":
            click.echo(f"  final model on all pairs: kgctl train {r['model']} --from-run {r['id']} --split none")
    else:
        click.echo(f"  continue: kgctl train {r['model']} --resume {r['id']}")


def train_command(cls: type[Model]) -> click.Command:
    fields = config_options(cls.config_class)

    def run(
        config_file: Path | None,
        device: str,
        nproc: int,
        resume_id: str | None,
        from_run: str | None,
        stop_after: int | None,
        **overrides: Any,
    ) -> Result:
        from kgctl.models import runs

        with connected() as (settings, conn), progress_bar() as on_progress:
            data_dir = settings.paths.data_dir
            if resume_id:
                refuse(
                    ["config_file", "from_run", *(f.key for f in fields)],
                    f"--resume continues run {resume_id} with its own config",
                )
                run = runs.resume(
                    conn,
                    data_dir,
                    resume_id,
                    device=device,
                    nproc=nproc,
                    stop_after=stop_after,
                    on_progress=on_progress,
                )
            else:
                if from_run:
                    refuse(["config_file"], f"--from-run takes its settings from run {from_run}")
                    config = runs.settings_from(data_dir, from_run, cls.name).replace(**overrides)
                else:
                    config = cls.config_class.load(config_file, cls.name, **overrides)
                run = runs.train(
                    conn,
                    data_dir,
                    cls.name,
                    config,
                    device=device,
                    nproc=nproc,
                    stop_after=stop_after,
                    on_progress=on_progress,
                )
        return {**run.record, "dir": str(run.dir)}

    command = add_options(json_command(_render)(run), fields, with_default=False)
    common = [
        click.option(
            "--config",
            "config_file",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help=f"TOML file with {cls.name} settings (top level or a [{cls.name}] table); "
            "options given here override it.",
        ),
        click.option("--device", type=DEVICE, default="auto", show_default=True),
        click.option(
            "--nproc",
            type=click.IntRange(1),
            default=1,
            show_default=True,
            help="DistributedDataParallel processes (gloo on CPU, NCCL on GPUs).",
        ),
        click.option(
            "--resume",
            "resume_id",
            metavar="RUN",
            help="Continue an interrupted run from its checkpoint, with its own config.",
        ),
        click.option(
            "--from-run",
            metavar="RUN",
            help="Start from what RUN chose on validation (its settings and best epoch, "
            "no search): with --split none, the final model on all pairs.",
        ),
        click.option("--stop-after", type=click.IntRange(1), help="Stop after this many epochs in all (resume later)."),
    ]
    for decorator in reversed(common):
        command = decorator(command)
    doc = (
        f"Train {cls.name}: {cls.description}\n\nReads the {cls.view} view; writes "
        f"{', '.join(v for v in cls.writes.describe(cls.name).values() if v)} on "
        "`kgctl predict RUN --write-back`. Every config field is an option; a run is recorded "
        "as a folder and a ModelRun node."
    )
    return click.command(cls.name, help=doc, short_help=cls.description)(command)


@click.group("train")
def train_group() -> None:
    """Train a registered model on a view exported from the graph (`kgctl models` lists them)."""


def train_commands() -> click.Group:
    """`kgctl train <model>` for every registered model."""
    from kgctl.models.registry import available

    for cls in available().values():
        train_group.add_command(train_command(cls))
    return train_group
