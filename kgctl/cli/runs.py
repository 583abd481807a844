"""`kgctl runs list|show|delete`: the runs of every model."""

from __future__ import annotations

import json
from pathlib import Path

import click

from kgctl.cli.output import Result, confirm_or_stop, connected, json_command
from kgctl.core.settings import load_settings


@click.group("runs")
def runs_group() -> None:
    """List, show and delete model runs."""


def _render_list(r: Result) -> None:
    if not r["runs"]:
        click.echo("No runs yet (kgctl train <model>; kgctl models lists them).")
    for run in r["runs"]:
        done = run.get("written") or {}
        written = " write-back interrupted" if done.get("status") == "writing" else (" written back" if done else "")
        click.echo(f"{run['id']}  {run['model']}  {run['status']}{written}  {run['created_at']}")


@runs_group.command("list")
@json_command(_render_list)
def runs_list() -> Result:
    """List runs, newest first."""
    from kgctl.models.runs import list_runs

    runs = list_runs(load_settings().paths.data_dir)
    return {"runs": [{k: r.record.get(k) for k in ("id", "model", "status", "created_at", "written")} for r in runs]}


def _render_show(r: Result) -> None:
    if "report" in r:
        click.echo(f"Report: {r['report']} ({len(r['pngs'])} plots; sections {', '.join(r['sections'])})")
    else:
        click.echo(json.dumps(r, indent=1, default=str))


@runs_group.command("show")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write a self-contained HTML report (curves, plots, metrics) into this folder.",
)
@json_command(_render_show)
def runs_show(run_id: str, report_dir: Path | None) -> Result:
    """Show a run's record: config, data, metrics, what it wrote (or write its report)."""
    from kgctl.models.runs import load_run

    run = load_run(load_settings().paths.data_dir, run_id)
    if report_dir is not None:
        from kgctl.models.report import write_report

        return {"run_id": run.id, **write_report(run, report_dir)}
    return {**run.record, "dir": str(run.dir)}


def _render_delete(r: Result) -> None:
    click.echo(
        f"Deleted run {r['run_id']} ({r['model']}): {r.get('relationships', 0):,} relationships, "
        f"{r.get('embeddings', 0):,} embeddings, {r.get('model_run_nodes', 0)} ModelRun node"
        + (f"; removed {r['files']}" if r["files"] else "")
    )


@runs_group.command("delete")
@click.argument("run_id", metavar="RUN")
@click.option("--keep-files", is_flag=True, help="Keep the run folder; remove only what it wrote to the graph.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_command(_render_delete)
def runs_delete(run_id: str, keep_files: bool, yes: bool) -> Result:
    """Remove exactly what a run wrote: its relationships, its embeddings, its ModelRun.

    Asks first (on a terminal); without a terminal, --yes is required.
    """
    from kgctl.models.runs import delete, load_run

    run = load_run(load_settings().paths.data_dir, run_id)  # a clear error before connecting
    what = "what it wrote to the graph" + ("" if keep_files else f" and {run.dir}")
    confirm_or_stop(
        yes,
        f"Delete run {run_id} ({run.model}): {what}?",
        f"runs delete {run_id}: deleting needs --yes",
        "nothing deleted",
    )
    with connected() as (settings, conn):
        return delete(conn, settings.paths.data_dir, run_id, keep_files)
