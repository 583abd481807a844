"""Every adapter on the real files in ../shared/data (exact counts from the data's README or an
independent pandas reading), and a second ingest of the same files changes nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kgctl.graph.connection import Connection
from kgctl.testing.fixtures import graph_counts, ingest_files


@pytest.mark.slow
@pytest.mark.adapter("string")
def test_string_full_and_info(graph: Connection, shared_data: Path, tmp_path: Path) -> None:
    d = shared_data / "string"
    files = [
        d / "9606.protein.info.v12.0.subset.txt.gz",
        d / "9606.protein.links.full.v12.0.subset.txt.gz",
    ]
    result = ingest_files(graph, "string", files, tmp_path)
    # README: 19,699 protein.info rows; 170,298 interactions, each written in both directions.
    assert result["status"] == "completed"
    assert result["rows_read"] == 19_699 + 340_596
    assert result["rows_duplicate"] == 170_298 and result["rows_rejected"] == 0
    counts = graph_counts(graph)
    assert counts["Gene"] == 19_699
    assert counts["INTERACTS_WITH"] == 170_298
    assert counts["IngestRun"] == 1
    edge = graph.query(
        "MATCH (a:Gene)-[r:INTERACTS_WITH]-(b:Gene) WHERE a.string_id = '9606.ENSP00000440689' "
        "AND b.string_id = '9606.ENSP00000353720' RETURN a.id AS a, b.id AS b, properties(r) AS r"
    )
    assert len(edge) == 1
    r = edge[0]["r"]
    assert {edge[0]["a"], edge[0]["b"]} == {"CYP2E1", "CES1"}
    assert (
        r["combined_score"],
        r["coexpression"],
        r["coexpression_transferred"],
        r["database"],
        r["experiments_transferred"],
        r["homology"],
    ) == (905, 42, 67, 900, 71, 0)
    assert r["source"] == "STRING" and r["source_version"] == "12.0"
    assert r["run"] == result["run_id"] and r["licence"] == "CC-BY-4.0"
    assert r["created_at"].isoformat().startswith(result["started_at"][:10])  # a Neo4j datetime
    run_node = graph.query("MATCH (r:IngestRun) RETURN properties(r) AS r")[0]["r"]
    assert run_node["file_sha256"][1] == "c80551303f94336ce112fc31ab69dce32ef16f8561c9dda1f7b2929d4369550a"
    assert run_node["rows_loaded"] == 19_699 + 170_298

    again = ingest_files(graph, "string", files, tmp_path)
    assert again["skipped"] and graph_counts(graph) == counts
    forced = ingest_files(graph, "string", files, tmp_path, force=True)
    assert not forced["skipped"] and forced["relationships_written"] == 170_298
    assert graph_counts(graph) == counts


@pytest.mark.adapter("string")
def test_string_detailed_filters(graph: Connection, shared_data: Path, tmp_path: Path) -> None:
    d = shared_data / "string"
    links = d / "9606.protein.links.detailed.v12.0.subset.txt.gz"
    files = [d / "9606.protein.info.v12.0.subset.txt.gz", links]
    frame = pd.read_csv(links, sep=" ")
    strong = frame[(frame.combined_score >= 700) & (frame.experimental >= 400)]
    expected = len({tuple(sorted(p)) for p in zip(strong.protein1, strong.protein2, strict=True)})
    result = ingest_files(
        graph, "string", files, tmp_path, options={"min_score": 700, "channel": ("experimental>=400",)}
    )
    assert result["relationships_written"] == expected
    assert graph_counts(graph)["INTERACTS_WITH"] == expected
    low = graph.query("MATCH ()-[r:INTERACTS_WITH]->() RETURN min(r.combined_score) AS s, min(r.experimental) AS e")[0]
    assert low["s"] >= 700 and low["e"] >= 400


@pytest.mark.adapter("depmap")
def test_depmap_effect_and_expression(graph: Connection, shared_data: Path, tmp_path: Path) -> None:
    d = shared_data / "depmap"
    effect = d / "CRISPRGeneEffect.subset.csv.gz"
    expression = d / "OmicsExpressionProteinCodingGenesTPMLogp1.subset.csv.gz"
    ingest_files(graph, "depmap", [effect, expression], tmp_path)
    counts = graph_counts(graph)
    # README: 58 lines × 887 genes; 55 lines × 106 genes, all 55 lines and 105 genes shared.
    assert counts["CellLine"] == 58
    assert counts["Gene"] == 887 + 1
    assert counts["Dataset"] == 2
    gene = graph.query(
        "MATCH (d:Dataset {kind: 'gene-effect'}), (g:Gene {id: 'SNRPF'}) "
        "RETURN g[d.vector_property] AS v, g.entrez_id AS e"
    )[0]
    order = graph.query("MATCH (d:Dataset {kind: 'gene-effect'}) RETURN d.features AS f")[0]["f"]
    frame = pd.read_csv(effect, index_col=0)
    column = next(c for c in frame.columns if c.startswith("SNRPF "))
    assert gene["e"] == column.split("(")[1].rstrip(")")
    assert gene["v"] == pytest.approx(frame.loc[order, column].tolist(), rel=1e-6, nan_ok=True)
    again = ingest_files(graph, "depmap", [effect, expression], tmp_path)
    assert again["skipped"] and graph_counts(graph) == counts


@pytest.mark.adapter("molecules")
def test_molecules_repurposing_hub(graph: Connection, shared_data: Path, tmp_path: Path) -> None:
    table = shared_data / "molecules" / "repurposing_info.tsv.gz"
    result = ingest_files(graph, "molecules", [table], tmp_path, options={"source_version": "2020-03-24"})
    assert result["rows_read"] == 13_553 and result["rows_rejected"] == 0
    counts = graph_counts(graph)
    frame = pd.read_csv(table, sep="\t", dtype=str)
    targets = {t for cell in frame.target.dropna() for t in cell.split("|")}
    assert counts["Gene"] == len(targets)
    # 13,553 samples are 6,777 distinct structures by RDKit InChIKey (salts and batches collapse).
    assert counts["Molecule"] == 6_777
    assert counts["TARGETS"] == 12_067  # distinct (RDKit InChIKey, target) pairs
    mol = graph.query("MATCH (m:Molecule {name: 'imatinib'}) RETURN m LIMIT 1")[0]["m"]
    assert len(mol["fingerprint"]) == 2048 // 8 and mol["id"].count("-") == 2
    again = ingest_files(graph, "molecules", [table], tmp_path, options={"source_version": "2020-03-24"})
    assert again["skipped"] and graph_counts(graph) == counts


@pytest.mark.parametrize("matrix", ["test_l1000.gct.gz", "test_l1000_level3.gctx", "test_l1000_level4.gct.gz"])
@pytest.mark.adapter("l1000")
def test_l1000(graph: Connection, shared_data: Path, tmp_path: Path, matrix: str) -> None:
    d = shared_data / "l1000"
    result = ingest_files(graph, "l1000", [d / matrix, d / "compounds.tsv.gz"], tmp_path)
    # 377 signatures: 48 name one of the 8 BRD compounds without a structure (rejected as unknown).
    assert result["rows_rejected"] == 48
    counts = graph_counts(graph)
    assert counts["Molecule"] == 51
    assert counts["ExpressionProfile"] == 377 - 48
    assert counts["PERTURBS"] == 303  # the other 26 profiles are DMSO / untreated controls
    controls = graph.query(
        "MATCH (p:ExpressionProfile {control: true}) WHERE NOT ()-[:PERTURBS]->(p) RETURN count(p) AS n"
    )[0]["n"]
    assert controls == 26
    assert Path(result["rejects_file"]).read_text().count("BRD-K20696416") > 0


@pytest.mark.adapter("expression")
@pytest.mark.adapter("transcripts")
def test_expression_matrix_and_orthologs(graph: Connection, shared_data: Path, tmp_path: Path) -> None:
    matrix = shared_data / "depmap" / "OmicsExpressionProteinCodingGenesTPMLogp1.subset.csv.gz"
    ingest_files(graph, "expression", [matrix], tmp_path, options={"dataset": "ccle-sample"})
    assert graph_counts(graph)["ExpressionProfile"] == 55
    vector = graph.query("MATCH (p:ExpressionProfile {id: 'ccle-sample:ACH-002029'}) RETURN p.features AS f")[0]["f"]
    assert len(vector) == 106

    rna = shared_data / "rna"
    genemap, orthologs = rna / "all_HLs_human_PC1.txt.gz", rna / "1to1_orthologs_expression.txt.gz"
    result = ingest_files(graph, "transcripts", [genemap, orthologs], tmp_path)
    hl = pd.read_csv(genemap, sep="\t", dtype=str).dropna(subset=["external_gene_name"])
    known = set(hl.ensembl_gene_id)
    pairs = pd.read_csv(orthologs, sep="\t", header=None, dtype=str)
    expected = int(pairs[0].isin(known).sum())
    assert graph_counts(graph)["ORTHOLOG_OF"] == expected
    assert result["rows_rejected"] == (len(pd.read_csv(genemap, sep="\t")) - len(hl)) + (len(pairs) - expected)


@pytest.mark.adapter("morphology")
def test_morphology_real_profiles(graph: Connection, shared_data: Path, tmp_path: Path) -> None:
    """The three real layouts: JUMP-MOA (full InChIKeys, 4 replicates), the LINCS plate (Broad
    ids and InChIKey first blocks, 6 doses) and the cell-injury study (IDR columns, three files
    pooled into one dataset); consensus medians checked against pandas; feature spaces kept apart."""
    import numpy as np

    from kgctl.core.errors import KgctlError

    d = shared_data / "morphology"
    hub = shared_data / "molecules" / "repurposing_info.tsv.gz"
    ingest_files(graph, "molecules", [hub], tmp_path, {"source_name": "repurposing-hub"})
    jump = d / "cpg0002_jump_moa_US20X_plate2_normalized_feature_select_batch.csv.gz"
    result = ingest_files(graph, "morphology", [jump], tmp_path, {"dataset": "jump-moa", "source_version": "cpg0002"})
    assert result["rows_read"] == 383 and result["rows_rejected"] > 0
    frame = pd.read_csv(jump)
    features = [c for c in frame.columns if c.startswith(("Cells_", "Cytoplasm_", "Nuclei_"))]
    az191 = frame[frame["Metadata_InChIKey"] == "ZYVXTMKTGDARKR-UHFFFAOYSA-N"]
    row = graph.query(
        "MATCH (m:Molecule {id: 'ZYVXTMKTGDARKR-UHFFFAOYSA-N'})-[r:PERTURBS]->(p:MorphologyProfile) "
        "RETURN p.features AS f, p.replicates AS n, p.feature_space AS space, r.matched_by AS by"
    )
    assert len(row) == 1 and row[0]["n"] == len(az191) == 4
    assert (row[0]["space"], row[0]["by"]) == ("jump-moa@cpg0002", "inchikey")
    assert np.allclose(row[0]["f"], az191[features].median().to_numpy())
    control = graph.query("MATCH (p:MorphologyProfile {id: 'jump-moa:control'}) RETURN p.replicates AS n")
    assert control == [{"n": 24}]
    # 'Compound2' has neither an InChIKey nor a Broad id: its 4 wells are rejected, by line.
    rejects = pd.read_csv(result["rejects_file"], sep="\t")
    unmapped = rejects[rejects["message"].str.contains("'Compound2'")]
    lines = frame.index[frame["Metadata_broad_sample"] == "Compound2"] + 2
    assert sorted(unmapped["line"]) == sorted(lines) and set(unmapped["field"]) == {"Metadata_broad_sample"}
    treated = (frame["Metadata_control_type"] != "negcon").sum()
    mapped = graph.query(
        "MATCH (:Molecule)-[r:PERTURBS]->(p:MorphologyProfile {dataset: 'jump-moa@cpg0002'}) "
        "RETURN sum(r.replicates) AS wells"
    )[0]["wells"]
    assert mapped == treated - result["rows_rejected"]

    lincs = d / "SQ00015054_normalized_feature_select.csv.gz"
    result = ingest_files(graph, "morphology", [lincs], tmp_path, {"dataset": "lincs", "source_version": "2016"})
    doses = graph.query(
        "MATCH (m:Molecule)-[r:PERTURBS]->(p:MorphologyProfile {dataset: 'lincs@2016'}) "
        "WHERE m.broad_id = 'BRD-K92301463' RETURN r.dose AS dose, r.matched_by AS by, p.replicates AS n"
    )
    plate = pd.read_csv(lincs)
    given = plate.loc[plate["Metadata_pert_id"] == "BRD-K92301463", "Metadata_mmoles_per_liter"]
    assert len(doses) == 6 and sorted(r["dose"] for r in doses) == pytest.approx(sorted(given))
    assert {r["by"] for r in doses} == {"broad_id"} and {r["n"] for r in doses} == {1}
    by = graph.query(
        "MATCH ()-[r:PERTURBS]->(:MorphologyProfile {dataset: 'lincs@2016'}) RETURN r.matched_by AS by, count(*) AS n"
    )
    assert {r["by"] for r in by} <= {"broad_id", "inchikey_first_block"}

    # Columns never mix: another plate's columns under an existing dataset or feature space fail.
    with pytest.raises(KgctlError, match="jump-moa@cpg0002 is in the graph with other feature columns"):
        ingest_files(graph, "morphology", [lincs], tmp_path, {"dataset": "jump-moa", "source_version": "cpg0002"})
    with pytest.raises(KgctlError, match="feature space jump-moa@cpg0002 is in the graph"):
        ingest_files(
            graph,
            "morphology",
            [lincs],
            tmp_path,
            {"dataset": "other", "feature_space": "jump-moa", "source_version": "cpg0002"},
        )
    with pytest.raises(KgctlError, match="differ from those of"):
        ingest_files(graph, "morphology", [jump, lincs], tmp_path, {"dataset": "pooled"})

    injury = [d / f"cell_injury_{s}_holdout.csv.gz" for s in ("treatment", "wells", "plate")]
    result = ingest_files(
        graph, "morphology", injury, tmp_path, {"dataset": "cell-injury", "source_version": "idr0133"}
    )
    assert result["rows_read"] == 4_840
    spaces = graph.query(
        "MATCH (d:Dataset) WHERE d.feature_space IS NOT NULL RETURN d.id AS id, d.n_features AS n ORDER BY id"
    )
    assert spaces == [
        {"id": "cell-injury@idr0133", "n": 372},
        {"id": "jump-moa@cpg0002", "n": 786},
        {"id": "lincs@2016", "n": 454},
    ]
    rejects = pd.read_csv(result["rejects_file"], sep="\t")
    nan_rows = rejects[rejects["message"] == "missing or non-numeric feature value"]
    assert len(nan_rows) == 2  # the two all-NaN rows the README names
