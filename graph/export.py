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
from collections.abc import Callable, Iterator
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
    from torch_geometric.data import Data, HeteroData

from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection
from kgctl.graph.derive import dataset_spec
from kgctl.graph.schema import (
    SCORE_PROPERTY,
    check_label,
    check_relationship_type,
    count_store,
)

CHUNK_NODES = 5_000  # start nodes per relationship query
READERS = 2  # relationship queries at once
VIEWS = ("gene-association", "context", "transcripts")
HETERO_VIEWS = ("context", "transcripts")


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
    """What changes whenever the graph does: counts per label and type (count store, no scan)
    and the newest run."""
    last = conn.query("MATCH (r:IngestRun) RETURN r.id AS id, r.finished_at AS at, r.status AS s "
                      "ORDER BY r.finished_at DESC, r.id LIMIT 1")  # fmt: skip
    return {"counts": count_store(conn), "last_run": last[0] if last else None}


def _session(conn: Connection) -> Any:
    return conn.driver.session(
        database=conn.database, notifications_min_severity=NotificationMinimumSeverity.OFF
    )


def node_index(conn: Connection, label: str) -> tuple[np.ndarray, list[str]]:
    """(internal ids, ids) of every node with the label, ordered by id."""
    check_label(label)
    with _session(conn) as session:
        row = session.run(f"MATCH (n:{label}) WITH n ORDER BY n.id "
                          "RETURN collect(id(n)) AS internal, collect(n.id) AS ids").single(strict=True)  # fmt: skip
    return np.asarray(row["internal"], dtype=np.int64), list(row["ids"])


def gene_features(
    conn: Connection, dataset: str, genes: list[str]
) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-gene vectors from a Dataset: the genes' own vector property (DepMap), the profile of
    each gene's perturbation (Perturb-seq: the mean if several), or the gene's column of a
    samples × genes expression matrix. Genes without one get a NaN row."""
    label, prop, features = dataset_spec(conn, dataset)
    index = {g: i for i, g in enumerate(genes)}
    if label == "Gene":
        found = conn.query(
            f"MATCH (g:Gene) WHERE g.{prop} IS NOT NULL RETURN g.id AS id, g.{prop} AS v"
        )
        x = np.full((len(genes), len(features)), np.nan, dtype=np.float32)
        for r in found:
            x[index[r["id"]]] = r["v"]
        return x, {"feature_source": "gene property", "property": prop, "features": features}
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
    conn: Connection,
    ends: tuple[str, str, str],
    start_internal: np.ndarray,
    end_internal: np.ndarray,
    weight: str,
    min_score: float | None = None,
) -> Iterator[pa.RecordBatch]:
    """(src, dst, score) of `(start)-[type]->(end)` as Arrow batches, in order, `CHUNK_NODES`
    start nodes per query, READERS queries at a time (Neo4j runs each on its own core); src/dst
    are positions in `start_internal` / `end_internal`. `weight` is a Cypher expression over `r`
    from this module's tables, never from a user."""
    start_label, rel_type, end_label = ends
    check_label(start_label)
    check_relationship_type(rel_type)
    check_label(end_label)
    filter_ = f"AND {weight} >= $min " if min_score is not None else ""
    cypher = (
        f"UNWIND $starts AS sid MATCH (a:{start_label})-[r:{rel_type}]->(b:{end_label}) "
        f"WHERE id(a) = sid {filter_}"
        f"RETURN collect(id(a)) AS s, collect(id(b)) AS d, collect(toFloat({weight})) AS w"
    )
    start_order, end_order = np.argsort(start_internal), np.argsort(end_internal)
    start_sorted, end_sorted = start_internal[start_order], end_internal[end_order]

    def fetch(start: int) -> pa.RecordBatch:
        with _session(conn) as session:
            starts = start_internal[start : start + CHUNK_NODES].tolist()
            row = session.run(cypher, {"starts": starts, "min": min_score}).single(strict=True)
        s = np.asarray(row["s"], dtype=np.int64)
        d = np.asarray(row["d"], dtype=np.int64)
        w = np.asarray([np.nan if v is None else v for v in row["w"]], dtype=np.float32)
        src = start_order[np.searchsorted(start_sorted, s)]
        dst = end_order[np.searchsorted(end_sorted, d)]
        return pa.record_batch(
            [pa.array(src), pa.array(dst), pa.array(w)], names=["src", "dst", "score"]
        )

    with ThreadPoolExecutor(READERS, thread_name_prefix="kgctl-export") as pool:
        yield from pool.map(fetch, range(0, len(start_internal), CHUNK_NODES))


EDGE_SCHEMA = pa.schema([("src", pa.int64()), ("dst", pa.int64()), ("score", pa.float32())])


def write_edges(
    path: Path, batches: Iterator[pa.RecordBatch]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stream batches into a parquet file; return the columns."""
    parts = []
    with pq.ParquetWriter(path, EDGE_SCHEMA) as writer:
        for batch in batches:
            writer.write_batch(batch)
            parts.append(batch)
    table = pa.Table.from_batches(parts, EDGE_SCHEMA)
    return (
        table.column("src").to_numpy(),
        table.column("dst").to_numpy(),
        table.column("score").to_numpy(),
    )


def read_edges(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = pq.read_table(path)
    return (
        table.column("src").to_numpy(),
        table.column("dst").to_numpy(),
        table.column("score").to_numpy(),
    )


def view_fingerprint(conn: Connection, params: dict[str, Any]) -> str:
    graph = graph_fingerprint(conn)
    return hashlib.sha256(
        json.dumps({"graph": graph, "params": params}, sort_keys=True, default=str).encode()
    ).hexdigest()


def cache_hit(out: Path, fingerprint: str, use_cache: bool) -> bool:
    meta = out / "meta.json"
    return (
        use_cache
        and meta.exists()
        and json.loads(meta.read_text()).get("fingerprint") == fingerprint
    )


def export_view(
    conn: Connection,
    view: str,
    out: Path,
    *,
    dataset: str | None = None,
    relationships: tuple[str, ...] = ("INTERACTS_WITH",),
    min_score: float | None = None,
    use_cache: bool = True,
) -> View | HeteroView:
    """Export `view` into `out` (parquet files, `data.pt`, `meta.json`) and return it."""
    if view not in VIEWS:
        raise KgctlError(f"unknown view {view!r}; choose from {', '.join(VIEWS)}")
    if view == "context":
        return export_context(conn, out, gene_dataset=dataset, use_cache=use_cache)
    if view == "transcripts":
        return export_transcripts(conn, out, use_cache=use_cache)
    for rel_type in relationships:
        check_relationship_type(rel_type)
    params = {"view": view, "dataset": dataset, "relationships": sorted(relationships),
              "min_score": min_score}  # fmt: skip
    fingerprint = view_fingerprint(conn, params)
    if cache_hit(out, fingerprint, use_cache):
        return load_view(out, cached=True)
    started = time.perf_counter()
    internal, genes = node_index(conn, "Gene")
    x, feature_meta = gene_features(conn, dataset, genes) if dataset else (None, {})
    out.mkdir(parents=True, exist_ok=True)
    edges = {}
    for rel_type in relationships:
        weight = f"r.{SCORE_PROPERTY.get(rel_type, 'score')}"
        chunks = relationship_chunks(
            conn, ("Gene", rel_type, "Gene"), internal, internal, weight, min_score
        )
        edges[rel_type] = write_edges(out / f"edges-{rel_type}.parquet", chunks)
    write_nodes(out / "nodes.parquet", genes, x)
    meta = {"fingerprint": fingerprint, **params, **{k: v for k, v in feature_meta.items() if k != "features"},
            "feature_names": feature_meta.get("features", []), "nodes": len(genes),
            "relationships": {t: len(e[0]) for t, e in edges.items()},
            "seconds": round(time.perf_counter() - started, 3)}  # fmt: skip
    result = View(genes, x, edges, meta)
    torch.save(result.to_pyg(), out / "data.pt")
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return result


def write_nodes(
    path: Path, ids: list[str], x: np.ndarray | None, extra: pa.Table | None = None
) -> None:
    nodes = {"index": pa.array(np.arange(len(ids))), "id": pa.array(ids, pa.string())}
    if x is not None:
        nodes["x"] = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1])
    if extra is not None:
        nodes |= {name: extra.column(name) for name in extra.column_names}
    pq.write_table(pa.table(nodes), path)


def read_nodes(path: Path) -> tuple[list[str], np.ndarray | None]:
    nodes = pq.read_table(path)
    x = None
    if "x" in nodes.column_names:
        column = nodes.column("x").combine_chunks()
        x = column.values.to_numpy(zero_copy_only=False).reshape(len(column), -1)
    return nodes.column("id").to_pylist(), x


# InfoAlign's context graph (methods/infoalign.md §1.2): the edge kinds and their walk weights.
CONTEXT_LABELS = ("Molecule", "Gene", "ExpressionProfile", "MorphologyProfile")
CONTEXT_EDGES: dict[tuple[str, str, str], str] = {
    ("Molecule", "TARGETS", "Gene"): "1.0",  # E1
    ("Molecule", "PERTURBS", "MorphologyProfile"): "1.0",  # E2
    ("Molecule", "PERTURBS", "ExpressionProfile"): "1.0",  # E3
    ("Gene", "PERTURBS", "ExpressionProfile"): "1.0",  # genetic perturbations (JUMP, Perturb-seq)
    ("Gene", "PERTURBS", "MorphologyProfile"): "1.0",
    ("Gene", "INTERACTS_WITH", "Gene"): "1.0",  # E4
    ("Molecule", "SIMILAR_TO", "Molecule"): "r.similarity",  # E6
    ("Gene", "SIMILAR_TO", "Gene"): "r.similarity",  # E7
    ("MorphologyProfile", "SIMILAR_TO", "MorphologyProfile"): "r.similarity",  # E8
    ("ExpressionProfile", "SIMILAR_TO", "ExpressionProfile"): "r.similarity",  # E9
}


@dataclass
class HeteroView:
    """A heterogeneous view: node ids, features and extra columns per label, edges per
    (start, type, end) with their weights."""

    nodes: dict[str, list[str]]
    x: dict[str, np.ndarray | None]
    edges: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray, np.ndarray]]
    meta: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pa.Table] = field(default_factory=dict)  # extra node columns per label

    def to_pyg(self) -> HeteroData:
        data = HeteroData()
        for label, ids in self.nodes.items():
            data[label].num_nodes = len(ids)
            data[label].node_ids = ids
            features = self.x.get(label)
            if features is not None:
                data[label].x = torch.from_numpy(np.ascontiguousarray(features))
        for key, (src, dst, weight) in self.edges.items():
            data[key].edge_index = torch.from_numpy(np.stack([src, dst])).long()
            data[key].edge_weight = torch.from_numpy(weight.astype(np.float32))
        return data

    def homogeneous(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
        """(edge_index in both directions, edge weight, node type per node, label order): the
        undirected graph InfoAlign walks on, nodes numbered label by label."""
        labels = list(self.nodes)
        offset = dict(
            zip(
                labels, np.cumsum([0] + [len(self.nodes[k]) for k in labels]).tolist(), strict=False
            )
        )
        src, dst, weight = [], [], []
        for (start, _, end), (s, d, w) in self.edges.items():
            src += [s + offset[start], d + offset[end]]
            dst += [d + offset[end], s + offset[start]]
            weight += [w, w]
        empty = np.zeros(0, dtype=np.int64)
        edge_index = torch.from_numpy(
            np.stack([np.concatenate(src or [empty]), np.concatenate(dst or [empty])])
        )
        node_type = torch.cat([torch.full((len(self.nodes[k]),), i) for i, k in enumerate(labels)])
        edge_weight = torch.from_numpy(np.concatenate(weight or [empty]).astype(np.float32))
        return edge_index.long(), edge_weight, node_type.long(), labels


def export_context(
    conn: Connection, out: Path, *, gene_dataset: str | None = None, use_cache: bool = True
) -> HeteroView:
    """InfoAlign's heterogeneous context graph: molecules (Morgan bits as features), genes
    (features from `gene_dataset`), expression and morphology profiles (their `features` when
    all have one length), and the CONTEXT_EDGES with their walk weights."""
    params = {"view": "context", "dataset": gene_dataset}

    def features(label: str, ids: list[str]) -> tuple[np.ndarray | None, str]:
        return node_features(conn, label, ids, gene_dataset)

    return export_hetero(conn, out, params, CONTEXT_LABELS, CONTEXT_EDGES, features, {}, use_cache)


# The transcripts view (IsoCLR): transcripts with their sequence and structure, their genes, and
# orthologs between genes.
TRANSCRIPT_COLUMNS = ("gene_symbol", "length", "cds_start", "cds_end", "exon_ends", "sequence")
TRANSCRIPT_EDGES: dict[tuple[str, str, str], str] = {
    ("Transcript", "ISOFORM_OF", "Gene"): "1.0",
    ("Gene", "ORTHOLOG_OF", "Gene"): "1.0",
}


def export_transcripts(conn: Connection, out: Path, *, use_cache: bool = True) -> HeteroView:
    """Transcripts (sequence, length, CDS, exon ends as columns of nodes-Transcript.parquet and
    `tables`), their ISOFORM_OF genes and the genes' ORTHOLOG_OF pairs."""

    def no_features(label: str, ids: list[str]) -> tuple[np.ndarray | None, str]:
        return None, "none (sequences are in the Transcript table)"

    columns: dict[str, tuple[str, ...]] = {"Transcript": TRANSCRIPT_COLUMNS}
    return export_hetero(conn, out, {"view": "transcripts"}, ("Transcript", "Gene"),
                         TRANSCRIPT_EDGES, no_features, columns, use_cache)  # fmt: skip


def node_table(
    conn: Connection, label: str, internal: np.ndarray, columns: tuple[str, ...]
) -> pa.Table:
    """Properties of the nodes, in `internal` order, fetched CHUNK_NODES at a time."""
    check_label(label)
    for column in columns:
        if not column.replace("_", "").isalnum():
            raise ValueError(f"bad property name {column!r}")
    fields = ", ".join(f"collect(n.{c}) AS {c}" for c in columns)
    cypher = f"UNWIND $ids AS nid MATCH (n:{label}) WHERE id(n) = nid RETURN {fields}"
    parts: dict[str, list[Any]] = {c: [] for c in columns}
    with _session(conn) as session:
        for start in range(0, len(internal), CHUNK_NODES):
            row = session.run(
                cypher, {"ids": internal[start : start + CHUNK_NODES].tolist()}
            ).single(strict=True)
            for c in columns:
                parts[c] += row[c]
    return pa.table({c: pa.array(v) for c, v in parts.items()})


def export_hetero(
    conn: Connection,
    out: Path,
    params: dict[str, Any],
    labels: tuple[str, ...],
    edge_spec: dict[tuple[str, str, str], str],
    features: Callable[[str, list[str]], tuple[np.ndarray | None, str]],
    columns: dict[str, tuple[str, ...]],
    use_cache: bool,
) -> HeteroView:
    """Nodes of `labels` (features, extra property columns) and the edges of `edge_spec` with
    their weights, into parquet + a HeteroData; cached by the graph's fingerprint."""
    fingerprint = view_fingerprint(conn, params)
    if cache_hit(out, fingerprint, use_cache):
        return load_hetero(out, cached=True)
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    internal: dict[str, np.ndarray] = {}
    nodes: dict[str, list[str]] = {}
    x: dict[str, np.ndarray | None] = {}
    tables: dict[str, pa.Table] = {}
    notes: dict[str, str] = {}
    for label in labels:
        internal[label], nodes[label] = node_index(conn, label)
        x[label], notes[label] = features(label, nodes[label])
        if label in columns:
            tables[label] = node_table(conn, label, internal[label], columns[label])
        write_nodes(out / f"nodes-{label}.parquet", nodes[label], x[label], tables.get(label))
    edges = {}
    for key, weight in edge_spec.items():
        start, rel_type, end = key
        if not len(internal[start]) or not len(internal[end]):
            continue
        path = out / f"edges-{start}-{rel_type}-{end}.parquet"
        found = write_edges(
            path, relationship_chunks(conn, key, internal[start], internal[end], weight)
        )
        if len(found[0]):
            edges[key] = found
        else:
            path.unlink()
    meta = {"fingerprint": fingerprint, **params, "nodes": {k: len(v) for k, v in nodes.items()},
            "features": notes, "relationships": {"|".join(k): len(v[0]) for k, v in edges.items()},
            "seconds": round(time.perf_counter() - started, 3)}  # fmt: skip
    result = HeteroView(nodes, x, edges, meta, tables)
    torch.save(result.to_pyg(), out / "data.pt")
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return result


def node_features(
    conn: Connection, label: str, ids: list[str], gene_dataset: str | None
) -> tuple[np.ndarray | None, str]:
    """A label's features in the context view, and a line saying what they are."""
    if label == "Gene":
        if gene_dataset is None:
            return None, "none (no --dataset)"
        return gene_features(conn, gene_dataset, ids)[0], f"from {gene_dataset}"
    prop = "fingerprint" if label == "Molecule" else "features"
    rows = conn.query(f"MATCH (n:{label}) RETURN n.id AS id, n.{prop} AS v ORDER BY id")
    values = [r["v"] for r in rows]
    if not values or any(v is None for v in values):
        return None, f"none (not every {label} has `{prop}`)"
    if label == "Molecule":
        packed = np.array([np.frombuffer(bytes(v), dtype=np.uint8) for v in values])
        return np.unpackbits(packed, axis=1), "Morgan fingerprint bits"
    if len({len(v) for v in values}) > 1:
        return None, "none (profiles of several datasets have different lengths)"
    return np.asarray(values, dtype=np.float32), "profile features"


def load_view(out: Path, cached: bool = False) -> View | HeteroView:
    """A view written by `export_view`, from its parquet files."""
    meta = json.loads((out / "meta.json").read_text())
    if meta["view"] in HETERO_VIEWS:
        return load_hetero(out, cached)
    ids, x = read_nodes(out / "nodes.parquet")
    edges = {t: read_edges(out / f"edges-{t}.parquet") for t in meta["relationships"]}
    return View(ids, None if x is None else x.astype(np.float32), edges, {**meta, "cached": cached})


def load_hetero(out: Path, cached: bool = False) -> HeteroView:
    meta = json.loads((out / "meta.json").read_text())
    nodes, x, tables = {}, {}, {}
    for label in meta["nodes"]:
        path = out / f"nodes-{label}.parquet"
        nodes[label], x[label] = read_nodes(path)
        extra = [c for c in pq.read_schema(path).names if c not in {"index", "id", "x"}]
        if extra:
            tables[label] = pq.read_table(path, columns=extra)
    edges = {}
    for name in meta["relationships"]:
        start, rel_type, end = name.split("|")
        edges[(start, rel_type, end)] = read_edges(out / f"edges-{start}-{rel_type}-{end}.parquet")
    return HeteroView(nodes, x, edges, {**meta, "cached": cached}, tables)
