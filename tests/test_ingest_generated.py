"""Adapters for sources with no real copy here, on files generated in the real formats."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection
from kgctl.ingest.transcripts import Structure, parse_header
from kgctl.testing import generators
from kgctl.testing.fixtures import graph_counts, ingest_files


@pytest.mark.adapter("perturbseq")
def test_perturbseq(graph: Connection, tmp_path: Path) -> None:
    h5ad = generators.perturbseq_h5ad(
        tmp_path / "K562_essential_normalized_bulk_01.h5ad", n_perturbations=30, n_readout=50, n_controls=4
    )
    result = ingest_files(graph, "perturbseq", [h5ad], tmp_path)
    counts = graph_counts(graph)
    assert result["rows_read"] == 34
    assert counts["ExpressionProfile"] == 34 and counts["Gene"] == 30 and counts["PERTURBS"] == 30
    assert counts["Dataset"] == 1
    controls = graph.query(
        "MATCH (p:ExpressionProfile {control: true}) WHERE NOT ()-[:PERTURBS]->(p) RETURN count(p) AS n"
    )[0]["n"]
    assert controls == 4
    row = graph.query(
        "MATCH (g:Gene {id: 'KIF1'})-[r:PERTURBS]->(p) RETURN r.type AS t, p.cell_line AS c, "
        "p.features AS f, g.ensembl_gene_id AS e"
    )[0]
    assert (row["t"], row["c"], row["e"]) == ("CRISPRi", "K562", "ENSG00000100000")
    assert len(row["f"]) == 50 and row["f"][0] < -2  # the target's own knockdown
    assert ingest_files(graph, "perturbseq", [h5ad], tmp_path)["skipped"]
    assert graph_counts(graph) == counts


@pytest.mark.adapter("morphology")
@pytest.mark.parametrize("suffix", [".parquet", ".csv.gz"])
def test_morphology(graph: Connection, shared_data: Path, tmp_path: Path, suffix: str) -> None:
    jump = shared_data / "molecules" / "JUMP-Target-1_compound_metadata.tsv.gz"
    ingest_files(graph, "molecules", [jump], tmp_path, {"source_name": "JUMP-Target"})
    keys = [r["id"] for r in graph.query("MATCH (m:Molecule) RETURN m.id AS id ORDER BY id LIMIT 5")]
    profiles = generators.cell_painting_profiles(
        tmp_path / f"BR00117010_profiles{suffix}",
        compounds=keys,
        genes=["TP53", "KRAS"],
        replicates=2,
        n_dmso=3,
    )
    before = graph_counts(graph)
    result = ingest_files(graph, "morphology", [profiles], tmp_path)
    after = graph_counts(graph)
    assert result["rows_read"] == 5 * 2 + 2 * 2 + 3 and result["rows_rejected"] == 0
    # A consensus per compound and gene (dose 10 and 0) and one of the DMSO wells.
    assert after["MorphologyProfile"] == 5 + 2 + 1
    assert after["PERTURBS"] == 7
    assert after["Molecule"] == before["Molecule"]
    consensus = graph.query(
        "MATCH (m:Molecule)-[r:PERTURBS]->(p:MorphologyProfile) RETURN r.type AS t, r.matched_by AS by, "
        "p.plates AS plates, p.replicates AS n, size(p.features) AS width LIMIT 1"
    )[0]
    assert consensus == {"t": "compound", "by": "inchikey", "plates": ["BR00117010"], "n": 2, "width": 24}
    assert ingest_files(graph, "morphology", [profiles], tmp_path)["skipped"]
    wells = ingest_files(graph, "morphology", [profiles], tmp_path, {"level": "well", "dataset": "wells"})
    assert wells["rows_loaded"] == 17
    assert graph_counts(graph)["MorphologyProfile"] == 8 + 17


@pytest.mark.adapter("transcripts")
def test_transcripts(graph: Connection, tmp_path: Path) -> None:
    fasta, gtf = generators.transcripts(
        tmp_path / "gencode.v44.pc_transcripts.fa",
        tmp_path / "gencode.v44.annotation.gtf",
        genes=["TP53", "BRCA1", "EGFR", "MYC"],
        isoforms=3,
    )
    result = ingest_files(graph, "transcripts", [fasta, gtf], tmp_path, {"source_version": "44"})
    counts = graph_counts(graph)
    assert counts["Transcript"] == 12 and counts["ISOFORM_OF"] == 12 and counts["Gene"] == 4
    assert result["rows_rejected"] == 0
    rows = graph.query(
        "MATCH (t:Transcript)-[:ISOFORM_OF]->(g:Gene {id: 'EGFR'}) "
        "RETURN t.length AS n, size(t.sequence) AS s, t.exon_ends AS e, t.source AS src"
    )
    assert len(rows) == 3 and all(r["n"] == r["s"] == r["e"][-1] and r["src"] == "GENCODE" for r in rows)
    assert ingest_files(graph, "transcripts", [fasta, gtf], tmp_path, {"source_version": "44"})["skipped"]


@pytest.mark.adapter("transcripts")
def test_gtf_cds_matches_gencode_header(tmp_path: Path) -> None:
    """The CDS computed from GTF exons equals the span in the GENCODE header."""
    fasta, gtf = generators.transcripts(tmp_path / "t.fa", tmp_path / "t.gtf", genes=["A1", "B2"])
    structures: dict[str, Structure] = {}
    for line in gtf.read_text().splitlines():
        f = line.split("\t")
        if len(f) == 9 and f[2] in {"exon", "CDS"}:
            tid = f[8].split('transcript_id "')[1].split(".")[0]
            s = structures.setdefault(tid, Structure(f[6]))
            (s.exons if f[2] == "exon" else s.cds).append((int(f[3]), int(f[4])))
    for line in fasta.read_text().splitlines():
        if line.startswith(">"):
            tid, _, _, cds = parse_header(line[1:])  # type: ignore[misc]
            _, start, end = structures[tid.split(".")[0]].layout()
            assert (start, end) == cds


@pytest.mark.adapter("expression")
def test_expression_both_orientations(graph: Connection, tmp_path: Path) -> None:
    frame = pd.DataFrame(
        [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], index=pd.Index(["TP53", "EGFR"], name="gene"), columns=["s1", "s2", "s3"]
    )
    frame.to_csv(tmp_path / "genes_by_samples.tsv", sep="\t")
    frame.T.rename_axis("sample").to_parquet(tmp_path / "samples_by_genes.parquet")
    ingest_files(graph, "expression", [tmp_path / "genes_by_samples.tsv"], tmp_path, {"dataset": "a"})
    ingest_files(graph, "expression", [tmp_path / "samples_by_genes.parquet"], tmp_path, {"dataset": "b"})
    a = graph.query("MATCH (p:ExpressionProfile {id: 'a:s2'}) RETURN p.features AS f")[0]["f"]
    b = graph.query("MATCH (p:ExpressionProfile {id: 'b:s2'}) RETURN p.features AS f")[0]["f"]
    assert a == b == [2.0, 5.0]
    ingest_files(graph, "expression", [tmp_path / "genes_by_samples.tsv"], tmp_path, {"dataset": "c", "mode": "genes"})
    gene = graph.query("MATCH (d:Dataset {name: 'c'}), (g:Gene {id: 'EGFR'}) RETURN g[d.vector_property] AS v")[0]["v"]
    assert gene == [4.0, 5.0, 6.0]


@pytest.mark.adapter("molecules")
def test_molecules_smi_and_sdf(graph: Connection, tmp_path: Path) -> None:
    from rdkit import Chem

    smiles = {"aspirin": "CC(=O)Oc1ccccc1C(=O)O", "caffeine": "Cn1cnc2c1c(=O)n(C)c(=O)n2C", "ethanol": "OCC"}
    smi = tmp_path / "set.smi"
    smi.write_text("".join(f"{s} {n}\n" for n, s in smiles.items()) + "not_a_smiles broken\n")
    sdf = tmp_path / "set.sdf"
    writer = Chem.SDWriter(str(sdf))
    for name, s in smiles.items():
        mol = Chem.MolFromSmiles(s)
        mol.SetProp("_Name", name)
        writer.write(mol)
    writer.close()
    sdf.write_text(sdf.read_text() + "garbage\n  no atoms here\nM  END\n$$$$\n")
    result = ingest_files(graph, "molecules", [smi, sdf], tmp_path)
    assert result["rows_read"] == 8 and result["rows_rejected"] == 2
    assert graph_counts(graph)["Molecule"] == 3  # the same three structures from both files
    assert result["first_rejects"][0] == "set.smi:4: field 'smiles': invalid SMILES 'not_a_smiles'"
    assert result["first_rejects"][1].startswith("set.sdf:")
    names = {r["n"] for r in graph.query("MATCH (m:Molecule) RETURN m.name AS n")}
    assert names == set(smiles)


@pytest.mark.adapter("depmap")
def test_two_depmap_releases_keep_their_own_vectors(graph: Connection, tmp_path: Path) -> None:
    """Release B after A: each Dataset reads back its own values and shape (one shared gene
    property made B overwrite A, and A's export crashed on the shape)."""
    from kgctl.graph.derive import dataset_vectors

    def release(name: str, lines: int) -> Path:
        rows = [f"ACH-{i:06d},{-0.1 * i},{0.2 * i}" for i in range(1, lines + 1)]
        path = tmp_path / name / "CRISPRGeneEffect.csv"
        path.parent.mkdir()
        path.write_text("ModelID,TP53 (7157),KRAS (3845)\n" + "\n".join(rows) + "\n")
        return path

    ingest_files(graph, "depmap", [release("a", 3)], tmp_path, {"source_version": "24Q2"})
    ingest_files(graph, "depmap", [release("b", 5)], tmp_path, {"source_version": "24Q4"})
    a = dataset_vectors(graph, "DepMap gene-effect@24Q2")
    b = dataset_vectors(graph, "DepMap gene-effect@24Q4")
    assert a.matrix.shape == (2, 3) and b.matrix.shape == (2, 5)
    assert a.ids == b.ids == ["KRAS", "TP53"]
    assert a.matrix[1].tolist() == pytest.approx([-0.1, -0.2, -0.3])
    assert b.matrix[1].tolist() == pytest.approx([-0.1, -0.2, -0.3, -0.4, -0.5])


@pytest.mark.adapter("depmap")
def test_depmap_infinities_and_a_gene_twice_are_refused(graph: Connection, tmp_path: Path) -> None:
    effect = tmp_path / "CRISPRGeneEffect.csv"
    effect.write_text(
        "ModelID,TP53 (7157),KRAS (3845)\nACH-000001,-0.1,0.2\nACH-000002,inf,0.3\nACH-000003,0.1,1e999\n"
    )
    result = ingest_files(graph, "depmap", [effect], tmp_path, {"source_version": "x"})
    assert result["rows_rejected"] == 2 and result["rows_loaded"] == 1
    assert result["first_rejects"] == [
        "CRISPRGeneEffect.csv:3: field 'TP53 (7157)': not a finite number: 'inf'",
        "CRISPRGeneEffect.csv:4: field 'KRAS (3845)': not a finite number: '1e999'",
    ]
    effect.write_text("ModelID,TP53 (7157),TP53 (7157)\nACH-000001,-0.1,0.2\n")
    with pytest.raises(
        KgctlError,
        match=r"CRISPRGeneEffect.csv:1: columns 'TP53 \(7157\)' and "
        r"'TP53 \(7157\)' are the same gene TP53",
    ):
        ingest_files(graph, "depmap", [effect], tmp_path, {"source_version": "y"})
