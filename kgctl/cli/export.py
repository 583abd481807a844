"""`kgctl export <view> --out DIR`: a view of the graph as parquet + a PyTorch Geometric Data."""

from __future__ import annotations

from pathlib import Path

import click

from kgctl.cli.output import Result, connect_with_spinner, json_command, spinner
from kgctl.core.settings import load_settings
from kgctl.graph.export import export_view
from kgctl.graph.views import VIEWS


def _render(r: Result) -> None:
    state = "unchanged graph: cached" if r["cached"] else f"exported in {r['seconds']:.2f} s"
    nodes = r["nodes"]  # a count, or counts per label (context)
    shown = f"{nodes:,} nodes" if isinstance(nodes, int) else ", ".join(f"{n:,} {k}" for k, n in nodes.items())
    rels = ", ".join(f"{n:,} {t}" for t, n in r["relationships"].items())
    click.echo(f"{r['view']}: {shown}; {rels} ({state}) → {r['out']}")


@click.command("export")
@click.argument("view", type=click.Choice(list(VIEWS)))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for the parquet files (nodes and edges), data.pt and meta.json.",
)
@click.option("--dataset", help="A Dataset id whose vectors become the gene features.")
@click.option(
    "--relationship",
    "relationships",
    multiple=True,
    default=("INTERACTS_WITH",),
    show_default=True,
    help="Relationship types to export (repeatable).",
)
@click.option(
    "--min-score", type=float, help="Keep relationships scoring at least this (combined_score, score, similarity)."
)
@click.option("--no-cache", is_flag=True, help="Export even if the graph has not changed.")
@json_command(_render)
def export(
    view: str,
    out_dir: Path,
    dataset: str | None,
    relationships: tuple[str, ...],
    min_score: float | None,
    no_cache: bool,
) -> Result:
    """Export a view for the models.

    gene-association: genes (features from --dataset) and their --relationship edges, as parquet
    plus a PyG `Data` (data.pt) whose `node_ids` map indices back to the graph. context:
    InfoAlign's heterogeneous graph of molecules, genes and profiles with walk weights, as
    parquet plus a PyG `HeteroData`. transcripts: transcripts (sequence, length, CDS, exon ends),
    their genes and orthologs, likewise. An unchanged graph with the same options is not
    exported again: the cached view is returned.
    """
    settings = load_settings()
    with connect_with_spinner(settings) as conn, spinner(f"Exporting {view}"):
        result = export_view(
            conn,
            view,
            out_dir,
            dataset=dataset,
            relationships=relationships,
            min_score=min_score,
            use_cache=not no_cache,
        )
    names = result.meta.get("feature_names", {})
    return {
        **{k: v for k, v in result.meta.items() if k != "feature_names"},
        "out": str(out_dir),
        "cached": bool(result.meta.get("cached")),
        "n_features": {label: len(v) for label, v in names.items() if v},
    }
