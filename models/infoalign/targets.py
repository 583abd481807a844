"""Drug targets from molecule representations (beyond the paper): a molecule's targets scored
from its nearest molecules' known targets (k-nearest-neighbour transfer), in InfoAlign space or
by Tanimoto on fingerprints, a random forest on fingerprints, or by walks through the graph; evaluated
on the molecules whose TARGETS edges were held out of the walk graph before pretraining."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from scipy import sparse
from sklearn.ensemble import RandomForestClassifier

from kgctl.graph.chem import morgan_bits
from kgctl.graph.similarity import tanimoto, unit_rows
from kgctl.models.evaluators import Context
from kgctl.models.infoalign.data import Inputs
from kgctl.models.retrieval import Queries, RetrievalOptions, RetrievalTask, register_retrieval

BLOCK = 2048
BITS = 2048


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.asarray(unit_rows(a) @ unit_rows(b).T)


def label_matrix(pairs: np.ndarray, molecules: np.ndarray, genes: np.ndarray) -> np.ndarray:
    """float32 [molecules, genes]: 1 where the pair is known."""
    row = {int(m): i for i, m in enumerate(molecules)}
    col = {int(g): j for j, g in enumerate(genes)}
    out = np.zeros((len(molecules), len(genes)), dtype=np.float32)
    for m, g in pairs.tolist():
        if m in row and g in col:
            out[row[m], col[g]] = 1.0
    return out


def knn_scores(similarity: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each query's gene scores Σ over its k most similar references of max(similarity, 0) ·
    label, and the neighbours [q, k] (most similar first)."""
    k = min(k, similarity.shape[1])
    near = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    sims = np.take_along_axis(similarity, near, 1)
    order = np.argsort(-sims, axis=1)
    near, sims = np.take_along_axis(near, order, 1), np.take_along_axis(sims, order, 1)
    return np.einsum("qk,qkg->qg", np.maximum(sims, 0), labels[near]), near


@dataclass
class HeldOut(Queries):
    """The molecules whose TARGETS edges were held out of the walk graph (queries), the ones whose
    edges stayed (references, with their targets as labels) and the genes those target."""

    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    reference: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    genes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # the columns' genes


@register_retrieval
class HeldOutTargets(RetrievalTask[HeldOut]):
    """Held-out molecules' targets predicted from the molecules whose targets stayed in the walk
    graph: k-NN transfer in each embedding space, by Tanimoto on Morgan bits, a random forest
    on them, and walks through the graph itself, over the same molecules and candidate genes."""

    name = "targets"
    kind = "molecule"
    description = "held-out TARGETS edges by k-NN transfer from the molecules whose targets stayed in the graph"

    def queries(self, ctx: Context, options: RetrievalOptions) -> HeldOut:
        inputs: Inputs = ctx.inputs
        held, kept = inputs.targets_held, inputs.targets_kept
        if not len(held) or not len(kept):
            return HeldOut([], np.zeros(0), 0, {"note": "no held-out or no kept TARGETS edges (holdout_targets 0?)"})
        reference = np.unique(kept[:, 0])
        queries = np.unique(held[:, 0])
        genes = np.unique(kept[:, 1])
        column = {int(g): j for j, g in enumerate(genes)}
        truth: list[set[int]] = [set() for _ in queries]
        total = np.zeros(len(queries), dtype=np.int64)
        row = {int(m): i for i, m in enumerate(queries)}
        for m, g in held.tolist():
            total[row[m]] += 1
            if g in column:
                truth[row[m]].add(column[g])
        facts = {
            "reference_molecules": len(reference),
            "held_out_edges": len(held),
            "held_out_edges_with_candidate_gene": int(sum(len(t) for t in truth)),
            "neighbours": options.neighbours,
            "random_forest_trees": options.rf_trees,
            "fingerprint": f"Morgan radius 2, {BITS} bits",
        }
        return HeldOut(truth, total, len(genes), facts, queries, reference, label_matrix(kept, reference, genes), genes)

    def scores(self, vectors: np.ndarray, asked: HeldOut, options: RetrievalOptions) -> np.ndarray:
        similarity = cosine(vectors[asked.rows], vectors[asked.reference])
        return knn_scores(similarity, asked.labels, options.neighbours)[0]

    def baselines(self, ctx: Context, asked: HeldOut, options: RetrievalOptions) -> dict[str, np.ndarray]:
        bits = morgan_bits(ctx.inputs.smiles.tolist(), 2, BITS)
        tanimoto_scores = knn_scores(
            tanimoto(bits[asked.rows], bits[asked.reference]), asked.labels, options.neighbours
        )
        forest = RandomForestClassifier(options.rf_trees, random_state=ctx.model.config.seed, n_jobs=-1)
        forest.fit(bits[asked.reference], asked.labels.astype(np.int8))
        probabilities = forest.predict_proba(bits[asked.rows])
        n = len(asked.rows)
        forest_scores = np.column_stack([p[:, 1] if p.shape[1] == 2 else np.zeros(n) for p in probabilities])
        walk_length = int(ctx.run.config["walk_length"])  # the walks the run was trained on
        walks = walk_transfer(ctx.inputs, asked.rows, asked.genes, walk_length)
        return {"tanimoto_knn": tanimoto_scores[0], "random_forest": forest_scores, "walk_transfer": walks}


def walk_transfer(inputs: Inputs, queries: np.ndarray, genes: np.ndarray, length: int) -> np.ndarray:
    """Scores [queries, genes] that use the graph itself: the expected visits of each gene by a
    random walk of `length` steps from the query molecule through the walk graph (the walks
    InfoAlign trains on, each step in proportion to the edge weights), which reaches genes
    through similar molecules' kept TARGETS edges, shared profiles and gene links. The held-out
    molecules' own TARGETS edges are not in the graph."""
    n = len(inputs.node_type)
    src, dst = inputs.edge_index
    weight = np.maximum(inputs.edge_weight.astype(np.float64), 0)
    out_weight = np.bincount(src, weights=weight, minlength=n)
    step = sparse.csr_matrix((weight / np.maximum(out_weight[src], 1e-12), (src, dst)), shape=(n, n))
    gene_start = int(np.flatnonzero(inputs.node_type == inputs.labels.index("Gene"))[0]) if len(genes) else 0
    columns = gene_start + genes
    out = np.zeros((len(queries), len(genes)), dtype=np.float32)
    for lo in range(0, len(queries), 256):
        rows = queries[lo : lo + 256]
        visit = sparse.csr_matrix((np.ones(len(rows)), (np.arange(len(rows)), rows)), shape=(len(rows), n))
        total = np.zeros((len(rows), len(genes)))
        for _ in range(length):
            visit = visit @ step
            total += visit[:, columns].toarray()
        out[lo : lo + len(rows)] = total
    return out


def predicted_targets(inputs: Inputs, vectors: np.ndarray, *, top_k: int, neighbours: int) -> pa.Table:
    """Every molecule's `top_k` genes by k-NN transfer in InfoAlign space from the molecules with
    targets in the walk graph (a molecule is never its own neighbour), with the neighbours that
    carry the evidence (`via`) and whether the pair is known, held out or novel."""
    kept, held = inputs.targets_kept, inputs.targets_held
    reference = np.unique(kept[:, 0])
    genes = np.unique(kept[:, 1])
    labels = label_matrix(kept, reference, genes)
    known = {(int(m), int(g)) for m, g in kept.tolist()}
    held_set = {(int(m), int(g)) for m, g in held.tolist()}
    columns: dict[str, list[Any]] = {c: [] for c in ("start", "end", "score", "rank", "split", "known", "via")}
    ids, gene_ids = inputs.molecule_ids, inputs.gene_ids
    for lo in range(0, inputs.n_molecules, BLOCK):
        rows = np.arange(lo, min(lo + BLOCK, inputs.n_molecules))
        similarity = cosine(vectors[rows], vectors[reference])
        similarity[rows[:, None] == reference[None, :]] = -np.inf  # not yourself
        scores, near = knn_scores(similarity, labels, neighbours)
        take = min(top_k, len(genes))
        top = np.argsort(-scores, axis=1, kind="stable")[:, :take]
        for q, m in enumerate(rows.tolist()):
            for rank, j in enumerate(top[q].tolist(), 1):
                if scores[q, j] <= 0:
                    break
                g = int(genes[j])
                via = [str(ids[reference[n]]) for n in near[q] if labels[n, j] > 0][:3]
                split = "known" if (m, g) in known else "held_out" if (m, g) in held_set else "novel"
                for c, v in zip(
                    columns,
                    (str(ids[m]), str(gene_ids[g]), round(float(scores[q, j]), 6), rank, split, split != "novel", via),
                    strict=True,
                ):
                    columns[c].append(v)
    return pa.table(
        {
            "start": pa.array(columns["start"], pa.string()),
            "end": pa.array(columns["end"], pa.string()),
            "score": pa.array(columns["score"], pa.float64()),
            "rank": pa.array(columns["rank"], pa.int64()),
            "split": pa.array(columns["split"], pa.string()),
            "known": pa.array(columns["known"], pa.bool_()),
            "via": pa.array(columns["via"], pa.list_(pa.string())),
        }
    )
