"""`kgctl predict RUN` for CAL: score every gene pair in row blocks (never the full N×N matrix),
keep each gene's top K partners with how the graph already relates them, and f(X) as the
genes' embeddings."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch import Tensor

from kgctl.models.base import Prediction
from kgctl.models.cal.config import CALConfig
from kgctl.models.cal.data import Inputs, embed, make_split, pair_keys
from kgctl.models.cal.model import CALModel, encode

BLOCK = 2048
SHOWN = 10


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


def predict(
    config: CALConfig, inputs: Inputs, model: CALModel, k: int, device: str = "cpu"
) -> Prediction:
    """The top-k table (start, end, score, rank, input_cosine, split, known) and f(X) for every
    gene. `split` says how the graph relates the pair: a train, validation or test positive,
    `ambiguous` (known below the positives' rule) or `novel`."""
    split = make_split(inputs, config, config.split, config.seed)
    emb, _ = embed(inputs.features, split.fit, config.pca_dim)
    x = torch.from_numpy(emb).to(device)
    fx = encode(model.to(device), x)
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
        "start": pa.array(inputs.genes[gene]), "end": pa.array(inputs.genes[partner]),
        "score": pa.array(top.score.ravel()), "rank": pa.array(np.tile(np.arange(1, kk + 1), n)),
        "input_cosine": pa.array(np.einsum("ij,ij->i", emb[gene], emb[partner])),
        "split": pa.array(label.astype(str)), "known": pa.array(label != "novel"),
    })  # fmt: skip
    facts = {"top_k": kk, "pairs_scored": top.pairs_scored, "scoring_seconds": round(top.seconds, 3),
             "rows": table.num_rows}  # fmt: skip
    best = novel(table).slice(0, SHOWN).to_pylist()
    return Prediction(table, inputs.genes.tolist(), fx.cpu().numpy(), facts, best)


def novel(table: pa.Table) -> pa.Table:
    """Predictions of pairs the graph does not relate at any score, best first."""
    return table.filter(pc.equal(table.column("split"), "novel")).sort_by([("score", "descending")])
