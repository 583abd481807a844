"""All-pairs scores by row blocks, for every gene-association model's predictions and per-gene
figures: score every gene pair a block of rows at a time (never the full N×N matrix), rank each
gene's partners (corrected for hub genes unless `hubness = none`), keep its top K with how the
graph already relates them, and the genes' embeddings."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from kgctl.models.association.config import AssociationConfig
from kgctl.models.association.data import Inputs, Split, pair_keys
from kgctl.models.base import Prediction
from kgctl.models.neighbours import BLOCK, Correct, Rows, TopK, blocks, top_k

SHOWN = 10
HUB_K = 10  # CSLS: a gene's hubness is the mean of its HUB_K best scores


def corrector(rows: Rows, n: int, hubness: str, block: int = BLOCK) -> Correct:
    """How per-gene lists are ranked. `zscore`: each candidate partner's scores standardised over
    all genes, (s(A, B) − μ_B)/σ_B, so a gene close to everyone no longer heads every list; `csls`:
    2·s(A, B) − r_A − r_B with r a gene's mean over its HUB_K best scores; `none`: raw scores.
    One extra pass over the score blocks."""
    if hubness == "none":
        return lambda s, lo, hi: s
    if hubness == "csls":
        k = min(HUB_K, n - 1)
        r = torch.cat([torch.topk(s, k, dim=1).values.mean(1) for _, _, s in blocks(rows, n, block)])
        return lambda s, lo, hi: 2 * s - r[lo:hi, None] - r[None, :]
    total = torch.zeros(n, dtype=torch.float64)
    squares = torch.zeros(n, dtype=torch.float64)
    for _, _, s in blocks(rows, n, block):
        finite = s.masked_fill(torch.isinf(s), 0).double()
        total += finite.sum(0).cpu()
        squares += (finite**2).sum(0).cpu()
    mean = total / (n - 1)
    sd = (squares / (n - 1) - mean**2).clamp(min=1e-12).sqrt()
    mu, sigma = mean.float(), sd.float()
    return lambda s, lo, hi: (s - mu.to(s.device)[None, :]) / sigma.to(s.device)[None, :]


def ranked(rows: Rows, n: int, k: int, hubness: str, block: int = BLOCK) -> TopK:
    """Each gene's top `k` partners, ranked by the `hubness` correction (raw scores beside)."""
    return top_k(rows, n, k, corrector(rows, n, hubness, block), block)


def prediction(
    config: AssociationConfig, inputs: Inputs, split: Split, emb: np.ndarray, rows: Rows, k: int, vectors: np.ndarray
) -> Prediction:
    """The top-k table (start, end, score, raw_score, rank, input_cosine, split, known) and the
    genes' vectors. `split` says how the graph relates the pair: a train, validation or test
    positive, `ambiguous` (known below the positives' rule) or `novel`."""
    top = ranked(rows, inputs.n, k, config.hubness)
    n, kk = top.partner.shape
    gene = np.repeat(np.arange(n), kk)
    partner = top.partner.ravel()
    pairs = np.column_stack([gene, partner])
    label = np.full(len(pairs), "novel", dtype=object)
    keys = pair_keys(pairs, inputs.n)
    for name, members in (
        ("ambiguous", inputs.known),
        ("test", split.test),
        ("validation", split.validation),
        ("train", split.train),
    ):
        label[np.isin(keys, pair_keys(members, inputs.n))] = name
    table = pa.table(
        {
            "start": pa.array(inputs.genes[gene]),
            "end": pa.array(inputs.genes[partner]),
            "score": pa.array(top.score.ravel()),
            "raw_score": pa.array(top.raw.ravel()),
            "rank": pa.array(np.tile(np.arange(1, kk + 1), n)),
            "input_cosine": pa.array(np.einsum("ij,ij->i", emb[gene], emb[partner])),
            "split": pa.array(label.astype(str)),
            "known": pa.array(label != "novel"),
        }
    )
    facts = {
        "top_k": kk,
        "hubness": config.hubness,
        "pairs_scored": top.pairs_scored,
        "scoring_seconds": round(top.seconds, 3),
        "rows": table.num_rows,
        "most_listed": most_listed(top.partner),
    }
    best = novel(table).slice(0, SHOWN).to_pylist()
    return Prediction(table, inputs.genes.tolist(), vectors, facts, best)


def most_listed(partner: np.ndarray, top: int = 5) -> dict[str, float]:
    """Hub concentration: in how many genes' top-`top` lists the most listed gene appears, and
    the share of all list places the 10 most listed genes take."""
    counts = np.bincount(partner[:, :top].ravel(), minlength=len(partner))
    ordered = np.sort(counts)[::-1]
    return {
        "max_lists": int(ordered[0]),
        "top10_share": round(float(ordered[:10].sum() / counts.sum()), 4),
    }


def novel(table: pa.Table) -> pa.Table:
    """Predictions of pairs the graph does not relate at any score, best first."""
    return table.filter(pc.equal(table.column("split"), "novel")).sort_by([("score", "descending")])


def partner_hits(
    rows: Rows, n: int, pairs: np.ndarray, train: np.ndarray, hubness: str, k: int = 10, block: int = BLOCK
) -> float | None:
    """Per-gene ranking quality: the share of held-out pairs (both orientations) whose partner is
    in the gene's top `k`, training partners excluded, ranked by raw scores or CSLS. What
    `hubness` is chosen by (on validation pairs)."""
    if len(pairs) == 0:
        return None
    correct = corrector(rows, n, hubness, block)
    both = np.concatenate([pairs, pairs[:, ::-1]])
    train_both = np.concatenate([train, train[:, ::-1]])
    hits = 0
    for lo, hi, s in blocks(rows, n, block):
        ranked = correct(s, lo, hi)
        inside = train_both[(train_both[:, 0] >= lo) & (train_both[:, 0] < hi)]
        ranked[torch.from_numpy(inside[:, 0] - lo), torch.from_numpy(inside[:, 1])] = float("-inf")
        mine = both[(both[:, 0] >= lo) & (both[:, 0] < hi)]
        rows_ = torch.from_numpy(mine[:, 0] - lo)
        target = ranked[rows_, torch.from_numpy(mine[:, 1])]
        above = (ranked[rows_] > target[:, None]).sum(1)
        hits += int((above < k).sum())
    return hits / len(both)
