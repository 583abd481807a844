"""Similarity and co-essentiality pairs on small inputs whose answers can be checked by hand, and
the same answer whatever the block size."""

from __future__ import annotations

import numpy as np
import pytest

from kgctl.graph.similarity import (
    cosine_scorer,
    essentiality_scorer,
    infoalign_threshold,
    knn_pairs,
    pairs_above,
    pearson_scorer,
    tanimoto_scorer,
    top_pairs,
)

BLOCKS = [1, 2, 1024]


@pytest.mark.parametrize("rows", BLOCKS)
def test_cosine_threshold_and_knn(rows: int) -> None:
    x = np.array([[1, 0, 0], [0.6, 0.8, 0], [0, 1, 0], [0.1, 0, 1]])
    score = cosine_scorer(x)
    assert pairs_above(4, score, 0.5, rows).as_set(4) == {(0, 1, 0.6), (1, 2, 0.8)}
    # row 0 → 1 (0.6), row 1 → 2 (0.8), row 2 → 1 (0.8), row 3 → 0 (0.1/√1.01)
    assert knn_pairs(4, score, 1, rows).as_set(4) == {(0, 1, 0.6), (1, 2, 0.8), (0, 3, 0.0995)}


@pytest.mark.parametrize("rows", BLOCKS)
def test_tanimoto_on_packed_fingerprints(rows: int) -> None:
    packed = np.array([[0b11110000], [0b11000000], [0b00001111], [0], [0b11111111], [0b11111110]])
    score = tanimoto_scorer(packed)
    # a∧b = 2 bits, a∨b = 4; FF vs FE: 7 / 8; FF vs F0: 4 / 8; FF vs 0F: 4 / 8; FE vs F0: 4 / 7
    assert pairs_above(6, score, 0.5, rows).as_set(4) == {
        (0, 1, 0.5),
        (0, 4, 0.5),
        (2, 4, 0.5),
        (4, 5, 0.875),
        (0, 5, 0.5714),
    }
    assert pairs_above(6, score, 0.0, rows).as_set(4) >= {
        (0, 3, 0.0),
        (1, 2, 0.0),
    }  # empty vs any: 0


@pytest.mark.parametrize("rows", BLOCKS)
def test_reference_coessentiality_top_n(rows: int) -> None:
    effect = np.array([[-1, -2, 0.5], [-1, -1, 0], [1, 2, 3], [-0.5, np.nan, -1]])
    # G = max(0, -effect), NaN → 0: [[1,2,0],[1,1,0],[0,0,0],[.5,0,1]]; G·Gᵀ off the diagonal:
    # (0,1) 3, (0,3) 0.5, (1,3) 0.5, the rest 0; the tie at 0.5 goes to the smaller (i, j)
    top = top_pairs(4, essentiality_scorer(effect), 2, rows)
    assert list(zip(top.i.tolist(), top.j.tolist(), top.score.tolist(), strict=True)) == [(0, 1, 3.0), (0, 3, 0.5)]
    assert len(top_pairs(4, essentiality_scorer(effect), 100, rows)) == 6


@pytest.mark.parametrize("rows", BLOCKS)
def test_pearson_coessentiality(rows: int) -> None:
    effect = np.array([[1, 2, 3], [2, 4, 6], [3, 2, 1], [1, 1, 1], [1, np.nan, 3]])
    pairs = pairs_above(5, pearson_scorer(effect), -2.0, rows).as_set(4)
    scores = {(i, j): s for i, j, s in pairs}
    assert scores[(0, 1)] == 1.0 and scores[(0, 2)] == -1.0 and scores[(1, 2)] == -1.0
    assert scores[(0, 3)] == 0.0  # a constant row correlates with nothing
    assert scores[(0, 4)] == 1.0  # the missing middle value is the row mean: [1, 2, 3]


def test_infoalign_threshold_keeps_about_the_share_and_never_goes_below_the_floor() -> None:
    m = np.zeros((5, 5), dtype=np.float32)
    for (i, j), s in {(0, 1): 0.95, (0, 2): 0.9, (1, 2): 0.85, (2, 3): 0.81, (3, 4): 0.5}.items():
        m[i, j] = m[j, i] = s
    score = lambda start, stop: m[start:stop]  # noqa: E731
    t = infoalign_threshold(5, score, keep=0.2)  # 10 pairs: 2 may pass
    assert 0.85 < t <= 0.9
    assert pairs_above(5, score, t).as_set(2) == {(0, 1, 0.95), (0, 2, 0.9)}
    assert infoalign_threshold(5, score, keep=0.5) == 0.8  # only 4 pairs reach the floor
