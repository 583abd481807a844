"""InfoAlign's context graph from the real public data in `../shared/data` (`kgctl build
context`): STRING gene–gene links, DepMap gene effects as the genes' features, the Drug
Repurposing Hub and JUMP-Target compounds with their TARGETS genes, the L1000 plate's signatures
with PERTURBS from their compounds, the four downstream sets' molecules (structures only, never
their labels), the Cell Painting consensus profiles of three plates or studies, then the derived edges: Tanimoto within Murcko scaffolds, and Pearson (row-z-scored cosine)
among the L1000 signatures, each Cell Painting dataset's profiles and the genes' effect profiles (InfoAlign's 0.5 % rule). Every step is an
ordinary ingest or build, so a re-run skips what is already loaded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kgctl.core.errors import KgctlError
from kgctl.core.progress import OnProgress, silent
from kgctl.graph.connection import Connection
from kgctl.graph.derive import build_similarity
from kgctl.ingest.pipeline import ingest
from kgctl.models.probing.molecules import SETS

REPURPOSING_TERMS = "research use only, non-commercial (CLUE / Drug Repurposing Hub terms)"
DOWNSTREAM_LICENCE = "unspecified (liugangcode/InfoAlign raw_data; see ../shared/data/README.md)"


def loads(data: Path) -> list[tuple[str, list[Path], dict[str, Any]]]:
    """(source, files, options) of every ingest, in order."""
    string, molecules, l1000 = data / "string", data / "molecules", data / "l1000"
    plan: list[tuple[str, list[Path], dict[str, Any]]] = [
        (
            "string",
            [string / "9606.protein.info.v12.0.subset.txt.gz", string / "9606.protein.links.full.v12.0.subset.txt.gz"],
            {},
        ),
        ("depmap", [data / "depmap" / "CRISPRGeneEffect.subset.csv.gz"], {"source_version": "chronos-model2-sample"}),
        (
            "molecules",
            [molecules / "repurposing_info.tsv.gz"],
            {"source_name": "repurposing-hub", "source_version": "2020-03-24", "licence": REPURPOSING_TERMS},
        ),
        (
            "molecules",
            [molecules / "JUMP-Target-1_compound_metadata.tsv.gz"],
            {"source_name": "jump-target", "source_version": "2da0551", "licence": "MIT"},
        ),
        (
            "l1000",
            [l1000 / "compounds.tsv.gz", l1000 / "test_l1000_level4.gct.gz"],
            {"source_version": "LJP005_A375_24H_X1"},
        ),
    ]
    for name, (path, _) in SETS.items():  # structures only: the adapter reads no label column
        plan.append(
            (
                "molecules",
                [data / "infoalign" / path],
                {"source_name": f"infoalign-{name}", "source_version": "eed96f3", "licence": DOWNSTREAM_LICENCE},
            )
        )
    plan += morphology_loads(data / "morphology")
    return plan


def morphology_loads(folder: Path) -> list[tuple[str, list[Path], dict[str, Any]]]:
    """The real Cell Painting plates, after every molecule source so that their compounds map:
    a consensus per compound and dose, one dataset (feature space) per plate or study."""
    plate = {"source_name": "LINCS Cell Painting", "licence": "CC0-1.0"}
    return [
        (
            "morphology",
            [folder / "SQ00015054_normalized_feature_select.csv.gz"],
            {**plate, "dataset": "lincs-SQ00015054", "source_version": "cytominer-eval-46595cf"},
        ),
        (
            "morphology",
            [folder / "cpg0002_jump_moa_US20X_plate2_normalized_feature_select_batch.csv.gz"],
            {**plate, "source_name": "JUMP-MOA", "dataset": "jump-moa-US20X-plate2", "source_version": "cpg0002"},
        ),
        (
            "morphology",
            [folder / f"cell_injury_{s}_holdout.csv.gz" for s in ("treatment", "wells", "plate")],
            {
                "source_name": "cell injury (Dahlin et al. 2023)",
                "dataset": "cell-injury",
                "source_version": "idr0133",
                "licence": "CC-BY-4.0",
            },
        ),
    ]


def build_context_graph(
    conn: Connection, data: Path, work: Path, *, on_progress: OnProgress = silent
) -> dict[str, Any]:
    """Ingest the sources and derive the similarity edges; returns what each step did."""
    plan = loads(data)
    missing = [str(f) for _, files, _ in plan for f in files if not f.exists()]
    if missing:
        raise KgctlError(f"missing real data: {', '.join(missing[:3])} (is --data the shared/data folder?)")
    steps = len(plan) + 3
    started = time.perf_counter()
    done: dict[str, Any] = {"ingests": [], "builds": []}
    for i, (source, files, options) in enumerate(plan, 1):
        summary = ingest(conn, source, files, options, rejects_dir=work / "rejects")
        done["ingests"].append(
            {
                "source": source,
                "files": [f.name for f in files],
                **{
                    k: summary.get(k)
                    for k in (
                        "run_id",
                        "status",
                        "rows_read",
                        "rows_rejected",
                        "nodes_written",
                        "relationships_written",
                    )
                },
            }
        )
        on_progress(i, steps, f"ingested {files[-1].name}")
    for j, made in enumerate(derive_context_edges(conn), len(plan) + 1):
        done["builds"].append(made)
        on_progress(j, steps, f"built SIMILAR_TO among {made['dataset']}")
    datasets = conn.query("MATCH (d:Dataset {vector_label: 'Gene'}) RETURN d.id AS id ORDER BY id")
    done["gene_dataset"] = datasets[0]["id"] if datasets else None
    done["seconds"] = round(time.perf_counter() - started, 1)
    return done


def derive_context_edges(conn: Connection) -> Iterator[dict[str, Any]]:
    """InfoAlign's similarity edges, one build at a time: Tanimoto within Murcko scaffolds (E6),
    then Pearson among the vectors of every gene, expression and morphology Dataset (E7–E9)."""
    yield build_similarity(conn, dataset=None, molecules=True, within_scaffold=True)
    for row in conn.query(
        "MATCH (d:Dataset) WHERE d.vector_label IN "
        "['Gene', 'ExpressionProfile', 'MorphologyProfile'] RETURN d.id AS id ORDER BY id"
    ):
        yield build_similarity(conn, dataset=row["id"], metric="pearson")
