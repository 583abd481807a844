"""`python -m tests.generators perturbseq|morphology|transcripts|string OUT [options]`."""

from __future__ import annotations

from pathlib import Path

import click

from tests import generators as g


@click.group()
def main() -> None:
    """Write generated inputs in the real formats."""


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--perturbations", default=40)
@click.option("--readout", default=60)
@click.option("--seed", default=0)
def perturbseq(out: Path, perturbations: int, readout: int, seed: int) -> None:
    click.echo(g.perturbseq_h5ad(out, n_perturbations=perturbations, n_readout=readout, seed=seed))


@main.command()
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--proteins", default=20_000)
@click.option("--lines", default=5_000_000)
@click.option("--seed", default=0)
def string(out: Path, proteins: int, lines: int, seed: int) -> None:
    for path in g.string_files(out, n_proteins=proteins, n_lines=lines, seed=seed):
        click.echo(path)


if __name__ == "__main__":
    main()
