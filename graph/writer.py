"""Batched, idempotent writes: one transaction per batch, UNWIND + MERGE on the unique `id`, nodes
before relationships. Labels and types are spliced into Cypher only after the whitelist check.

Rows travel as lists (`[id, v1, v2, …]`) with the property names in the statement: half the bytes
of maps, and named `SET`s keep Cypher from materialising the batch (a `SET n += map` forces Eager).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from neo4j import ManagedTransaction

from kgctl.core.errors import KgctlError
from kgctl.core.provenance import PROVENANCE, Provenance
from kgctl.graph.connection import Connection
from kgctl.graph.records import Edge, EdgeBlock, Node
from kgctl.graph.schema import check_label, check_relationship_type

PROPERTY = re.compile(r"^[a-z][a-z0-9_]*$")
RESERVED = {"id", "sources", *PROVENANCE}


def assignments(var: str, keys: Sequence[str], first: int, keep_existing: bool) -> str:
    """`SET` items naming each property; values are `row[first + i]`."""
    items = []
    for i, key in enumerate(keys, first):
        if not PROPERTY.match(key) or key in RESERVED:
            raise ValueError(f"bad property name {key!r}")
        value = f"row[{i}]"
        items.append(f"{var}.{key} = " + (f"coalesce({value}, {var}.{key})" if keep_existing else value))
    return ", ".join(items)


def node_statement(label: str, keys: Sequence[str]) -> str:
    """MERGE nodes on id; a property missing from a row (null) keeps the node's existing value."""
    check_label(label)
    sets = assignments("n", keys, 1, keep_existing=True)
    return (
        f"UNWIND $rows AS row MERGE (n:{label} {{id: row[0]}}) "
        f"ON CREATE SET {Provenance.assignments('n')} " + (f"SET {sets} " if sets else "") + "RETURN count(*) AS n"
    )


def sources_statement(label: str) -> str:
    """Add the source to each node's `sources` list (a separate statement: reading `sources` in the
    MERGE above would make Cypher materialise the whole batch before writing)."""
    check_label(label)
    return (
        f"UNWIND $ids AS id MATCH (n:{label} {{id: id}}) WHERE NOT $prov.source IN coalesce(n.sources, []) "
        "SET n.sources = coalesce(n.sources, []) + $prov.source"
    )


def edge_statement(rel_type: str, start_label: str, end_label: str, keys: Sequence[str]) -> str:
    """MERGE one relationship of the type per (start, end); its properties are the latest source's."""
    check_relationship_type(rel_type)
    check_label(start_label)
    check_label(end_label)
    sets = assignments("r", keys, 2, keep_existing=False)
    return (
        f"UNWIND $rows AS row MATCH (a:{start_label} {{id: row[0]}}) "
        f"MATCH (b:{end_label} {{id: row[1]}}) MERGE (a)-[r:{rel_type}]->(b) "
        f"SET {Provenance.assignments('r')}" + (f", {sets} " if sets else " ") + "RETURN count(*) AS n"
    )


def _as_lists(
    rows: Iterable[tuple[Sequence[str], dict[str, Any]]],
) -> tuple[list[str], list[list[Any]]]:
    rows = list(rows)
    keys = sorted({k for _, props in rows for k in props})
    return keys, [[*ids, *(props.get(k) for k in keys)] for ids, props in rows]


class Batch:
    """Nodes and relationships for one transaction; nodes with the same id are merged."""

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.edges: dict[tuple[str, str, str], list[tuple[tuple[str, str], dict[str, Any]]]] = defaultdict(list)
        self.blocks: list[EdgeBlock] = []
        self.size = 0
        self._statements: list[tuple[str, str, Sequence[Sequence[Any]]]] | None = None
        self.rows_so_far: dict[str, int] = {}

    def add_node(self, node: Node) -> None:
        rows = self.nodes[node.label]
        if node.id in rows:
            rows[node.id].update(node.props)
        else:
            rows[node.id] = dict(node.props)
            self.size += 1

    def add_edge(self, edge: Edge) -> None:
        key = (edge.type, edge.start_label, edge.end_label)
        self.edges[key].append(((edge.start_id, edge.end_id), edge.props))
        self.size += 1

    def add_edge_block(self, block: EdgeBlock) -> None:
        if len(block):
            self.blocks.append(block)
            self.size += len(block)

    def relationship_types(self) -> set[str]:
        return {t for t, _, _ in self.edges} | {b.type for b in self.blocks}

    def counts(self) -> tuple[int, int]:
        return (
            sum(len(v) for v in self.nodes.values()),
            sum(len(v) for v in self.edges.values()) + sum(len(b) for b in self.blocks),
        )

    def freeze(self, rows_so_far: dict[str, int] | None = None) -> None:
        """Build the statements now (in the parsing thread), not when the batch is written, and
        note the row counts up to the end of this batch (the run's progress once it commits)."""
        self._statements = self.statements()
        self.rows_so_far = dict(rows_so_far or {})

    def statements(self) -> list[tuple[str, str, Sequence[Sequence[Any]]]]:
        """(kind, Cypher, rows) in write order: nodes, then relationships."""
        if self._statements is not None:
            return self._statements
        out: list[tuple[str, str, Sequence[Sequence[Any]]]] = []
        for label, nodes in self.nodes.items():
            keys, rows = _as_lists(((node_id,), props) for node_id, props in nodes.items())
            out.append(("node", node_statement(label, keys), rows))
            out.append(("sources", sources_statement(label), [[node_id] for node_id in nodes]))
        for (rel_type, start, end), edges in self.edges.items():
            keys, rows = _as_lists(edges)
            out.append(("edge", edge_statement(rel_type, start, end, keys), rows))
        for block in self.blocks:
            cypher = edge_statement(block.type, block.start_label, block.end_label, sorted(block.props))
            out.append(("edge", cypher, block.as_rows()))
        return out


# The batch indexes committed so far: concurrent writers commit out of order, and a resumed run
# skips exactly these.
PROGRESS = (
    "MERGE (r:IngestRun {id: $id}) SET r += $props "
    "SET r.batches_committed = coalesce(r.batches_committed, []) + $index "
    "SET r.batches_done = size(r.batches_committed)"
)


def write_batch(
    conn: Connection,
    batch: Batch,
    prov: Provenance,
    progress: dict[str, Any] | None = None,
) -> tuple[int, int]:
    """Write one batch in one transaction, plus (optionally) the run's progress in the same one
    (`progress`: id, index, props), so a resumed run knows exactly which batches committed.
    Returns (nodes, relationships) written."""
    statements = batch.statements()
    params = {"prov": prov.params()}

    def work(tx: ManagedTransaction) -> tuple[int, int]:
        nodes = rels = 0
        for kind, cypher, rows in statements:
            if kind == "sources":
                tx.run(cypher, ids=[r[0] for r in rows], prov=prov.params()).consume()
                continue
            written = int(tx.run(cypher, {"rows": rows, **params}).single(strict=True)["n"])
            if kind == "node":
                nodes += written
            elif written < len(rows):
                raise KgctlError(
                    f"{len(rows) - written} of {len(rows)} relationships lost an endpoint "
                    f"({cypher.split('MERGE')[0]}); the batch was rolled back"
                )
            else:  # more rows than sent: parallel relationships already in the graph matched
                rels += len(rows)
        if progress is not None:
            tx.run(PROGRESS, progress).consume()
        return nodes, rels

    with conn.driver.session(database=conn.database) as session:
        return session.execute_write(work)
