"""`kgctl download <release>`: fetch public releases by their official names, verified and resumable."""

from __future__ import annotations

from pathlib import Path

import click

from kgctl.cli.output import Result, json_command, progress_bar
from kgctl.ingest.download import RELEASES, fetch, resolve


def _render(r: Result) -> None:
    for f in r["files"]:
        click.echo(f"{f['status']:>10}  {f['path']}  ({f['bytes']:,} bytes, sha256 {f['sha256'][:16]}…)")


@click.command("download")
@click.argument("release", type=click.Choice(sorted(RELEASES)))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("data"),
    show_default=True,
    help="Folder to download into.",
)
@click.option(
    "--file", "files", multiple=True, help="An official file name of the release (repeatable; default: the usual ones)."
)
@click.option("--mirror", help="Fetch the same paths from this base URL instead (a mirror or cache).")
@json_command(_render)
def download(release: str, out_dir: Path, files: tuple[str, ...], mirror: str | None) -> Result:
    """Download a public release (STRING, DepMap, Perturb-seq, Repurposing Hub, GENCODE).

    Files keep their official names; an interrupted transfer resumes where it stopped, and
    publisher checksums (figshare md5) are verified. Needs internet (or --mirror).
    """
    remotes = resolve(release, files, mirror)
    results = []
    with progress_bar("bytes") as on_progress:
        for remote in remotes:
            results.append(fetch(remote, out_dir, on_progress))
    return {"release": release, "description": RELEASES[release].description, "files": results}
