"""The one nearest-neighbour routine of every model's predictions: an all-pairs score matrix read
a block of rows at a time (never N×N in memory), each row's k best other items, ranked by the
raw scores or by a correction of them (e.g. for hub items), with the raw scores kept beside."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

BLOCK = 2048

Rows = Callable[[int, int], Tensor]  # rows lo..hi of the all-pairs score matrix
Correct = Callable[[Tensor, int, int], Tensor]  # (rows lo..hi of scores, lo, hi) -> ranking scores


@dataclass
class TopK:
    """Each item's top K others: `partner[i, r]` is item i's rank-(r+1) neighbour."""

    partner: np.ndarray  # int64 [N, K]
    score: np.ndarray  # float32 [N, K]: the ranking score (corrected or raw)
    raw: np.ndarray  # float32 [N, K]: the raw score
    seconds: float
    pairs_scored: int


def cosine_rows(vectors: Tensor) -> Rows:
    """All-pairs cosine by rows (zero vectors score 0)."""
    unit = torch.nn.functional.normalize(vectors.float(), dim=1, eps=1e-12)
    return lambda lo, hi: unit[lo:hi] @ unit.T


def blocks(rows: Rows, n: int, block: int = BLOCK) -> Iterator[tuple[int, int, Tensor]]:
    """(lo, hi, scores of rows lo..hi) with each item's score against itself set to -inf."""
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        s = rows(lo, hi).float()
        s[torch.arange(hi - lo), torch.arange(lo, hi)] = float("-inf")
        yield lo, hi, s


def top_k(rows: Rows, n: int, k: int, correct: Correct | None = None, block: int = BLOCK) -> TopK:
    """Each row's top `k` others (self excluded) by `correct`ed scores (raw when None), best
    first. Peak extra memory is a few `block` × N float32 matrices."""
    k = min(k, n - 1)
    started = time.perf_counter()
    partners, scores, raws = [], [], []
    for lo, hi, s in blocks(rows, n, block):
        values, index = torch.topk(correct(s, lo, hi) if correct else s, k, dim=1)
        partners.append(index.cpu())
        scores.append(values.cpu())
        raws.append(torch.gather(s, 1, index).cpu())
    return TopK(
        torch.cat(partners).numpy(),
        torch.cat(scores).numpy(),
        torch.cat(raws).numpy(),
        time.perf_counter() - started,
        n * (n - 1),
    )
