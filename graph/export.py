"""The one exporter of views (`kgctl export`, or `export_view` from Python): it reads a bound
view spec (`graph/views.py`) and writes Arrow record batches as parquet, plus a PyTorch Geometric
`Data` (one label) or `HeteroData` with the id maps back to the graph.

Speed comes from asking Neo4j for columns, not rows: each query returns a few `collect()`ed lists
per chunk of start nodes (internal node ids, not strings), which the driver decodes in bulk, and
the chunks become Arrow record batches without a Python object per relationship.

A view is cached under its output folder by a fingerprint of what it reads (counts of its labels
and types, the newest `IngestRun` that wrote them) and of its parameters: exporting again after
unrelated writes (predictions, other sources) returns the cached view at once.
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
    from torch_geometric.data import Data, HeteroData

from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection
from kgctl.graph.derive import dataset_spec
from kgctl.graph.schema import check_label, count_store
from kgctl.graph.views import BoundView, EdgeSpec, Features, view_spec

CHUNK_NODES = 5_000  # start nodes per relationship query
READERS = 2  # relationship queries at once


@dataclass
class View:
    """An exported view: node ids in index order, features, and edges as index pairs."""

    node_ids: list[str]
    x: np.ndarray | None  # float32 [N, F], NaN where a node has no vector
    edges: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]  # type → (src, dst, score)
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, hetero: HeteroView) -> View:
        """The one label of a homogeneous view, with its edges by relationship type."""
        (label,) = hetero.nodes
        x = hetero.x[label]
        return cls(
            hetero.nodes[label],
            None if x is None else x.astype(np.float32),
            {t: e for (_, t, _), e in hetero.edges.items()},
            hetero.meta,
        )

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
            ).long(),
            edge_weight=torch.from_numpy(np.concatenate(weight or [empty]).astype(np.float32)),
            edge_type=torch.from_numpy(np.concatenate(kind or [empty])).long(),
            num_nodes=len(self.node_ids),
        )
        data.node_ids = self.node_ids
        data.relationship_types = types
        return data


def _session(conn: Connection) -> Any:
    return conn.driver.session(database=conn.database, notifications_min_severity=NotificationMinimumSeverity.OFF)


def _single(conn: Connection, cypher: str, params: dict[str, Any] | None = None) -> Any:
    """The one row of a read, in a managed transaction: a transient error (a lock held by a
    concurrent ingest) is retried by the driver rather than raised."""
    with _session(conn) as session:
        return session.execute_read(lambda tx: tx.run(cypher, params or {}).single(strict=True))


def node_index(conn: Connection, label: str) -> tuple[np.ndarray, list[str]]:
    """(internal ids, ids) of every node with the label, ordered by id."""
    check_label(label)
    row = _single(
        conn, f"MATCH (n:{label}) WITH n ORDER BY n.id RETURN collect(id(n)) AS internal, collect(n.id) AS ids"
    )
    return np.asarray(row["internal"], dtype=np.int64), list(row["ids"])


def gene_features(conn: Connection, dataset: str, genes: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Per-gene vectors from a Dataset: the genes' own vector property (DepMap), the profile of
    each gene's perturbation (Perturb-seq: the mean if several), or the gene's column of a
    samples × genes expression matrix (L1000's probes matched by their gene symbols; the mean of
    a gene's probes). Genes without one get a NaN row."""
    label, prop, features = dataset_spec(conn, dataset)
    index = {g: i for i, g in enumerate(genes)}
    if label == "Gene":
        found = conn.query(f"MATCH (g:Gene) WHERE g.{prop} IS NOT NULL RETURN g.id AS id, g.{prop} AS v")
        x = np.full((len(genes), len(features)), np.nan, dtype=np.float32)
        for r in found:
            x[index[r["id"]]] = r["v"]
        return x, {"feature_source": "gene property", "property": prop, "features": features}
    perturbed = conn.query(
        f"MATCH (g:Gene)-[:PERTURBS]->(p:{label} {{dataset: $id}}) RETURN g.id AS id, p.features AS v", {"id": dataset}
    )
    if perturbed:
        sums = np.zeros((len(genes), len(features)), dtype=np.float64)
        counts = np.zeros(len(genes))
        for r in perturbed:
            sums[index[r["id"]]] += np.asarray(r["v"], dtype=np.float64)
            counts[index[r["id"]]] += 1
        with np.errstate(invalid="ignore"):
            x = (sums / counts[:, None]).astype(np.float32)
        return x, {"feature_source": "perturbation profile", "features": features}
    profiles = conn.query(
        f"MATCH (p:{label} {{dataset: $id}}) RETURN p.id AS id, p.features AS v ORDER BY id", {"id": dataset}
    )
    if not profiles:
        raise KgctlError(f"Dataset {dataset!r} has no vectors")
    matrix = np.asarray([r["v"] for r in profiles], dtype=np.float64)  # samples × genes (or probes)
    symbols = conn.query("MATCH (d:Dataset {id: $id}) RETURN d.feature_symbols AS s", {"id": dataset})[0]["s"]
    columns = symbols or features  # L1000 names probes and gives their genes' symbols beside them
    sums = np.zeros((len(genes), len(profiles)))
    counts = np.zeros(len(genes))
    for column, symbol in enumerate(columns):
        if symbol in index:  # a gene with several probes gets their mean
            sums[index[symbol]] += matrix[:, column]
            counts[index[symbol]] += 1
    with np.errstate(invalid="ignore"):
        x = (sums / counts[:, None]).astype(np.float32)
    return x, {
        "feature_source": "expression matrix column" + (" (probes by gene symbol)" if symbols else ""),
        "features": [r["id"] for r in profiles],
    }


def relationship_chunks(
    conn: Connection,
    edge: EdgeSpec,
    start_internal: np.ndarray,
    end_internal: np.ndarray,
    min_score: float | None = None,
    licences: set[str] | None = None,
) -> Iterator[pa.RecordBatch]:
    """(src, dst, score) of the spec's `(start)-[type]->(end)` as Arrow batches, in order,
    `CHUNK_NODES` start nodes per query, READERS queries at a time (Neo4j runs each on its own
    core); src/dst are positions in `start_internal` / `end_internal`, score the spec's weight.
    The relationships' licences are added to `licences`."""
    weight = edge.weight  # checked by EdgeSpec: a number or r.<property>
    filter_ = f"AND {weight} >= $min " if min_score is not None else ""
    cypher = (
        f"UNWIND $starts AS sid MATCH (a:{edge.start})-[r:{edge.type}]->(b:{edge.end}) "
        f"WHERE id(a) = sid {filter_}"
        f"RETURN collect(id(a)) AS s, collect(id(b)) AS d, collect(toFloat({weight})) AS w, "
        "collect(DISTINCT r.licence) AS l"
    )
    start_order, end_order = np.argsort(start_internal), np.argsort(end_internal)
    start_sorted, end_sorted = start_internal[start_order], end_internal[end_order]

    def fetch(start: int) -> tuple[pa.RecordBatch, list[str]]:
        starts = start_internal[start : start + CHUNK_NODES].tolist()
        row = _single(conn, cypher, {"starts": starts, "min": min_score})
        s = np.asarray(row["s"], dtype=np.int64)
        d = np.asarray(row["d"], dtype=np.int64)
        w = np.asarray([np.nan if v is None else v for v in row["w"]], dtype=np.float32)
        # An end node written after the node index was read (a concurrent ingest) is not in
        # this view: its edges are left out, never mapped to a neighbour's row.
        at = np.minimum(np.searchsorted(end_sorted, d), max(len(end_sorted) - 1, 0))
        known = end_sorted[at] == d if len(end_sorted) else np.zeros(len(d), dtype=bool)
        s, d, w = s[known], d[known], w[known]
        src = start_order[np.searchsorted(start_sorted, s)]
        dst = end_order[np.searchsorted(end_sorted, d)]
        batch = pa.record_batch([pa.array(src), pa.array(dst), pa.array(w)], names=["src", "dst", "score"])
        return batch, list(row["l"])

    with ThreadPoolExecutor(READERS, thread_name_prefix="kgctl-export") as pool:
        for batch, found in pool.map(fetch, range(0, len(start_internal), CHUNK_NODES)):
            if licences is not None:
                licences.update(found)
            yield batch


EDGE_SCHEMA = pa.schema([("src", pa.int64()), ("dst", pa.int64()), ("score", pa.float32())])


def write_edges(path: Path, batches: Iterator[pa.RecordBatch]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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


def view_fingerprint(conn: Connection, bound: BoundView, dataset_label: str | None) -> str:
    """What changes when anything the view reads does: the counts of its labels and types
    (count store, no scan), the newest IngestRun that wrote one of them (runs that do not
    record what they wrote count as writing everything), and the view's parameters."""
    labels, types = bound.reads(dataset_label)
    counts = count_store(conn)
    last = conn.query(
        "MATCH (r:IngestRun) WHERE (r.labels IS NULL AND r.types IS NULL) "
        "OR any(l IN coalesce(r.labels, []) WHERE l IN $labels) "
        "OR any(t IN coalesce(r.types, []) WHERE t IN $types) "
        "RETURN r.id AS id, r.finished_at AS at, r.status AS s ORDER BY r.finished_at DESC, r.id LIMIT 1",
        {"labels": labels, "types": types},
    )
    reads = {
        "nodes": {k: counts["nodes"].get(k, 0) for k in labels},
        "relationships": {t: counts["relationships"].get(t, 0) for t in types},
        "last_run": last[0] if last else None,
    }
    return hashlib.sha256(
        json.dumps({"reads": reads, "params": bound.params()}, sort_keys=True, default=str).encode()
    ).hexdigest()


def cache_hit(out: Path, fingerprint: str, use_cache: bool) -> bool:
    meta = out / "meta.json"
    return use_cache and meta.exists() and json.loads(meta.read_text()).get("fingerprint") == fingerprint


def dataset_licence(conn: Connection, dataset: str) -> str | None:
    rows = conn.query("MATCH (d:Dataset {id: $id}) RETURN d.licence AS l", {"id": dataset})
    return rows[0]["l"] if rows else None


def features_of(
    conn: Connection, rule: Features | None, label: str, ids: list[str], dataset: str | None
) -> tuple[np.ndarray | None, str, list[str]]:
    """A label's features under its rule: (matrix or None, a line saying what they are, feature
    names)."""
    if rule is None:
        return None, "none", []
    if rule.rule == "dataset":
        if dataset is None:
            return None, "none (no --dataset)", []
        x, meta = gene_features(conn, dataset, ids)
        return x, f"from {dataset} ({meta['feature_source']})", list(meta["features"])
    check_label(label)
    rows = conn.query(f"MATCH (n:{label}) RETURN n.id AS id, n.{rule.prop} AS v, n.dataset AS d ORDER BY id")
    values = [r["v"] for r in rows]
    if not values or any(v is None for v in values):
        return None, f"none (not every {label} has `{rule.prop}`)", []
    if rule.rule == "bits":
        packed = np.array([np.frombuffer(bytes(v), dtype=np.uint8) for v in values])
        return np.unpackbits(packed, axis=1), f"{rule.prop} bits", []
    return vector_blocks(values, [str(r["d"] or "") for r in rows], rule.prop)


def vector_blocks(
    values: list[list[float]], datasets: list[str], prop: str
) -> tuple[np.ndarray | None, str, list[str]]:
    """Profile vectors as one matrix. Profiles of one dataset share its columns; those of several
    datasets (feature spaces) get a block of columns each, NaN outside it, named `dataset:j`, so
    no two spaces' columns are ever mixed."""
    groups = sorted(set(datasets))
    widths: dict[str, set[int]] = {g: set() for g in groups}
    for v, g in zip(values, datasets, strict=True):
        widths[g].add(len(v))
    uneven = [g for g, w in widths.items() if len(w) > 1]
    if uneven:
        return None, f"none (profiles of dataset {uneven[0]!r} have different lengths)", []
    if len(groups) == 1:
        return np.asarray(values, dtype=np.float32), f"{prop} vectors", []
    width = {g: w.pop() for g, w in widths.items()}
    start = dict(zip(groups, np.cumsum([0] + [width[g] for g in groups]).tolist(), strict=False))
    x = np.full((len(values), sum(width.values())), np.nan, dtype=np.float32)
    for i, (v, g) in enumerate(zip(values, datasets, strict=True)):
        x[i, start[g] : start[g] + width[g]] = v
    names = [f"{g}:{j}" for g in groups for j in range(width[g])]
    return x, f"{prop} vectors of {len(groups)} datasets, a column block each", names


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
    """Export the registered `view` into `out` (parquet files, `data.pt`, `meta.json`) and
    return it: a `View` for a one-label view, else a `HeteroView`."""
    bound = view_spec(view).bind(dataset=dataset, relationships=relationships, min_score=min_score)
    return export(conn, bound, out, use_cache=use_cache)


def export(conn: Connection, bound: BoundView, out: Path, *, use_cache: bool = True) -> View | HeteroView:
    """Nodes of the spec's labels (features by their rule, extra property columns) and its edges
    with their weights, into parquet + PyG; cached by `view_fingerprint`."""
    spec = bound.spec
    dataset_label = dataset_spec(conn, bound.dataset)[0] if bound.dataset else None
    fingerprint = view_fingerprint(conn, bound, dataset_label)
    if cache_hit(out, fingerprint, use_cache):
        return load_view(out, cached=True)
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    internal: dict[str, np.ndarray] = {}
    nodes: dict[str, list[str]] = {}
    x: dict[str, np.ndarray | None] = {}
    tables: dict[str, pa.Table] = {}
    notes: dict[str, str] = {}
    names: dict[str, list[str]] = {}
    for label in spec.labels:
        internal[label], nodes[label] = node_index(conn, label)
        x[label], notes[label], names[label] = features_of(
            conn, spec.features.get(label), label, nodes[label], bound.dataset
        )
        if label in spec.columns:
            tables[label] = node_table(conn, label, internal[label], spec.columns[label])
        write_nodes(out / f"nodes-{label}.parquet", nodes[label], x[label], tables.get(label))
    licences: set[str] = set()
    if bound.dataset:
        licences.add(dataset_licence(conn, bound.dataset) or "unknown")
    edges = {}
    for edge in bound.edges:
        if not spec.homogeneous and (not len(internal[edge.start]) or not len(internal[edge.end])):
            continue
        path = out / f"edges-{edge.start}-{edge.type}-{edge.end}.parquet"
        chunks = relationship_chunks(conn, edge, internal[edge.start], internal[edge.end], bound.min_score, licences)
        found = write_edges(path, chunks)
        if len(found[0]) or spec.homogeneous:  # a one-label view keeps every requested type
            edges[edge.key] = found
        else:
            path.unlink()
    # Written to meanwhile (a concurrent ingest): the view is what was there when each part was
    # read, so it is never a cache hit later.
    unchanged = view_fingerprint(conn, bound, dataset_label) == fingerprint
    meta = {
        "fingerprint": fingerprint if unchanged else None,
        **bound.params(),
        "homogeneous": spec.homogeneous,
        "nodes": {k: len(v) for k, v in nodes.items()},
        "features": notes,
        "feature_names": names,
        "licences": sorted(licences),
        "relationships": {"|".join(k): len(v[0]) for k, v in edges.items()},
        "seconds": round(time.perf_counter() - started, 3),
    }
    result = HeteroView(nodes, x, edges, meta, tables)
    shaped: View | HeteroView = View.of(result) if spec.homogeneous else result
    torch.save(shaped.to_pyg(), out / "data.pt")
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return shaped


def write_nodes(path: Path, ids: list[str], x: np.ndarray | None, extra: pa.Table | None = None) -> None:
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


@dataclass
class HeteroView:
    """An exported view: node ids, features and extra columns per label, edges per
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
        offset = dict(zip(labels, np.cumsum([0] + [len(self.nodes[k]) for k in labels]).tolist(), strict=False))
        src, dst, weight = [], [], []
        for (start, _, end), (s, d, w) in self.edges.items():
            src += [s + offset[start], d + offset[end]]
            dst += [d + offset[end], s + offset[start]]
            weight += [w, w]
        empty = np.zeros(0, dtype=np.int64)
        edge_index = torch.from_numpy(np.stack([np.concatenate(src or [empty]), np.concatenate(dst or [empty])]))
        node_type = torch.cat([torch.full((len(self.nodes[k]),), i) for i, k in enumerate(labels)])
        edge_weight = torch.from_numpy(np.concatenate(weight or [empty]).astype(np.float32))
        return edge_index.long(), edge_weight, node_type.long(), labels


def node_table(conn: Connection, label: str, internal: np.ndarray, columns: tuple[str, ...]) -> pa.Table:
    """Properties of the nodes (None where a node lacks one), in `internal` order, fetched
    CHUNK_NODES at a time."""
    check_label(label)
    for column in columns:
        if not column.replace("_", "").isalnum():
            raise ValueError(f"bad property name {column!r}")
    fields = ", ".join(f"collect([n.{c}]) AS {c}" for c in columns)  # [x]: collect() drops nulls
    cypher = f"UNWIND $ids AS nid MATCH (n:{label}) WHERE id(n) = nid RETURN {fields}"
    parts: dict[str, list[Any]] = {c: [] for c in columns}
    for start in range(0, len(internal), CHUNK_NODES):
        row = _single(conn, cypher, {"ids": internal[start : start + CHUNK_NODES].tolist()})
        for c in columns:
            parts[c] += [cell[0] for cell in row[c]]
    return pa.table({c: pa.array(v) for c, v in parts.items()})


def load_view(out: Path, cached: bool = False) -> View | HeteroView:
    """A view written by `export_view`, from its parquet files."""
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
    result = HeteroView(nodes, x, edges, {**meta, "cached": cached}, tables)
    return View.of(result) if meta["homogeneous"] else result
