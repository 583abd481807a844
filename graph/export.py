"""Views exported from Neo4j for the models: Arrow record batches written as a parquet dataset,
plus a PyTorch Geometric `Data` with the id map back to the graph (`kgctl export`, or
`export_view` from Python).

Speed comes from asking Neo4j for columns, not rows: each query returns a few `collect()`ed lists
per chunk of start nodes (internal node ids, not strings), which the driver decodes in bulk, and
the chunks become Arrow record batches without a Python object per relationship.

A view is cached under its output folder by a fingerprint of the graph (node and relationship
counts, the newest `IngestRun`) and of the view's parameters: exporting an unchanged graph again
returns the cached view at once.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from neo4j import NotificationMinimumSeverity

with warnings.catch_warnings():  # PyG's import-time torch.jit deprecation notices
    warnings.simplefilter("ignore", FutureWarning)
    from torch_geometric.data import Data

from kgctl.errors import KgctlError
from kgctl.graph.connection import Connection
from kgctl.graph.schema import (
    NODE_LABELS,
    RELATIONSHIP_TYPES,
    check_label,
    check_relationship_type,
)

CHUNK_NODES = 5_000  # start nodes per relationship query
READERS = 2  # relationship queries at once
SCORES = {"INTERACTS_WITH": "combined_score", "CO_ESSENTIAL": "score", "SIMILAR_TO": "similarity"}
VIEWS = ("gene-association",)


@dataclass
class View:
    """An exported view: node ids in index order, features, and edges as index pairs."""

    node_ids: list[str]
    x: np.ndarray | None  # float32 [N, F], NaN where a node has no vector
    edges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # type → (src, dst, score)
    meta: dict[str, Any] = field(default_factory=dict)

    def to_pyg(self) -> Data:
        """One `Data`: x, edge_index (both directions of every undirected pair), edge_weight, the
        relationship type per edge as `edge_type` (index into `meta['relationship_types']`)."""
        types = sorted(self.edges)
        src = [np.concatenate([s, d]) for s, d, _ in (self.edges[t] for t in types)]
        dst = [np.concatenate([d, s]) for s, d, _ in (self.edges[t] for t in types)]
        weight = [np.concatenate([w, w]) for _, _, w in (self.edges[t] for t in types)]
        kind = [np.full(len(s), i) for i, s in enumerate(src)]
        empty = np.zeros(0, dtype=np.int64)
        data = Data(
            x=torch.from_numpy(self.x) if self.x is not None else None,
            edge_index=torch.from_numpy(
                np.stack([np.concatenate(src or [empty]), np.concatenate(dst or [empty])])
            ).long(),  # fmt: skip
            edge_weight=torch.from_numpy(np.concatenate(weight or [empty]).astype(np.float32)),
            edge_type=torch.from_numpy(np.concatenate(kind or [empty])).long(),
            num_nodes=len(self.node_ids),
        )
        data.node_ids = self.node_ids
        data.relationship_types = types
        return data


def graph_fingerprint(conn: Connection) -> dict[str, Any]:
    """What changes whenever the graph does: counts per label and type (from Neo4j's count store,
    no scan; one round trip) and the newest run."""
    parts = [f"MATCH (n:{label}) RETURN 'node' AS kind, '{label}' AS name, count(n) AS n"
             for label in NODE_LABELS]  # fmt: skip
    parts += [f"MATCH ()-[r:{t}]->() RETURN 'relationship' AS kind, '{t}' AS name, count(r) AS n"
              for t in RELATIONSHIP_TYPES]  # fmt: skip
    counts = conn.query(" UNION ALL ".join(parts))  # whitelisted names only
    last = conn.query("MATCH (r:IngestRun) RETURN r.id AS id, r.finished_at AS at, r.status AS s "
                      "ORDER BY r.finished_at DESC, r.id LIMIT 1")  # fmt: skip
    return {"counts": [[r["kind"], r["name"], r["n"]] for r in counts],
            "last_run": last[0] if last else None}  # fmt: skip


def _session(conn: Connection) -> Any:
    return conn.driver.session(
        database=conn.database, notifications_min_severity=NotificationMinimumSeverity.OFF
    )


def gene_nodes(conn: Connection) -> tuple[np.ndarray, list[str]]:
    """(internal ids, gene ids), ordered by gene id."""
    with _session(conn) as session:
        row = session.run("MATCH (g:Gene) WITH g ORDER BY g.id "
                          "RETURN collect(id(g)) AS internal, collect(g.id) AS ids").single()  # fmt: skip
    return np.asarray(row["internal"], dtype=np.int64), list(row["ids"])


def gene_features(
    conn: Connection, dataset: str, genes: list[str]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-gene vectors from a Dataset: the genes' own vector property (DepMap), the profile of
    each gene's perturbation (Perturb-seq: the mean if several), or the gene's column of a
    samples × genes expression matrix. Genes without one get a NaN row."""
    rows = conn.query("MATCH (d:Dataset {id: $id}) RETURN d.vector_label AS label, "
                      "d.vector_property AS prop, d.features AS features", {"id": dataset})  # fmt: skip
    if not rows:
        raise KgctlError(f"no Dataset {dataset!r} in the graph")
    label, prop, features = rows[0]["label"], rows[0]["prop"], rows[0]["features"] or []
    index = {g: i for i, g in enumerate(genes)}
    if label == "Gene":
        if not prop or not prop.replace("_", "").isalnum():
            raise KgctlError(f"Dataset {dataset!r} names no usable vector property ({prop!r})")
        found = conn.query(
            f"MATCH (g:Gene) WHERE g.{prop} IS NOT NULL RETURN g.id AS id, g.{prop} AS v"
        )
        x = np.full((len(genes), len(features)), np.nan, dtype=np.float32)
        for r in found:
            x[index[r["id"]]] = r["v"]
        return x, {"feature_source": "gene property", "property": prop, "features": features}
    check_label(label)
    perturbed = conn.query(
        f"MATCH (g:Gene)-[:PERTURBS]->(p:{label} {{dataset: $id}}) "
        "RETURN g.id AS id, p.features AS v", {"id": dataset})  # fmt: skip
    if perturbed:
        sums = np.zeros((len(genes), len(features)), dtype=np.float64)
        counts = np.zeros(len(genes))
        for r in perturbed:
            sums[index[r["id"]]] += np.asarray(r["v"], dtype=np.float64)
            counts[index[r["id"]]] += 1
        with np.errstate(invalid="ignore"):
            x = (sums / counts[:, None]).astype(np.float32)
        return x, {"feature_source": "perturbation profile", "features": features}
    profiles = conn.query(f"MATCH (p:{label} {{dataset: $id}}) RETURN p.id AS id, p.features AS v "
                          "ORDER BY id", {"id": dataset})  # fmt: skip
    if not profiles:
        raise KgctlError(f"Dataset {dataset!r} has no vectors")
    matrix = np.asarray([r["v"] for r in profiles], dtype=np.float32)  # samples × genes
    x = np.full((len(genes), len(profiles)), np.nan, dtype=np.float32)
    for column, symbol in enumerate(features):
        if symbol in index:
            x[index[symbol]] = matrix[:, column]
    return x, {
        "feature_source": "expression matrix column",
        "features": [r["id"] for r in profiles],
    }


def relationship_chunks(
    conn: Connection, rel_type: str, internal: np.ndarray, min_score: float | None
) -> Iterator[pa.RecordBatch]:
    """(src, dst, score) as Arrow batches, in order, `CHUNK_NODES` start genes per query, READERS
    queries at a time (Neo4j runs each on its own core); src/dst are the positions of the end
    nodes in `internal` (gene index order)."""
    check_relationship_type(rel_type)
    key = SCORES.get(rel_type, "score")
    filter_ = f"AND r.{key} >= $min " if min_score is not None else ""
    cypher = (
        f"UNWIND $starts AS sid MATCH (a:Gene)-[r:{rel_type}]->(b:Gene) WHERE id(a) = sid "
        f"{filter_}RETURN collect(id(a)) AS s, collect(id(b)) AS d, collect(toFloat(r.{key})) AS w"
    )
    order = np.argsort(internal)
    sorted_ids = internal[order]

    def fetch(start: int) -> pa.RecordBatch:
        with _session(conn) as session:
            starts = internal[start : start + CHUNK_NODES].tolist()
            row = session.run(cypher, {"starts": starts, "min": min_score}).single(strict=True)
        s = np.asarray(row["s"], dtype=np.int64)
        d = np.asarray(row["d"], dtype=np.int64)
        w = np.asarray([np.nan if v is None else v for v in row["w"]], dtype=np.float32)
        src = order[np.searchsorted(sorted_ids, s)]
        dst = order[np.searchsorted(sorted_ids, d)]
        return pa.record_batch(
            [pa.array(src), pa.array(dst), pa.array(w)], names=["src", "dst", "score"]
        )

    with ThreadPoolExecutor(READERS, thread_name_prefix="kgctl-export") as pool:
        yield from pool.map(fetch, range(0, len(internal), CHUNK_NODES))


def export_view(
    conn: Connection,
    view: str,
    out: Path,
    *,
    dataset: str | None = None,
    relationships: tuple[str, ...] = ("INTERACTS_WITH",),
    min_score: float | None = None,
    use_cache: bool = True,
) -> View:
    """Export `view` into `out` (parquet files, `data.pt`, `meta.json`) and return it."""
    if view not in VIEWS:
        raise KgctlError(f"unknown view {view!r}; choose from {', '.join(VIEWS)}")
    for rel_type in relationships:
        check_relationship_type(rel_type)
    params = {
        "view": view,
        "dataset": dataset,
        "relationships": sorted(relationships),
        "min_score": min_score,
    }
    fingerprint = hashlib.sha256(
        json.dumps(
            {"graph": graph_fingerprint(conn), "params": params}, sort_keys=True, default=str
        ).encode()
    ).hexdigest()
    meta_path = out / "meta.json"
    if use_cache and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") == fingerprint:
            return load_view(out, cached=True)
    started = time.perf_counter()
    internal, genes = gene_nodes(conn)
    x, feature_meta = gene_features(conn, dataset, genes) if dataset else (None, {})
    out.mkdir(parents=True, exist_ok=True)
    edges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    counts = {}
    for rel_type in relationships:
        path = out / f"edges-{rel_type}.parquet"
        schema = pa.schema([("src", pa.int64()), ("dst", pa.int64()), ("score", pa.float32())])
        parts = []
        with pq.ParquetWriter(path, schema) as writer:
            for batch in relationship_chunks(conn, rel_type, internal, min_score):
                writer.write_batch(batch)
                parts.append(batch)
        table = pa.Table.from_batches(parts, schema)
        edges[rel_type] = (table.column("src").to_numpy(), table.column("dst").to_numpy(),
                           table.column("score").to_numpy())  # fmt: skip
        counts[rel_type] = table.num_rows
    nodes = {"index": pa.array(np.arange(len(genes))), "id": pa.array(genes, pa.string())}
    if x is not None:
        nodes["x"] = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])
    pq.write_table(pa.table(nodes), out / "nodes.parquet")
    meta = {"fingerprint": fingerprint, **params, **{k: v for k, v in feature_meta.items() if k != "features"},
            "feature_names": feature_meta.get("features", []), "nodes": len(genes),
            "relationships": counts, "seconds": round(time.perf_counter() - started, 3)}  # fmt: skip
    result = View(genes, x, edges, meta)
    torch.save(result.to_pyg(), out / "data.pt")
    meta_path.write_text(json.dumps(meta, indent=1))
    return result


def load_view(out: Path, cached: bool = False) -> View:
    """A view written by `export_view`, from its parquet files."""
    meta = json.loads((out / "meta.json").read_text())
    nodes = pq.read_table(out / "nodes.parquet")
    x = None
    if "x" in nodes.column_names:
        column = nodes.column("x").combine_chunks()
        x = column.values.to_numpy().reshape(len(column), -1).astype(np.float32)
    edges = {}
    for rel_type in meta["relationships"]:
        table = pq.read_table(out / f"edges-{rel_type}.parquet")
        edges[rel_type] = (table.column("src").to_numpy(), table.column("dst").to_numpy(),
                           table.column("score").to_numpy())  # fmt: skip
    return View(nodes.column("id").to_pylist(), x, edges, {**meta, "cached": cached})
