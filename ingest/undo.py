"""`kgctl ingest undo RUN`: remove what one ingest run wrote, e.g. the partial graph of a failed
non-strict run. Its relationships go; the nodes it created go unless another source also wrote
them or another run's relationships reach them; per-release vector properties named by the
Datasets it created go from the nodes that hold them. Properties it set on nodes that others
created stay (nothing records what they were before). The IngestRun is kept, marked `undone`, so
the same command ingests the files again from the start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kgctl.core.errors import KgctlError
from kgctl.core.provenance import now
from kgctl.graph.connection import Connection
from kgctl.graph.schema import NODE_LABELS, RELATIONSHIP_TYPES, check_label, check_relationship_type
from kgctl.graph.writeback import PROPERTY
from kgctl.ingest.pipeline import existing_run, lock_held

CHUNK = 10_000


def undo(conn: Connection, run_id: str) -> dict[str, Any]:
    """Remove what ingest run `run_id` wrote; the counts of what went and what stayed."""
    run = existing_run(conn, run_id)
    if run is None:
        raise KgctlError(
            f"no ingest run {run_id!r} in the graph (`kgctl query graph-stats` lists "
            "the runs; `MATCH (r:IngestRun) RETURN r.id, r.status` too)"
        )
    if run.get("status") == "undone":
        return {"run_id": run_id, "already_undone": True, "undone_at": run.get("undone_at")}
    if run.get("status") == "running" and lock_held(Path(run.get("lock_file") or "")):
        raise KgctlError(f"{run_id} is running now; undo it once it has ended (or been stopped)")
    labels = [check_label(x) for x in (run.get("labels") or NODE_LABELS)]
    types = [check_relationship_type(t) for t in (run.get("types") or RELATIONSHIP_TYPES)]
    properties = _vector_properties(conn, run_id)
    relationships = 0
    for rel_type in types:
        relationships += _in_chunks(conn, f"MATCH ()-[r:{rel_type}]->() WHERE r.run = $id", "r", "DELETE r", run_id)
    nodes = kept = 0
    for label in labels:
        nodes += _in_chunks(
            conn,
            f"MATCH (n:{label}) WHERE n.run = $id AND size(coalesce(n.sources, [])) <= 1 AND NOT EXISTS {{ (n)--() }}",
            "n",
            "DELETE n",
            run_id,
        )
        kept += conn.query(f"MATCH (n:{label}) WHERE n.run = $id RETURN count(n) AS n", {"id": run_id})[0]["n"]
    removed_properties = {}
    for label, prop in properties:
        removed_properties[f"{label}.{prop}"] = _in_chunks(
            conn, f"MATCH (n:{label}) WHERE n.{prop} IS NOT NULL", "n", f"REMOVE n.{prop}", run_id
        )
    result = {
        "run_id": run_id,
        "source": run.get("source"),
        "status_before": run.get("status"),
        "relationships": relationships,
        "nodes": nodes,
        "nodes_kept_shared": kept,
        "vector_properties": removed_properties,
        "undone_at": now(),
    }
    conn.query(
        "MATCH (r:IngestRun {id: $id}) SET r.status = 'undone', r.undone_at = $at, "
        "r.batches_done = 0, r.batches_committed = [], r.undo = $undo",
        {"id": run_id, "at": result["undone_at"], "undo": json.dumps(result)},
        write=True,
    )
    return result


def _vector_properties(conn: Connection, run_id: str) -> list[tuple[str, str]]:
    """The per-release vector properties of the Datasets the run created, where no other Dataset
    names the same property (profile datasets share `features` on nodes of their own)."""
    found = conn.query(
        "MATCH (d:Dataset {run: $id}) WHERE d.vector_label IS NOT NULL "
        "AND d.vector_property IS NOT NULL AND NOT EXISTS { MATCH (o:Dataset) "
        "WHERE o.run <> $id AND o.vector_label = d.vector_label "
        "AND o.vector_property = d.vector_property } "
        "RETURN DISTINCT d.vector_label AS label, d.vector_property AS prop",
        {"id": run_id},
    )
    out = []
    for row in found:
        if row["prop"] == "features" or not PROPERTY.match(row["prop"]):
            continue  # a shared name, or not one kgctl writes
        out.append((check_label(row["label"]), str(row["prop"])))
    return out


def _in_chunks(conn: Connection, match: str, var: str, action: str, run_id: str) -> int:
    """`match` then `action` on `var`, in transactions of CHUNK rows; how many rows matched."""
    count = int(conn.query(f"{match} RETURN count(*) AS n", {"id": run_id})[0]["n"])
    if count:
        conn.run_autocommit(f"{match} CALL ({var}) {{ {action} }} IN TRANSACTIONS OF {CHUNK} ROWS", {"id": run_id})
    return count
