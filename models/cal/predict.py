"""`kgctl predict RUN`: score every gene pair in row blocks (never the full N×N matrix), keep each
gene's top K partners, and write them back as `PREDICTED_ASSOCIATION` edges with the embeddings
as `embedding_cal` under a vector index."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch
from torch import Tensor

from kgctl.core.provenance import now
from kgctl.graph.connection import Connection
from kgctl.graph.schema import ensure_vector_index
from kgctl.models.cal.config import CALConfig
from kgctl.models.cal.data import Inputs, embed, make_split, pair_keys
from kgctl.models.cal.model import encode
from kgctl.models.cal.train import load_model
from kgctl.models.runs import Run, delete_predictions

BLOCK = 2048
WRITE_BATCH = 10_000
VECTOR_INDEX = "gene_embedding_cal"


@dataclass
class TopK:
    """Each gene's top K partners: `partner[i, r]` is gene i's rank-(r+1) partner."""

    partner: np.ndarray  # int64 [N, K]
    score: np.ndarray  # float32 [N, K]
    seconds: float
    pairs_scored: int


def top_k(fx: Tensor, x: Tensor, k: int, transform: str, block: int = BLOCK) -> TopK:
    """Blockwise all-pairs scores (rows `block` at a time, self excluded), top `k` per row.
    Peak extra memory is a few `block` × N float32 matrices."""
    n = len(fx)
    k = min(k, n - 1)
    started = time.perf_counter()
    partners, scores = [], []
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        s = fx[lo:hi] @ fx.T if transform == "both" else 0.5 * (fx[lo:hi] @ x.T + x[lo:hi] @ fx.T)
        s[torch.arange(hi - lo), torch.arange(lo, hi)] = float("-inf")
        values, index = torch.topk(s, k, dim=1)
        partners.append(index.cpu())
        scores.append(values.float().cpu())
    return TopK(torch.cat(partners).numpy(), torch.cat(scores).numpy(),
                time.perf_counter() - started, n * (n - 1))  # fmt: skip


def predict(run: Run, k: int, device: str = "cpu") -> tuple[pa.Table, np.ndarray]:
    """The run's top-k table (gene, partner, score, rank, input_cosine, split) and f(X)."""
    config = CALConfig(**run.config)
    inputs = Inputs.load(run.dir / "inputs.npz")
    split = make_split(inputs, config, config.split, config.seed)
    emb, _ = embed(inputs.features, split.fit, config.pca_dim)
    x = torch.from_numpy(emb).to(device)
    fx = encode(load_model(run.dir, device), x)
    top = top_k(fx, x, k, config.transform)
    n, kk = top.partner.shape
    gene = np.repeat(np.arange(n), kk)
    partner = top.partner.ravel()
    pairs = np.column_stack([gene, partner])
    label = np.full(len(pairs), "novel", dtype=object)
    keys = pair_keys(pairs, inputs.n)
    for name, members in (("ambiguous", inputs.known), ("test", split.test),
                          ("validation", split.validation), ("train", split.train)):  # fmt: skip
        label[np.isin(keys, pair_keys(members, inputs.n))] = name
    table = pa.table({
        "gene": pa.array(inputs.genes[gene]), "partner": pa.array(inputs.genes[partner]),
        "score": pa.array(top.score.ravel()), "rank": pa.array(np.tile(np.arange(1, kk + 1), n)),
        "input_cosine": pa.array(np.einsum("ij,ij->i", emb[gene], emb[partner])),
        "split": pa.array(label.astype(str)),
    })  # fmt: skip
    pq.write_table(table, run.dir / "predictions.parquet")
    run.update(prediction={"top_k": kk, "pairs_scored": top.pairs_scored,
                           "scoring_seconds": round(top.seconds, 3), "rows": table.num_rows})  # fmt: skip
    return table, fx.cpu().numpy()


def novel(table: pa.Table) -> pa.Table:
    """Predictions of pairs the graph does not relate at any score, best first."""
    return table.filter(pc.equal(table.column("split"), "novel")).sort_by([("score", "descending")])


def write_back(conn: Connection, run: Run, table: pa.Table, fx: np.ndarray) -> dict[str, Any]:
    """Replace the run's PREDICTED_ASSOCIATION edges (idempotent) and set `embedding_cal` on its
    genes, with the vector index sized to the embedding."""
    started = time.perf_counter()
    delete_predictions(conn, run.id)
    created_at = now()
    rows = table.to_pylist()
    written = 0
    for lo in range(0, len(rows), WRITE_BATCH):
        written += conn.query(
            "UNWIND $rows AS r MATCH (a:Gene {id: r.gene}), (b:Gene {id: r.partner}) "
            "CREATE (a)-[p:PREDICTED_ASSOCIATION {score: r.score, rank: r.rank, model: 'cal', "
            "run_id: $run, created_at: datetime($at), known: r.split <> 'novel', "
            "split: r.split, input_cosine: r.input_cosine, source: 'kgctl predict'}]->(b) "
            "RETURN count(p) AS n",
            {"rows": rows[lo : lo + WRITE_BATCH], "run": run.id, "at": created_at}, write=True,
        )[0]["n"]  # fmt: skip
    genes = Inputs.load(run.dir / "inputs.npz").genes.tolist()
    vectors = [{"id": g, "v": v} for g, v in zip(genes, fx.astype(float).tolist(), strict=True)]
    for lo in range(0, len(vectors), WRITE_BATCH):
        conn.query("UNWIND $rows AS r MATCH (g:Gene {id: r.id}) "
                   "SET g.embedding_cal = r.v, g.embedding_cal_run = $run",
                   {"rows": vectors[lo : lo + WRITE_BATCH], "run": run.id}, write=True)  # fmt: skip
    ensure_vector_index(conn, VECTOR_INDEX, "Gene", "embedding_cal", fx.shape[1])
    summary = {"at": created_at, "relationships": written, "embeddings": len(vectors),
               "vector_index": VECTOR_INDEX, "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip
    run.update(written_back=summary)
    return summary
