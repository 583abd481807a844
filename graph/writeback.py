"""Generic write-back of a model run: scored relationships between any two labels of the schema,
and embeddings on any label with a cosine vector index per (label, model); and the delete that
removes exactly what a run wrote. Labels, types and property names come from the schema's
whitelist and the model registry; values are always parameters."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyarrow as pa

from kgctl.core.errors import KgctlError
from kgctl.core.provenance import PROVENANCE, Provenance
from kgctl.graph.connection import Connection
from kgctl.graph.schema import check_label, check_relationship_type, ensure_vector_index, snake

WRITE_BATCH = 10_000
PROPERTY = re.compile(r"^[a-z][a-z0-9_]*$")
EDGE_COLUMNS = ("start", "end", "score", "rank")


def embedding_property(model: str) -> str:
    if not PROPERTY.match(model):
        raise KgctlError(f"model name {model!r} cannot name a property")
    return f"embedding_{model}"


def vector_index_name(label: str, model: str) -> str:
    """One vector index per (label, model): `gene_embedding_cal`."""
    return f"{snake(check_label(label))}_{embedding_property(model)}"


def write_relationships(
    conn: Connection, rel_type: str, start_label: str, end_label: str, table: pa.Table, prov: Provenance, model: str
) -> int:
    """Replace the run's (`prov.run`) `rel_type` edges, idempotently, with one per row of
    `table`: columns start, end (node ids), score, rank and any other property columns; the
    provenance and the model's name go on every edge."""
    check_relationship_type(rel_type)
    check_label(start_label)
    check_label(end_label)
    missing = [c for c in EDGE_COLUMNS if c not in table.column_names]
    extra = [c for c in table.column_names if c not in EDGE_COLUMNS]
    bad = [c for c in extra if not PROPERTY.match(c) or c in (*PROVENANCE, "model")]
    if missing or bad:
        raise KgctlError(f"prediction table: missing {missing}, bad property names {bad}")
    delete_relationships(conn, rel_type, prov.run)
    sets = ", ".join(f"{c}: r.{c}" for c in ("score", "rank", *extra))
    cypher = (
        f"UNWIND $rows AS r MATCH (a:{start_label} {{id: r.start}}) MATCH (b:{end_label} {{id: r.end}}) "
        f"CREATE (a)-[p:{rel_type} {{{sets}}}]->(b) "
        f"SET p.model = $model, {Provenance.assignments('p')} RETURN count(p) AS n"
    )
    rows = table.to_pylist()
    written = 0
    for lo in range(0, len(rows), WRITE_BATCH):
        batch = {"rows": rows[lo : lo + WRITE_BATCH], "prov": prov.params(), "model": model}
        written += conn.query(cypher, batch, write=True)[0]["n"]
    if written != len(rows):
        raise KgctlError(f"{len(rows) - written} predicted {rel_type} edges name nodes not in the graph")
    return written


def delete_relationships(conn: Connection, rel_type: str, run_id: str) -> int:
    """Every `rel_type` edge the run wrote, in batches; returns how many there were."""
    check_relationship_type(rel_type)
    count = f"MATCH ()-[p:{rel_type}]->() WHERE p.run = $id RETURN count(p) AS n"
    before = int(conn.query(count, {"id": run_id})[0]["n"])
    conn.run_autocommit(
        f"MATCH ()-[p:{rel_type}]->() WHERE p.run = $id CALL (p) {{ DELETE p }} IN TRANSACTIONS OF 10000 ROWS",
        {"id": run_id},
    )
    left = int(conn.query(count, {"id": run_id})[0]["n"])
    if left:
        raise KgctlError(f"{left} {rel_type} edges of {run_id} survived the delete")
    return before


def write_embeddings(
    conn: Connection, label: str, model: str, run_id: str, ids: list[str], vectors: np.ndarray
) -> dict[str, Any]:
    """`embedding_<model>` (and `embedding_<model>_run`, its owner) on each node of `ids`, and the
    (label, model) vector index sized to the vectors."""
    check_label(label)
    prop = embedding_property(model)
    rows = [{"id": i, "v": v} for i, v in zip(ids, vectors.astype(float).tolist(), strict=True)]
    written = 0
    for lo in range(0, len(rows), WRITE_BATCH):
        written += conn.query(
            f"UNWIND $rows AS r MATCH (n:{label} {{id: r.id}}) "
            f"SET n.{prop} = r.v, n.{prop}_run = $run RETURN count(n) AS n",
            {"rows": rows[lo : lo + WRITE_BATCH], "run": run_id},
            write=True,
        )[0]["n"]
    index = vector_index_name(label, model)
    ensure_vector_index(conn, index, label, prop, int(vectors.shape[1]))
    return {"label": label, "property": prop, "count": written, "vector_index": index}


def delete_embeddings(conn: Connection, label: str, model: str, run_id: str) -> int:
    """Remove the embeddings the run still owns (a later run's stay), and the vector index once
    no node of the label has one."""
    check_label(label)
    prop = embedding_property(model)
    removed = int(
        conn.query(
            f"MATCH (n:{label}) WHERE n.{prop}_run = $id REMOVE n.{prop}, n.{prop}_run RETURN count(n) AS n",
            {"id": run_id},
            write=True,
        )[0]["n"]
    )
    if not conn.query(f"MATCH (n:{label}) WHERE n.{prop} IS NOT NULL RETURN n.id LIMIT 1"):
        conn.query(f"DROP INDEX {vector_index_name(label, model)} IF EXISTS", write=True)
    return removed
