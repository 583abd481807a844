"""Injection through every option that names something and through ingest fields: stored as
data (values are Cypher parameters; names derived from options are slugged to property-name
characters) or refused in one line; never a label, type or property outside the whitelist, and
nothing already in the graph changes. Run ids and query names cannot reach outside their folders."""

from __future__ import annotations

import csv
import gzip
import re
from pathlib import Path

import pytest

from kgctl import queries
from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection
from kgctl.graph.derive import build_similarity
from kgctl.graph.schema import NODE_LABELS, RELATIONSHIP_TYPES, VERSION_LABEL
from kgctl.models import runs
from kgctl.testing.fixtures import TestServer, graph_counts, ingest_files, run_cli
from kgctl.testing.fuzz import INJECTIONS

PROPERTY = r"^[a-z][a-z0-9_]*$"


def whitelisted(graph: Connection) -> None:
    """Every label and type is the schema's; every property name is plain snake case."""
    labels = {r["l"] for r in graph.query("MATCH (n) UNWIND labels(n) AS l RETURN DISTINCT l")}
    types = {r["t"] for r in graph.query("MATCH ()-[r]->() RETURN DISTINCT type(r) AS t")}
    keys = {
        r["k"]
        for r in graph.query(
            "MATCH (n) UNWIND keys(n) AS k RETURN DISTINCT k UNION "
            "MATCH ()-[r]->() UNWIND keys(r) AS k RETURN DISTINCT k"
        )
    }
    assert labels <= {*NODE_LABELS, VERSION_LABEL} and types <= set(RELATIONSHIP_TYPES)
    bad = [k for k in keys if not re.match(PROPERTY, k)]
    assert bad == []


def molecules_file(path: Path, name: str, target: str) -> Path:
    """A Repurposing-Hub-like table, quoted as a CSV writer quotes (a field may hold `"`)."""
    with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(["pert_iname", "smiles", "target", "moa"])
        writer.writerow([name, "CCO", target, name])
        writer.writerow(["aspirin", "CC(=O)Oc1ccccc1C(=O)O", "PTGS1", "COX inhibitor"])
        writer.writerow(["bad", name, "PTGS2", "x"])  # an injection string as SMILES: a reject
    return path


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_strings_in_options_and_fields_are_data(graph: Connection, tmp_path: Path, text: str) -> None:
    ingest_files(
        graph, "molecules", [molecules_file(tmp_path / "a.tsv.gz", "keep", "PTGS1")], tmp_path, {"source_version": "1"}
    )
    kept = graph_counts(graph)
    result = ingest_files(
        graph,
        "molecules",
        [molecules_file(tmp_path / "m.tsv.gz", text, "TP53")],
        tmp_path,
        {"source_name": text, "source_version": text, "licence": text},
    )
    assert result["status"] == "completed" and result["rows_rejected"] == 1  # the SMILES row
    stored = graph.query(
        "MATCH (m:Molecule)-[t:TARGETS]->(:Gene {id: 'TP53'}) "
        "RETURN m.name AS name, t.moa AS moa, t.source AS source, "
        "t.source_version AS version, t.licence AS licence"
    )
    assert stored == [{"name": text, "moa": text, "source": text, "version": text, "licence": text}]
    after = graph_counts(graph)
    assert all(after.get(k, 0) >= v for k, v in kept.items())  # nothing deleted
    matrix = tmp_path / "matrix.tsv"
    matrix.write_text("gene\ts1\ts2\nTP53\t1\t2\nEGFR\t3\t4\n")
    ingest_files(graph, "expression", [matrix], tmp_path, {"dataset": text, "mode": "genes", "source_version": text})
    dataset = graph.query("MATCH (d:Dataset) WHERE d.name = $n RETURN d.vector_property AS p", {"n": text})
    assert len(dataset) == 1
    vector = graph.query(f"MATCH (g:Gene {{id: 'EGFR'}}) RETURN g.`{dataset[0]['p']}` AS v")
    assert vector == [{"v": [3.0, 4.0]}]
    whitelisted(graph)
    # Options naming what to read: refused in one line, nothing written.
    before = graph_counts(graph)
    with pytest.raises(KgctlError):
        build_similarity(graph, dataset=text, molecules=False, k=2, threshold=None)
    _, rows = queries.rows(graph, "gene-neighbourhood", {"gene": text})
    assert rows == []
    assert graph_counts(graph) == before


@pytest.mark.parametrize(
    "run_id", ["../../etc", "/tmp", "cal-20261130-181500-1a2b3c/..", "cal-20261130-181500-1a2b3c/.", "x' OR 1=1"]
)
def test_run_ids_cannot_name_paths(tmp_path: Path, run_id: str) -> None:
    (tmp_path / "runs").mkdir()
    with pytest.raises(KgctlError, match="is not a run id"):
        runs.load_run(tmp_path, run_id)
    with pytest.raises(KgctlError, match="is not a run id"):
        runs.delete(None, tmp_path, run_id)
    assert (tmp_path / "runs").exists()


def test_query_names_and_params_from_the_command_line(neo4j_server: TestServer, tmp_path: Path) -> None:
    outside = tmp_path / "evil.cypher"
    outside.write_text("MATCH (n) DETACH DELETE n")
    for name in (
        "../../" + str(outside.with_suffix("")),
        str(outside),
        "graph-stats; MATCH (n) DELETE n",
    ):
        proc = run_cli(neo4j_server.env, "query", name)
        assert proc.returncode != 0 and "no query" in proc.stderr and "Traceback" not in proc.stderr
    proc = run_cli(neo4j_server.env, "query", "gene-neighbourhood", "--param", "gene=') DETACH DELETE n //", "--json")
    assert proc.returncode == 0, proc.stderr
