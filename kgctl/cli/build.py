"""`kgctl build similarity|coessentiality`: derived edges computed from vectors in the graph."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from kgctl.cli.output import Result, connect_with_spinner, json_command, progress_bar, spinner
from kgctl.core.settings import load_settings
from kgctl.graph.connection import Connection
from kgctl.graph.derive import build_coessentiality, build_similarity


def _render(r: Result) -> None:
    rule = {k: r[k] for k in ("selection", "k", "threshold", "top", "within") if r.get(k) is not None}
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
@click.option("--dataset", help="A Dataset id (`MATCH (d:Dataset) RETURN d.id`): its profiles' vectors.")
@click.option("--molecules", is_flag=True, help="Tanimoto between Molecule Morgan fingerprints.")
@click.option("--k", type=click.IntRange(1), help="Keep each node's k nearest neighbours.")
@click.option("--threshold", type=float, help="Keep pairs scoring at least this.")
@click.option(
    "--metric",
    type=click.Choice(["cosine", "pearson"]),
    default="cosine",
    show_default=True,
    help="With --dataset: cosine, or Pearson (cosine of row-z-scored profiles, as InfoAlign).",
)
@click.option(
    "--within-scaffold",
    is_flag=True,
    help="With --molecules: only pairs of one Murcko scaffold (InfoAlign's molecule edges).",
)
@json_command(_render)
def similarity(
    dataset: str | None,
    molecules: bool,
    k: int | None,
    threshold: float | None,
    metric: str,
    within_scaffold: bool,
) -> Result:
    """SIMILAR_TO among the profiles of one dataset (cosine or Pearson) or among molecules (Tanimoto).

    Without --k or --threshold, InfoAlign's rule: the threshold that lets about 0.5 % of all
    pairs through, never below 0.8. The rule and its values are recorded on every edge.
    """
    return _with_graph(
        lambda conn: build_similarity(
            conn,
            dataset=dataset,
            molecules=molecules,
            k=k,
            threshold=threshold,
            metric=metric,
            within_scaffold=within_scaffold,
        )
    )


@build_group.command("coessentiality")
@click.option("--dataset", required=True, help="A DepMap gene-effect Dataset id.")
@click.option(
    "--method",
    type=click.Choice(["pearson", "reference"]),
    default="pearson",
    show_default=True,
    help="Pearson correlation, or CAL's reference G·Gᵀ with G = max(0, −effect).",
)
@click.option("--top", type=click.IntRange(1), help="Keep the N highest-scoring pairs.")
@click.option("--threshold", type=float, help="Keep pairs scoring at least this.")
@json_command(_render)
def coessentiality(dataset: str, method: str, top: int | None, threshold: float | None) -> Result:
    """CO_ESSENTIAL between genes from DepMap gene-effect vectors.

    Defaults: Pearson r >= 0.5, or for the reference method the top 200,000 pairs (as in CAL).
    """
    return _with_graph(
        lambda conn: build_coessentiality(conn, dataset=dataset, method=method, top=top, threshold=threshold)
    )


def _render_context(r: Result) -> None:
    for step in r["ingests"]:
        click.echo(
            f"  {step['source']:10s} {', '.join(step['files'])}: {step['status']}, "
            f"{step.get('rows_read') or 0:,} rows, {step.get('rows_rejected') or 0:,} rejected"
        )
    for made in r["builds"]:
        _render(made)
    click.echo(
        f"Context graph built in {r['seconds']:.0f} s. Train on it: kgctl train infoalign"
        + (f" --dataset {r['gene_dataset']}" if r.get("gene_dataset") else "")
    )


@build_group.command("context")
@click.option(
    "--data",
    "data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="The shared real-data folder (../shared/data).",
)
@json_command(_render_context)
def context(data: Path) -> Result:
    """InfoAlign's context graph from the real public data: ingest and derive its edges.

    STRING links, DepMap gene effects (the genes' features), the Drug Repurposing Hub and
    JUMP-Target compounds with their targets, the L1000 plate with its compounds, and the four
    downstream sets' structures (never their labels), the Cell Painting consensus profiles of
    the LINCS and JUMP-MOA plates and the cell-injury study; then SIMILAR_TO within Murcko
    scaffolds, among the L1000 signatures, within each Cell Painting dataset and among the genes'
    effect profiles. A re-run skips what is loaded.
    """
    from kgctl.demo.context import build_context_graph

    settings = load_settings()
    with connect_with_spinner(settings) as conn, progress_bar() as on_progress:
        return build_context_graph(conn, data, settings.paths.data_dir / "context", on_progress=on_progress)
