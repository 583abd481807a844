"""`kgctl build similarity|coessentiality`: derived edges computed from vectors in the graph."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from kgctl.cli.output import Result, connect_with_spinner, json_command, spinner
from kgctl.core.settings import load_settings
from kgctl.graph.connection import Connection
from kgctl.graph.derive import build_coessentiality, build_similarity


def _render(r: Result) -> None:
    rule = {k: r[k] for k in ("selection", "k", "threshold", "top") if r.get(k) is not None}
    click.echo(
        f"{r['type']}: {r['relationships']:,} relationships among {r['nodes']:,} nodes of "
        f"{r['dataset']} ({', '.join(f'{k} {v}' for k, v in rule.items())}) in {r['seconds']:.1f} s"
    )
    click.echo(f"  run {r['run_id']}")


def _with_graph(work: Callable[[Connection], dict[str, Any]]) -> dict[str, Any]:
    with connect_with_spinner(load_settings()) as conn, spinner("Scoring pairs and writing edges"):
        return work(conn)


@click.group("build")
def build_group() -> None:
    """Derive edges from what is in the graph (a build replaces the earlier one of its kind)."""


@build_group.command("similarity")
@click.option(
    "--dataset", help="A Dataset id (`MATCH (d:Dataset) RETURN d.id`): its profiles' vectors."
)
@click.option("--molecules", is_flag=True, help="Tanimoto between Molecule Morgan fingerprints.")
@click.option("--k", type=click.IntRange(1), help="Keep each node's k nearest neighbours.")
@click.option("--threshold", type=float, help="Keep pairs scoring at least this.")
@json_command(_render)
def similarity(
    dataset: str | None, molecules: bool, k: int | None, threshold: float | None
) -> Result:
    """SIMILAR_TO among the profiles of one dataset (cosine) or among molecules (Tanimoto).

    Without --k or --threshold, InfoAlign's rule: the threshold that lets about 0.5 % of all
    pairs through, never below 0.8. The rule and its values are recorded on every edge.
    """
    return _with_graph(lambda conn: build_similarity(conn, dataset=dataset, molecules=molecules,
                                                     k=k, threshold=threshold))  # fmt: skip


@build_group.command("coessentiality")
@click.option("--dataset", required=True, help="A DepMap gene-effect Dataset id.")
@click.option("--method", type=click.Choice(["pearson", "reference"]), default="pearson",
              show_default=True,
              help="Pearson correlation, or CAL's reference G·Gᵀ with G = max(0, −effect).")  # fmt: skip
@click.option("--top", type=click.IntRange(1), help="Keep the N highest-scoring pairs.")
@click.option("--threshold", type=float, help="Keep pairs scoring at least this.")
@json_command(_render)
def coessentiality(dataset: str, method: str, top: int | None, threshold: float | None) -> Result:
    """CO_ESSENTIAL between genes from DepMap gene-effect vectors.

    Defaults: Pearson r >= 0.5, or for the reference method the top 200,000 pairs (as in CAL).
    """
    return _with_graph(lambda conn: build_coessentiality(conn, dataset=dataset, method=method,
                                                         top=top, threshold=threshold))  # fmt: skip
