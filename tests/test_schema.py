"""The schema against a real Neo4j: idempotent, enforced, versioned, whitelisted."""

import re

import pytest
from neo4j.exceptions import ConstraintError

from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection
from kgctl.graph.schema import (
    CONSTRAINTS,
    INDEXES,
    NODE_LABELS,
    RETIRED_INDEXES,
    SCHEMA_VERSION,
    Index,
    apply_schema,
    check_label,
    describe_schema,
)


def test_every_architecture_label_has_a_unique_id_constraint(graph: Connection) -> None:
    described = describe_schema(graph)
    unique = {
        (c["labelsOrTypes"][0], tuple(c["properties"])) for c in described["constraints"] if c["type"] == "UNIQUENESS"
    }
    for label in NODE_LABELS:
        assert (label, ("id",)) in unique
    assert described["missing"] == []
    assert described["version"] == SCHEMA_VERSION


def test_apply_is_idempotent(graph: Connection) -> None:
    before = describe_schema(graph)
    again = apply_schema(graph)
    assert again["created"] == []
    assert len(again["unchanged"]) == len(CONSTRAINTS) + len(INDEXES)
    assert again["previous_version"] == SCHEMA_VERSION
    after = describe_schema(graph)
    assert after == before
    assert graph.query("MATCH (v:SchemaVersion) RETURN count(v) AS n")[0]["n"] == 1


def test_apply_recreates_what_was_dropped(graph: Connection) -> None:
    graph.query("DROP INDEX gene_string_id", write=True)
    assert describe_schema(graph)["missing"] == ["gene_string_id"]
    assert apply_schema(graph)["created"] == ["gene_string_id"]
    assert describe_schema(graph)["missing"] == []


def test_apply_drops_indexes_an_older_schema_had(graph: Connection) -> None:
    graph.query(
        "CREATE INDEX interacts_with_ingest_run IF NOT EXISTS FOR ()-[x:INTERACTS_WITH]-() ON (x.ingest_run)",
        write=True,
    )
    assert "interacts_with_ingest_run" in RETIRED_INDEXES
    apply_schema(graph)
    names = {row["name"] for row in graph.query("SHOW INDEXES YIELD name")}
    assert "interacts_with_ingest_run" not in names
    assert describe_schema(graph)["missing"] == []


def test_version_2_graph_migrates_to_one_provenance_vocabulary(graph: Connection) -> None:
    graph.query(
        "MATCH (v:SchemaVersion {id: 'kgctl'}) SET v.version = 2 "
        "CREATE (a:Gene {id: 'A', source: 'STRING', ingest_run: 'ingest-string-1'}), (b:Gene {id: 'B'}), "
        "(a)-[:INTERACTS_WITH {combined_score: 900, ingest_run: 'ingest-string-1'}]->(b), "
        "(a)-[:PREDICTED_ASSOCIATION {score: 0.9, run_id: 'cal-20260101-000000-abcdef'}]->(b)",
        write=True,
    )
    graph.query(
        "CREATE INDEX predicted_association_run_id IF NOT EXISTS FOR ()-[x:PREDICTED_ASSOCIATION]-() ON (x.run_id)",
        write=True,
    )
    assert apply_schema(graph)["previous_version"] == 2
    node = graph.query("MATCH (a:Gene {id: 'A'}) RETURN properties(a) AS p")[0]["p"]
    rels = {r["t"]: r["p"] for r in graph.query("MATCH ()-[r]->() RETURN type(r) AS t, properties(r) AS p")}
    assert node["run"] == rels["INTERACTS_WITH"]["run"] == "ingest-string-1"
    assert rels["PREDICTED_ASSOCIATION"]["run"] == "cal-20260101-000000-abcdef"
    assert not {"ingest_run", "run_id"} & {
        *node,
        *rels["INTERACTS_WITH"],
        *rels["PREDICTED_ASSOCIATION"],
    }
    names = {row["name"] for row in graph.query("SHOW INDEXES YIELD name")}
    assert "predicted_association_run_id" not in names and "predicted_association_run" in names
    assert describe_schema(graph)["version"] == SCHEMA_VERSION


def test_uniqueness_is_enforced(graph: Connection) -> None:
    graph.query("CREATE (:Gene {id: 'TP53'})", write=True)
    with pytest.raises(ConstraintError):
        graph.query("CREATE (:Gene {id: 'TP53'})", write=True)


def test_newer_graph_schema_is_refused(graph: Connection) -> None:
    graph.query("MATCH (v:SchemaVersion {id: 'kgctl'}) SET v.version = $v", {"v": SCHEMA_VERSION + 1}, write=True)
    try:
        with pytest.raises(KgctlError, match=f"schema version {SCHEMA_VERSION + 1}, newer than"):
            apply_schema(graph)
    finally:  # the session's server is shared: tests that do not wipe it must not see version + 1
        graph.query("MATCH (v:SchemaVersion {id: 'kgctl'}) SET v.version = $v", {"v": SCHEMA_VERSION}, write=True)


def test_labels_and_types_come_from_the_whitelist() -> None:
    assert check_label("Gene") == "Gene"
    with pytest.raises(KgctlError, match=re.escape("unknown node label 'Gene) DETACH DELETE")):
        check_label("Gene) DETACH DELETE (n")
    with pytest.raises(KgctlError, match="unknown relationship type"):
        Index("relationship", "LIKES", ("x",)).cypher()
    with pytest.raises(KgctlError, match="invalid property name"):
        Index("node", "Gene", ("id}) DELETE",)).cypher()
