"""Derived edges (`kgctl build …`): `SIMILAR_TO` among the profiles of one dataset or among
molecules, and `CO_ESSENTIAL` from a DepMap gene-effect dataset. Vectors are read from the graph,
pairs scored blockwise (`graph/similarity.py`), and the edges written with their parameters.

A build replaces the edges of an earlier build of the same kind (same type, dataset and metric),
so a stricter threshold leaves no stale edges. Each build records an `IngestRun` (adapter
`build:<kind>`); every edge carries the provenance vocabulary with that run, and the licence of
the data it was computed from.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from kgctl import __version__
from kgctl.core.errors import KgctlError
from kgctl.core.provenance import Provenance, now
from kgctl.graph.connection import Connection
from kgctl.graph.schema import SCORE_PROPERTY, apply_schema, check_label
from kgctl.graph.similarity import (
    INFOALIGN_FLOOR,
    INFOALIGN_KEEP,
    Pairs,
    ScoreBlock,
    cosine_scorer,
    essentiality_scorer,
    infoalign_cut,
    infoalign_threshold,
    knn_pairs,
    pairs_above,
    pearson_scorer,
    tanimoto_scorer,
    top_pairs,
    within_groups,
)

WRITE_BATCH = 20_000
SOURCE = "kgctl build"


@dataclass(frozen=True)
class Vectors:
    """Rows of one dataset: node ids, their label, the matrix (rows × features)."""

    label: str
    ids: list[str]
    matrix: np.ndarray
    licence: str  # of the data the vectors come from: derived edges keep its terms


def dataset_spec(conn: Connection, dataset: str) -> tuple[str, str, list[str]]:
    """(vector label, vector property, feature names) of a `Dataset` node, checked: the label is
    whitelisted and the property a plain name, since both go into Cypher."""
    rows = conn.query(
        "MATCH (d:Dataset {id: $id}) RETURN d.vector_label AS label, d.vector_property AS prop, d.features AS features",
        {"id": dataset},
    )
    if not rows:
        known = [r["id"] for r in conn.query("MATCH (d:Dataset) RETURN d.id AS id ORDER BY id")]
        raise KgctlError(f"no Dataset {dataset!r} in the graph; known: {', '.join(known) or 'none'}")
    label, prop = rows[0]["label"], rows[0]["prop"]
    check_label(label)
    if not prop or not prop.replace("_", "").isalnum():
        raise KgctlError(f"Dataset {dataset!r} names no usable vector property ({prop!r})")
    return label, prop, list(rows[0]["features"] or [])


def dataset_vectors(conn: Connection, dataset: str) -> Vectors:
    """The vectors a `Dataset` node describes: its `vector_property` on nodes of `vector_label`
    (per-gene vectors), or `features` on profiles whose `dataset` is this one."""
    label, prop, _ = dataset_spec(conn, dataset)
    if prop == "features":
        cypher = (
            f"MATCH (n:{label}) WHERE n.dataset = $id AND n.features IS NOT NULL "
            "RETURN n.id AS id, n.features AS v ORDER BY id"
        )
    else:
        cypher = f"MATCH (n:{label}) WHERE n.{prop} IS NOT NULL RETURN n.id AS id, n.{prop} AS v ORDER BY id"
    found = conn.query(cypher, {"id": dataset})
    if len(found) < 2:
        raise KgctlError(f"Dataset {dataset!r} has {len(found)} vectors; at least 2 are needed")
    matrix = np.array([r["v"] for r in found], dtype=np.float64)
    licence = conn.query("MATCH (d:Dataset {id: $id}) RETURN d.licence AS l", {"id": dataset})[0]["l"]
    return Vectors(label, [r["id"] for r in found], matrix, licence or "unknown")


def molecule_fingerprints(conn: Connection) -> tuple[Vectors, list[str]]:
    """The molecules' packed Morgan fingerprints, and their SMILES in the same order."""
    found = conn.query(
        "MATCH (m:Molecule) WHERE m.fingerprint IS NOT NULL RETURN m.id AS id, "
        "m.fingerprint AS fp, m.licence AS l, m.smiles AS s ORDER BY id"
    )
    if len(found) < 2:
        raise KgctlError(f"{len(found)} molecules with fingerprints; at least 2 are needed")
    packed = np.array([np.frombuffer(bytes(r["fp"]), dtype=np.uint8) for r in found])
    licence = "; ".join(sorted({r["l"] or "unknown" for r in found}))
    return Vectors("Molecule", [r["id"] for r in found], packed, licence), [r["s"] or "" for r in found]


def scaffold_pairs(packed: np.ndarray, smiles: list[str], threshold: float | None) -> tuple[Pairs, dict[str, Any]]:
    """Tanimoto pairs only within Murcko-scaffold groups (InfoAlign's E6): the pairs at or above
    `threshold`, or by InfoAlign's rule over the within-scaffold candidates."""
    from kgctl.graph.chem import scaffold_groups  # RDKit, only for this build

    candidates = within_groups(scaffold_groups(smiles), lambda m: tanimoto_scorer(packed[m]))
    cut = threshold if threshold is not None else infoalign_cut(candidates.score)
    keep = candidates.score >= cut
    rule: dict[str, Any] = {
        "selection": "threshold" if threshold is not None else "infoalign",
        "threshold": cut,
        "within": "scaffold",
        "candidates": len(candidates),
    }
    if threshold is None:
        rule |= {"floor": INFOALIGN_FLOOR, "keep": INFOALIGN_KEEP}
    return Pairs(candidates.i[keep], candidates.j[keep], candidates.score[keep]), rule


def choose_pairs(
    n: int, score: ScoreBlock, *, k: int | None, threshold: float | None, top: int | None
) -> tuple[Pairs, dict[str, Any]]:
    """k nearest neighbours, a fixed threshold, the top N, or (none given) InfoAlign's rule."""
    if sum(x is not None for x in (k, threshold, top)) > 1:
        raise KgctlError("give at most one of --k, --threshold and --top")
    if k is not None:
        return knn_pairs(n, score, k), {"selection": "knn", "k": k}
    if top is not None:
        return top_pairs(n, score, top), {"selection": "top", "top": top}
    if threshold is not None:
        return pairs_above(n, score, threshold), {"selection": "threshold", "threshold": threshold}
    t = infoalign_threshold(n, score)
    rule = {
        "selection": "infoalign",
        "threshold": t,
        "floor": INFOALIGN_FLOOR,
        "keep": INFOALIGN_KEEP,
    }
    return pairs_above(n, score, t), rule


def build_similarity(
    conn: Connection,
    *,
    dataset: str | None,
    molecules: bool = False,
    metric: str = "cosine",
    k: int | None = None,
    threshold: float | None = None,
    within_scaffold: bool = False,
) -> dict[str, Any]:
    """`SIMILAR_TO {similarity, metric, …}` among one dataset's profiles (cosine, or Pearson:
    the cosine of row-z-scored profiles, as InfoAlign's E7–E9 edges) or among
    molecules (Tanimoto on Morgan fingerprints; `within_scaffold`: only between molecules of one
    Murcko scaffold, as InfoAlign's context graph has them)."""
    if molecules == (dataset is not None):
        raise KgctlError("give either --dataset or --molecules")
    if within_scaffold and (not molecules or k is not None):
        raise KgctlError("--within-scaffold applies to --molecules, with --threshold or InfoAlign's rule")
    started = time.perf_counter()
    if molecules:
        vectors, smiles = molecule_fingerprints(conn)
        metric, scope = "tanimoto", "Molecule"
        if within_scaffold:
            pairs, rule = scaffold_pairs(vectors.matrix, smiles, threshold)
        else:
            pairs, rule = choose_pairs(
                len(vectors.ids), tanimoto_scorer(vectors.matrix), k=k, threshold=threshold, top=None
            )
    else:
        assert dataset is not None
        vectors, scope = dataset_vectors(conn, dataset), dataset
        scorers = {"cosine": cosine_scorer, "pearson": pearson_scorer}
        if metric not in scorers:
            raise KgctlError(f"unknown metric {metric!r} for profiles ({', '.join(scorers)})")
        pairs, rule = choose_pairs(
            len(vectors.ids), scorers[metric](vectors.matrix), k=k, threshold=threshold, top=None
        )
    props = {"metric": metric, "dataset": scope, **rule}
    return _write(conn, "SIMILAR_TO", vectors, pairs, props, started)


def build_coessentiality(
    conn: Connection,
    *,
    dataset: str,
    method: str = "pearson",
    top: int | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """`CO_ESSENTIAL {score, method}` between genes from a DepMap gene-effect dataset: the CAL
    reference (G = max(0, −effect), G·Gᵀ, top N) or Pearson correlation of the effect vectors."""
    started = time.perf_counter()
    vectors = dataset_vectors(conn, dataset)
    if vectors.label != "Gene":
        raise KgctlError(f"Dataset {dataset!r} holds {vectors.label} vectors, not per-gene effects")
    scorers = {"reference": essentiality_scorer, "pearson": pearson_scorer}
    if method not in scorers:
        raise KgctlError(f"unknown method {method!r}; choose from {', '.join(scorers)}")
    if top is None and threshold is None:
        top = 200_000 if method == "reference" else None
        threshold = 0.5 if method == "pearson" else None
    pairs, rule = choose_pairs(len(vectors.ids), scorers[method](vectors.matrix), k=None, threshold=threshold, top=top)
    props = {"method": method, "dataset": dataset, **rule}
    return _write(conn, "CO_ESSENTIAL", vectors, pairs, props, started)


def _write(
    conn: Connection, rel_type: str, vectors: Vectors, pairs: Pairs, props: dict[str, Any], started: float
) -> dict[str, Any]:
    """Replace the earlier build of this kind, then MERGE the pairs (lower id first)."""
    apply_schema(conn)
    kind = "metric" if "metric" in props else "method"
    identity = {"type": rel_type, **props}
    run_id = "build-" + hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    label = vectors.label
    conn.run_autocommit(
        f"MATCH ()-[r:{rel_type}]->() WHERE r.dataset = $dataset AND r.{kind} = $value "
        "CALL { WITH r DELETE r } IN TRANSACTIONS OF 20000 ROWS",
        {"dataset": props["dataset"], "value": props[kind]},
    )
    ids = vectors.ids
    rows = [
        (ids[i], ids[j], float(s))
        for i, j, s in zip(pairs.i.tolist(), pairs.j.tolist(), pairs.score.tolist(), strict=True)
    ]
    cypher = (
        f"UNWIND $rows AS row MATCH (a:{label} {{id: row[0]}}) MATCH (b:{label} {{id: row[1]}}) "
        f"MERGE (a)-[r:{rel_type}]->(b) SET r += $props, r.{SCORE_PROPERTY[rel_type]} = row[2], "
        + Provenance.assignments("r")
    )
    prov = Provenance(SOURCE, __version__, run_id, vectors.licence, now())
    for start in range(0, len(rows), WRITE_BATCH):
        conn.query(
            cypher, {"rows": rows[start : start + WRITE_BATCH], "props": props, "prov": prov.params()}, write=True
        )
    seconds = round(time.perf_counter() - started, 3)
    record = {
        "source": SOURCE,
        "adapter": f"build:{rel_type.lower()}",
        "status": "completed",
        "licence": vectors.licence,
        "finished_at": now(),
        "labels": [label],
        "types": [rel_type],
        "options": json.dumps(props, sort_keys=True),
        "relationships_written": len(rows),
        "nodes_scored": len(ids),
        "seconds": seconds,
        "kgctl_version": __version__,
    }
    conn.query("MERGE (r:IngestRun {id: $id}) SET r += $props", {"id": run_id, "props": record}, write=True)
    scores = pairs.score
    return {
        "run_id": run_id,
        "type": rel_type,
        **props,
        "nodes": len(ids),
        "relationships": len(rows),
        "score_min": float(scores.min()) if len(scores) else None,
        "score_max": float(scores.max()) if len(scores) else None,
        "seconds": seconds,
    }
