"""Named queries: they run in READ transactions (a writing query is refused and writes
nothing), errors are one line naming the query, Python gets a DataFrame, and the graph-wide
queries answer on a small graph."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from neo4j.exceptions import Neo4jError

from kgctl import queries
from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection
from kgctl.graph.writeback import write_embeddings

pytestmark = pytest.mark.neo4j


def small_graph(conn: Connection) -> None:
    conn.query(
        "CREATE (a:Gene {id: 'QA'})-[:INTERACTS_WITH {score: 900}]->(b:Gene {id: 'QB'}), "
        "(b)-[:INTERACTS_WITH {score: 700}]->(:Gene {id: 'QC'})",
        write=True,
    )


def test_a_writing_query_is_refused_and_writes_nothing(graph: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(Neo4jError):
        graph.read("CREATE (:Gene {id: 'written'})")
    evil = queries.parse("evil", "// Writes, which a named query must not.\nCREATE (:Gene {id: 'evil'})")
    monkeypatch.setattr(queries, "available", lambda: {"evil": evil})
    with pytest.raises(KgctlError, match="query evil: tried to write; named queries are read-only"):
        queries.rows(graph, "evil", {})
    assert not graph.query("MATCH (g:Gene) WHERE g.id IN ['written', 'evil'] RETURN g")


def test_a_broken_query_is_one_line_naming_it(graph: Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = queries.parse("broken", "// Not Cypher.\nMATCH (n RETURN n")
    monkeypatch.setattr(queries, "available", lambda: {"broken": broken})
    with pytest.raises(KgctlError, match=r"^query broken: Neo\.ClientError\.Statement\.SyntaxError") as info:
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
    nearest = queries.get("nearest")
    with pytest.raises(KgctlError, match="k: 99999999999999999999 is outside Neo4j's 64-bit"):
        nearest.bind({"gene": "QA", "k": "99999999999999999999"})
    with pytest.raises(KgctlError, match="bound: inf is not a finite number"):
        queries.get("cross-boundary").bind({"bound": "inf"})
    assert queries.run("run-summary", graph).empty  # no model run yet


def predictions_graph(conn: Connection) -> None:
    """Genes with a known interaction, two CAL runs written back (cal-2 the newer), a molecule,
    gene and transcript embeddings with their vector indexes."""
    conn.query(
        """
        CREATE (a:Gene {id: 'QA'}), (b:Gene {id: 'QB'}), (c:Gene {id: 'QC'}), (d:Gene {id: 'QD'}),
               (a)-[:INTERACTS_WITH {combined_score: 900, source: 'STRING', run: 'ingest-1'}]->(b),
               (:ModelRun {id: 'cal-1', model: 'cal', written_back_at: '2026-01-01T00:00:00Z'}),
               (:ModelRun {id: 'cal-2', model: 'cal', written_back_at: '2026-02-01T00:00:00Z'}),
               (a)-[:PREDICTED_ASSOCIATION {run: 'cal-2', model: 'cal', source: 'kgctl cal', score: 0.9,
                    rank: 1, input_cosine: 0.05, split: 'none'}]->(c),
               (a)-[:PREDICTED_ASSOCIATION {run: 'cal-2', model: 'cal', source: 'kgctl cal', score: 0.8,
                    rank: 2, input_cosine: 0.1, split: 'none'}]->(b),
               (a)-[:PREDICTED_ASSOCIATION {run: 'cal-1', model: 'cal', source: 'kgctl cal', score: 0.95,
                    rank: 1, input_cosine: 0.0, split: 'none'}]->(d),
               (:Molecule {id: 'M1', name: 'drug one'})-[:TARGETS]->(c),
               (:Transcript {id: 'T1', length: 90, exon_ends: [30, 90]})-[:ISOFORM_OF]->(a),
               (:Transcript {id: 'T2', length: 60, exon_ends: [60]})-[:ISOFORM_OF]->(a),
               (:ModelRun {id: 'ia-1', model: 'infoalign', written_back_at: '2025-12-01T00:00:00Z'}),
               (m2:Molecule {id: 'M2', name: 'drug two'})-[:SIMILAR_TO {similarity: 0.9}]->(m3:Molecule {id: 'M3'}),
               (m3)-[:TARGETS]->(d),
               (m2)-[:PREDICTED_ASSOCIATION {run: 'ia-1', model: 'infoalign', score: 0.7, rank: 1,
                    split: 'novel', known: false, via: ['M3']}]->(d)
    """,
        write=True,
    )
    genes = np.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 1.0]])
    write_embeddings(conn, "Gene", "cal", "cal-2", ["QA", "QB", "QC", "QD"], genes)
    write_embeddings(conn, "Transcript", "isoclr", "iso-1", ["T1", "T2"], genes[:2] + 0.5)
    write_embeddings(conn, "Molecule", "infoalign", "ia-1", ["M1", "M2", "M3"], genes[:3])
    conn.run_autocommit("CALL db.awaitIndexes(300)")


def test_every_shipped_query_answers_on_a_graph_with_predictions(graph: Connection) -> None:
    predictions_graph(graph)

    def ask(name: str, **params: Any) -> list[dict[str, Any]]:
        answered[name] = True
        return list(queries.run(name, graph, **params).to_dict("records"))

    answered: dict[str, bool] = {}
    assert [r["partner"] for r in ask("novel-candidates", gene="QA")] == ["QC"]  # newest run; QB known
    assert [r["partner"] for r in ask("novel-candidates", gene="QA", run="cal-1")] == ["QD"]
    assert {r["run"] for r in ask("cross-boundary", bound=0.2)} == {"cal-2"}
    assert {r["partner"] for r in ask("understudied")} == {"QB", "QC"}
    nearest = ask("nearest", gene="QA", k=2)
    assert [r["gene"] for r in nearest] == ["QB", "QC"] and nearest[0]["known_interaction"] is True
    around = ask("gene-neighbourhood", gene="QA")
    assert {(r["kind"], r["partner"], r["run"]) for r in around} == {
        ("known", "QB", None),
        ("predicted", "QC", "cal-2"),
        ("predicted", "QB", "cal-2"),
        ("predicted", "QD", "cal-1"),
    }
    behind = ask("evidence", a="QA", b="QB")
    assert {(r["type"], r["source"]) for r in behind} == {
        ("INTERACTS_WITH", "STRING"),
        ("PREDICTED_ASSOCIATION", "kgctl cal"),
    }
    drugs = ask("targets-of-partners", gene="QA")
    assert [(r["molecule"], r["via_partner"]) for r in drugs] == [("M1", "QC")]
    assert any(r["name"] == "Gene" and r["count"] == 4 for r in ask("graph-stats"))
    summary = ask("run-summary", model="cal")
    assert summary[0]["run"] == "cal-2" and summary[0]["edges"] == 2 and summary[0]["embeddings"] == 4
    diverging = ask("isoforms-diverging")
    assert [(r["gene"], r["isoform_a"], r["isoform_b"]) for r in diverging] == [("QA", "T1", "T2")]
    like = ask("molecules-like", molecule="drug one", k=2)
    assert [r["molecule"] for r in like] == ["M2", "M3"] and like[1]["known_targets"] == ["QD"]
    predicted = ask("predicted-targets", molecule="drug two")
    assert [(r["gene"], r["via_molecules"], r["path"]) for r in predicted] == [("QD", ["M3"], ["drug two", "M3", "QD"])]
    assert set(answered) == set(queries.available())  # a new query file needs a case here


def test_the_browser_guide_and_stylesheet_served_on_loopback(graph: Connection) -> None:
    from urllib.error import HTTPError
    from urllib.request import urlopen

    from kgctl.graph.schema import NODE_LABELS
    from kgctl.queries.browser import GuideServer, browser_link, example

    predictions_graph(graph)
    ex = example(graph)  # the most predictions in the newest written-back run, its top partner
    assert (ex.gene, ex.partner, ex.model, ex.run) == ("QA", "QC", "cal", "cal-2")
    with GuideServer(ex) as served:
        assert served.base_url.startswith("http://localhost:")
        with urlopen(served.guide_url) as response:
            assert response.headers["Access-Control-Allow-Origin"] == "*"  # Browser fetches cross-origin
            page = response.read().decode()
        with urlopen(served.style_url) as response:
            style = response.read().decode()
        with pytest.raises(HTTPError, match="404"):
            urlopen(served.base_url + "/etc/passwd")
    assert page.count("<slide") == 2 + len(queries.available())  # welcome, the graph, one per query
    for query in queries.available().values():
        assert f"<h3>{query.name}</h3>" in page
    # Parameters as `:param k => v` lines (integers stay integers); the example's gene and pair.
    assert ":param gene =&gt; &quot;QA&quot;;\n:param limit =&gt; 50;" in page  # gene-neighbourhood
    assert ":param a =&gt; &quot;QA&quot;;\n:param b =&gt; &quot;QC&quot;;" in page  # evidence
    assert "]-&gt;(partner:Gene)" in page and "]->(partner" not in page  # Cypher HTML-escaped
    assert f":style {served.style_url}" in page
    assert all(f"node.{label} {{" in style for label in NODE_LABELS)
    assert "relationship.PREDICTED_ASSOCIATION {\n  color: #E0245E;\n  shaft-width: 4px;" in style
    link = browser_link(
        "http://127.0.0.1:7474/browser/", "bolt://127.0.0.1:7687", "neo4j", "neo4j", ":play http://127.0.0.1:1/g.html"
    )
    assert link == (
        "http://127.0.0.1:7474/browser/?dbms=bolt://neo4j@127.0.0.1:7687&db=neo4j"
        "&preselectAuthMethod=NATIVE&cmd=edit&arg=:play+http://127.0.0.1:1/g.html"
    )
