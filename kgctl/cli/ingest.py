"""`kgctl ingest <source> FILE…`: one subcommand per registered adapter, with its own options."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

import kgctl.ingest  # noqa: F401  (importing the package registers every adapter)
from kgctl.cli.options import add_options
from kgctl.cli.output import (
    Result,
    confirm_or_stop,
    connect_with_spinner,
    json_command,
    progress_bar,
)
from kgctl.core.settings import load_settings
from kgctl.ingest.base import ADAPTERS, Adapter
from kgctl.ingest.pipeline import DEFAULT_BATCH, DEFAULT_WRITERS, ingest


def _render(r: Result) -> None:
    if r.get("skipped"):
        click.echo(f"{r['adapter']}: nothing to do, {r['reason']} (run {r['run_id']}).")
        return
    click.echo(
        f"{r['adapter']}: {r['rows_loaded']:,} rows loaded, {r['rows_rejected']:,} rejected, "
        f"{r['rows_filtered']:,} filtered, {r['rows_duplicate']:,} duplicate, of {r['rows_read']:,} read "
        f"in {r['seconds']:.1f} s"
    )
    click.echo(
        f"  wrote {r['nodes_written']:,} nodes and {r['relationships_written']:,} relationships "
        f"(run {r['run_id']}, mode {r['mode']})"
    )
    if r.get("rejects_file"):
        for line in r.get("first_rejects", []):
            click.echo(f"  rejected {line}")
        click.echo(f"  all rejected rows: {r['rejects_file']}")


@click.group("ingest")
def ingest_group() -> None:
    """Load a source's files into the graph.

    Every node and relationship gets `source`, `source_version`, `run`, `licence` and
    `created_at`; an IngestRun node records the files' sha256 and the counts. Ingesting the same
    files again is a no-op, and an interrupted run resumes where it stopped. Bad rows go to a
    rejects file (or, with --strict, reject the whole run before anything is written).
    """


def _command(cls: type[Adapter]) -> click.Command:
    def run(
        files: tuple[Path, ...],
        strict: bool,
        force: bool,
        batch_size: int,
        writers: int,
        bulk: bool,
        rejects_dir: Path | None,
        licence: str | None,
        **options: Any,
    ) -> Result:
        settings = load_settings()
        rejects = rejects_dir or settings.paths.data_dir / "rejects"
        options["licence"] = licence
        if bulk:
            from kgctl.ingest.bulk import bulk_ingest

            return bulk_ingest(settings, cls.name, list(files), options, strict=strict, rejects_dir=rejects)
        with connect_with_spinner(settings) as conn, progress_bar("bytes") as on_progress:
            return ingest(
                conn,
                cls.name,
                list(files),
                options,
                strict=strict,
                force=force,
                batch_size=batch_size,
                writers=writers,
                rejects_dir=rejects,
                on_progress=on_progress,
            )

    command = add_options(json_command(_render)(run), cls.options)
    common = [
        click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path)),
        click.option("--strict", is_flag=True, help="Reject the whole run if any row is bad (nothing is written)."),
        click.option("--force", is_flag=True, help="Ingest again even if these files were already ingested."),
        click.option(
            "--batch-size",
            type=click.IntRange(1, 500_000),
            default=DEFAULT_BATCH,
            show_default=True,
            help="Rows per transaction.",
        ),
        click.option(
            "--writers",
            type=click.IntRange(1, 64),
            default=DEFAULT_WRITERS,
            show_default=True,
            help="Concurrent transactions for relationship-only batches.",
        ),
        click.option(
            "--bulk", is_flag=True, help="First load into an empty database with neo4j-admin import (managed server)."
        ),
        click.option(
            "--rejects-dir",
            type=click.Path(file_okay=False, path_type=Path),
            help="Where rejected rows go (default: <data dir>/rejects).",
        ),
        click.option(
            "--licence", help=f"Licence of these files, recorded on everything written [default: {cls.licence}]."
        ),
    ]
    for decorator in reversed(common):
        command = decorator(command)
    doc = f"Ingest {cls.source}: {cls.formats}."
    return click.command(cls.name, help=doc, short_help=f"{cls.source}: {cls.formats}")(command)


def _render_undo(r: Result) -> None:
    if r.get("already_undone"):
        click.echo(f"{r['run_id']} was undone already ({r['undone_at']}).")
        return
    props = ", ".join(f"{k} from {n:,} nodes" for k, n in r["vector_properties"].items())
    click.echo(
        f"Undid {r['run_id']} ({r['source']}, was {r['status_before']}): {r['relationships']:,} "
        f"relationships and {r['nodes']:,} nodes removed, {r['nodes_kept_shared']:,} nodes kept "
        f"(other sources or runs use them)" + (f"; removed {props}" if props else "")
    )


@ingest_group.command("undo")
@click.argument("run_id", metavar="RUN")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@json_command(_render_undo)
def undo_command(run_id: str, yes: bool) -> Result:
    """Remove what one ingest run wrote, e.g. the partial graph of a failed run.

    Its relationships go; the nodes it created go unless another source also wrote them or
    another run's relationships reach them; per-release vectors of the Datasets it created go.
    The run is marked undone, so the same ingest loads its files again. Asks first (on a
    terminal); without a terminal, --yes is required.
    """
    from kgctl.ingest.undo import undo

    confirm_or_stop(
        yes,
        f"Remove what ingest run {run_id} wrote to the graph?",
        f"ingest undo {run_id}: removing data needs --yes",
        "nothing removed",
    )
    with connect_with_spinner(load_settings()) as conn:
        return undo(conn, run_id)


def register_ingest_commands() -> click.Group:
    for name in sorted(ADAPTERS):
        ingest_group.add_command(_command(ADAPTERS[name]))
    return ingest_group


__all__ = ["register_ingest_commands"]
