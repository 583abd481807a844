"""Named queries: they run in READ transactions (a writing query is refused and writes
nothing), errors are one line naming the query, Python gets a DataFrame, and the graph-wide
queries answer on a small graph."""

from __future__ import annotations

import pandas as pd
import pytest
from neo4j.exceptions import Neo4jError

from kgctl import queries
from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection

pytestmark = pytest.mark.neo4j


def small_graph(conn: Connection) -> None:
    conn.query("CREATE (a:Gene {id: 'QA'})-[:INTERACTS_WITH {score: 900}]->(b:Gene {id: 'QB'}), "
               "(b)-[:INTERACTS_WITH {score: 700}]->(:Gene {id: 'QC'})", write=True)  # fmt: skip


def test_a_writing_query_is_refused_and_writes_nothing(
    graph: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(Neo4jError):
        graph.read("CREATE (:Gene {id: 'written'})")
    evil = queries.parse(
        "evil", "// Writes, which a named query must not.\nCREATE (:Gene {id: 'evil'})"
    )
    monkeypatch.setattr(queries, "available", lambda: {"evil": evil})
    with pytest.raises(KgctlError, match="query evil: tried to write; named queries are read-only"):
        queries.rows(graph, "evil", {})
    assert not graph.query("MATCH (g:Gene) WHERE g.id IN ['written', 'evil'] RETURN g")


def test_a_broken_query_is_one_line_naming_it(
    graph: Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = queries.parse("broken", "// Not Cypher.\nMATCH (n RETURN n")
    monkeypatch.setattr(queries, "available", lambda: {"broken": broken})
    with pytest.raises(
        KgctlError, match=r"^query broken: Neo\.ClientError\.Statement\.SyntaxError"
    ) as info:
        queries.rows(graph, "broken", {})
    assert "\n" not in str(info.value)


def test_graph_stats_and_the_dataframe_api(graph: Connection) -> None:
    small_graph(graph)
    frame = queries.run("graph-stats", graph)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["kind", "name", "count"]
    counts = {(r.kind, r.name): r.count for r in frame.itertuples()}
    assert counts[("label", "Gene")] == 3 and counts[("relationship", "INTERACTS_WITH")] == 2
    assert len(queries.run("graph-stats", graph, limit=1)) == 1
    with pytest.raises(KgctlError, match="'many' is not int"):
        queries.run("nearest", graph, gene="QA", k="many")
    with pytest.raises(KgctlError, match="1.5 is not int"):
        queries.run("nearest", graph, gene="QA", k=1.5)
    assert queries.run("run-summary", graph).empty  # no model run yet
