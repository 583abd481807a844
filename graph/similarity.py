"""Pair scores computed blockwise, so 17,725 genes or 100k molecules fit in a few GB: cosine
(k nearest neighbours or a threshold), Tanimoto on packed Morgan fingerprints, DepMap
co-essentiality (the CAL reference G·Gᵀ and Pearson correlation), and InfoAlign's per-edge-type
threshold (`../shared/docs/methods/infoalign.md` §1.2, `cal.md` §1.3).

Every function returns `Pairs`: i < j (each unordered pair once), scores as float32.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

BLOCK_ROWS = 1024
INFOALIGN_FLOOR = 0.8  # InfoAlign's `--threshold`: no similarity edge below this
INFOALIGN_KEEP = 0.005  # about 0.5 % of candidate pairs pass (target_sparsity 0.995)


@dataclass(frozen=True)
class Pairs:
    i: np.ndarray  # int64, i < j
    j: np.ndarray
    score: np.ndarray  # float32

    def __len__(self) -> int:
        return len(self.i)

    def as_set(self, decimals: int = 6) -> set[tuple[int, int, float]]:
        """For tests and comparisons: {(i, j, rounded score)}."""
        return {(int(a), int(b), round(float(s), decimals)) for a, b, s in zip(self.i, self.j, self.score, strict=True)}


def _concat(parts: list[Pairs]) -> Pairs:
    if not parts:
        return Pairs(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    return Pairs(
        np.concatenate([p.i for p in parts]),
        np.concatenate([p.j for p in parts]),
        np.concatenate([p.score for p in parts]).astype(np.float32),
    )


ScoreBlock = Callable[[int, int], np.ndarray]  # rows [start, stop) × all columns


def _upper_blocks(n: int, score_block: ScoreBlock, rows: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start, block) with entries on or below the diagonal set to -inf: only i < j survives."""
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        block = np.asarray(score_block(start, stop), dtype=np.float32)
        r = np.arange(stop - start)[:, None] + start
        block[np.arange(n)[None, :] <= r] = -np.inf
        yield start, block


def pairs_above(n: int, score_block: ScoreBlock, threshold: float, rows: int = BLOCK_ROWS) -> Pairs:
    """Every pair with score >= threshold."""
    parts = []
    for start, block in _upper_blocks(n, score_block, rows):
        a, b = np.nonzero(block >= threshold)
        parts.append(Pairs(a + start, b, block[a, b]))
    return _concat(parts)


def top_pairs(n: int, score_block: ScoreBlock, count: int, rows: int = BLOCK_ROWS) -> Pairs:
    """The `count` highest-scoring pairs, ties broken by (i, j), keeping only a running top: the
    same answer whatever the block size."""
    best = _concat([])
    for start, block in _upper_blocks(n, score_block, rows):
        flat = block.ravel()
        finite = int(np.isfinite(flat).sum())
        if finite == 0 or count == 0:
            continue
        take = min(count, finite)
        kth = -np.partition(-flat, take - 1)[take - 1]  # the take-th largest score
        idx = np.nonzero(flat >= kth)[0]  # every tie at the boundary, cut after sorting
        a, b = np.divmod(idx, n)
        best = _concat([best, Pairs(a + start, b, flat[idx])])
        order = np.lexsort((best.j, best.i, -best.score))[:count]
        best = Pairs(best.i[order], best.j[order], best.score[order])
    return best


def knn_pairs(n: int, score_block: ScoreBlock, k: int, rows: int = BLOCK_ROWS) -> Pairs:
    """Each row's k best partners, as unordered pairs (a pair chosen from both sides appears once)."""
    parts = []
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        block = np.asarray(score_block(start, stop), dtype=np.float32)
        block[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # not yourself
        kk = min(k, n - 1)
        if kk <= 0:
            break
        cols = np.argpartition(-block, kk - 1, axis=1)[:, :kk]
        a = np.repeat(np.arange(start, stop), kk)
        b = cols.ravel()
        parts.append(Pairs(np.minimum(a, b), np.maximum(a, b), block[a - start, b]))
    found = _concat(parts)
    key = found.i * n + found.j
    _, first = np.unique(key, return_index=True)
    return Pairs(found.i[first], found.j[first], found.score[first])


def unit_rows(x: np.ndarray) -> np.ndarray:
    """float32 rows scaled to length 1 (NaN read as 0; a zero row stays zero)."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float32))
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit: np.ndarray = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    return unit


def cosine_scorer(x: np.ndarray) -> ScoreBlock:
    """Cosine between rows of x (zero rows score 0 with everything)."""
    unit = unit_rows(x)
    return lambda start, stop: unit[start:stop] @ unit.T


def tanimoto(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Tanimoto (Jaccard) between every row of `a` and of `b`, unpacked 0/1 bits:
    |a ∧ b| / (|a| + |b| − |a ∧ b|) with intersections from one float matrix product."""
    a, b = np.asarray(a, dtype=np.float32), np.asarray(b, dtype=np.float32)
    inter = a @ b.T
    union = a.sum(axis=1)[:, None] + b.sum(axis=1)[None, :] - inter
    out: np.ndarray = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return out


def tanimoto_scorer(packed: np.ndarray) -> ScoreBlock:
    """Tanimoto between bit vectors packed 8 per byte (`Molecule.fingerprint`)."""
    bits = np.unpackbits(np.asarray(packed, dtype=np.uint8), axis=1).astype(np.float32)
    return lambda start, stop: tanimoto(bits[start:stop], bits)


def essentiality_scorer(effect: np.ndarray) -> ScoreBlock:
    """The CAL reference co-essentiality: G = max(0, −effect) (missing → 0), score = G·Gᵀ."""
    g = np.maximum(0.0, -np.nan_to_num(np.asarray(effect, dtype=np.float64))).astype(np.float32)
    return lambda start, stop: g[start:stop] @ g.T


def pearson_scorer(x: np.ndarray) -> ScoreBlock:
    """Pearson correlation between rows, over the columns both rows observe approximately: missing
    values are set to the row mean (so they add nothing), constant rows score 0."""
    x = np.asarray(x, dtype=np.float64)
    means = np.nanmean(np.where(np.isnan(x).all(axis=1, keepdims=True), 0.0, x), axis=1, keepdims=True)
    centred = np.where(np.isnan(x), 0.0, x - means)
    return cosine_scorer(centred.astype(np.float32))


def within_groups(groups: np.ndarray, scorer_of: Callable[[np.ndarray], ScoreBlock]) -> Pairs:
    """Every pair inside each group of two or more members (i < j in the caller's numbering),
    scored by `scorer_of(members)`: the candidates of InfoAlign's within-scaffold similarity."""
    order = np.argsort(groups, kind="stable")
    _, starts, counts = np.unique(groups[order], return_index=True, return_counts=True)
    lowest = -float(np.finfo(np.float32).max)
    parts = []
    for start, count in zip(starts, counts, strict=True):
        if count < 2:
            continue
        members = np.sort(order[start : start + count])
        inside = pairs_above(int(count), scorer_of(members), lowest)
        parts.append(Pairs(members[inside.i], members[inside.j], inside.score))
    return _concat(parts)


def infoalign_cut(scores: np.ndarray, floor: float = INFOALIGN_FLOOR, keep: float = INFOALIGN_KEEP) -> float:
    """InfoAlign's rule on an explicit list of candidate scores: the score about `keep` of them
    reach, never below `floor`."""
    if not len(scores):
        return float(floor)
    return max(float(floor), float(np.quantile(scores, 1.0 - keep)))


def infoalign_threshold(
    n: int,
    score_block: ScoreBlock,
    floor: float = INFOALIGN_FLOOR,
    keep: float = INFOALIGN_KEEP,
    rows: int = BLOCK_ROWS,
    bins: int = 20_000,
) -> float:
    """The score above which about `keep` of all candidate pairs lie, never below `floor`: one pass
    over the pairs into a histogram on [floor, 1] (resolution (1 − floor) / bins)."""
    edges = np.linspace(floor, 1.0, bins + 1)
    histogram = np.zeros(bins, dtype=np.int64)
    total = 0
    for _, block in _upper_blocks(n, score_block, rows):
        finite = block[np.isfinite(block)]
        total += finite.size
        histogram += np.histogram(np.clip(finite[finite >= floor], floor, 1.0), edges)[0]
    wanted = keep * total
    above = np.cumsum(histogram[::-1])[::-1]  # above[b] = pairs scoring >= edges[b]
    if above[0] <= wanted:
        return float(floor)
    passing = np.nonzero(above <= wanted)[0]
    return float(edges[passing[0]]) if passing.size else 1.0
