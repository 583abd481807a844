"""The bulk path: neo4j-admin import files written by the same adapters give the same graph as the
online path; a non-empty database is refused, also when another writer commits while the import
files are being prepared."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgctl.core.errors import KgctlError
from kgctl.graph.connection import start_managed
from kgctl.ingest import bulk
from kgctl.ingest.bulk import bulk_ingest
from kgctl.ingest.pipeline import ingest
from kgctl.testing import generators
from kgctl.testing.fixtures import TestServer, graph_counts


@pytest.mark.slow
def test_bulk_equals_online(spare_server: TestServer, shared_data: Path, tmp_path: Path) -> None:
    mols = shared_data / "molecules" / "JUMP-Target-1_compound_metadata.tsv.gz"
    h5ad = generators.perturbseq_h5ad(tmp_path / "K562_bulk.h5ad", n_perturbations=12, n_readout=20)
    start_managed(spare_server.settings)
    result = bulk_ingest(spare_server.settings, "molecules", [mols], {}, rejects_dir=tmp_path / "rej")
    assert result["mode"] == "bulk" and result["status"] == "completed"
    with spare_server.connect() as conn:
        bulk = graph_counts(conn)
        row = conn.query(
            "MATCH (m:Molecule)-[r:TARGETS]->(g:Gene) RETURN properties(m) AS m, properties(r) AS r LIMIT 1"
        )[0]
        assert row["r"]["source"] == "molecules" and row["r"]["run"] == result["run_id"]
        assert row["r"]["licence"] == row["m"]["licence"] == "unknown" and row["m"]["created_at"]
        assert isinstance(row["m"]["fingerprint"], bytes) and len(row["m"]["fingerprint"]) == 256
        assert row["m"]["sources"] == ["molecules"]
        # later loads go online, on top of the bulk-loaded graph; re-ingesting the same table
        # online MERGEs onto exactly the nodes and relationships the import created
        ingest(conn, "perturbseq", [h5ad], {}, rejects_dir=tmp_path / "rej")
        again = ingest(conn, "molecules", [mols], {}, rejects_dir=tmp_path / "rej", force=True)
        assert again["mode"] == "online"
        online = graph_counts(conn)
    assert online["Molecule"] == bulk["Molecule"] and online["TARGETS"] == bulk["TARGETS"]
    assert online["IngestRun"] == 2 and online["PERTURBS"] == 12
    with pytest.raises(KgctlError, match=r"--bulk needs an empty database; this one has [\d,]+ nodes"):
        bulk_ingest(spare_server.settings, "molecules", [mols], {}, rejects_dir=tmp_path / "rej")


@pytest.mark.slow
def test_a_concurrent_writers_data_survives_bulk(
    spare_server: TestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer commits after the emptiness check, while --bulk writes its import files:
    the import must not replace the database (it rechecks on a read-only start)."""
    table = tmp_path / "mols.csv"
    table.write_text("name,smiles\naspirin,CC(=O)Oc1ccccc1C(=O)O\ncaffeine,Cn1cnc2c1c(=O)n(C)c(=O)n2C\n")
    start_managed(spare_server.settings)
    arguments = bulk.ImportFiles.arguments

    def write_meanwhile(files: bulk.ImportFiles) -> list[str]:
        with spare_server.connect() as other:
            other.query("CREATE (:Gene {id: 'COMMITTED-ELSEWHERE'})", write=True)
        return arguments(files)

    monkeypatch.setattr(bulk.ImportFiles, "arguments", write_meanwhile)
    with pytest.raises(KgctlError, match=r"--bulk: 1 nodes were written to the database while"):
        bulk_ingest(spare_server.settings, "molecules", [table], {}, rejects_dir=tmp_path / "rej")
    with spare_server.connect() as conn:  # back up, writable, with the other writer's node
        assert graph_counts(conn) == {"Gene": 1, "SchemaVersion": 1}
        conn.query("CREATE (g:Gene {id: 'writable'}) DELETE g", write=True)
