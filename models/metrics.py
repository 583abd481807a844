"""Ranking metrics for pair scores: AUC, AUPRC, precision@k, cross-boundary AUC and its sweep,
Spearman against degree. Each takes positive and negative scores as separate arrays."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import rankdata, spearmanr
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

CB_BOUNDS = (0.3, 0.2, 0.15, 0.1, 0.05)
CB_MIN = 10  # positives and negatives each needed for a cross-boundary AUC


def _labels(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.r_[np.ones(len(pos)), np.zeros(len(neg))], np.r_[pos, neg]


def auc(pos: np.ndarray, neg: np.ndarray) -> float:
    y, s = _labels(pos, neg)
    return float(roc_auc_score(y, s))


def auprc(pos: np.ndarray, neg: np.ndarray) -> float:
    y, s = _labels(pos, neg)
    return float(average_precision_score(y, s))


def precision_at(pos: np.ndarray, neg: np.ndarray, k: int) -> float:
    """Fraction of positives among the k highest scores (ties broken against the positives)."""
    y, s = _labels(pos, neg)
    order = np.lexsort((y, -s))[:k]
    return float(y[order].mean())


def roc(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, s = _labels(pos, neg)
    fpr, tpr, _ = roc_curve(y, s)
    return fpr, tpr


def cross_boundary_auc(
    pos: np.ndarray, neg: np.ndarray, pos_cos: np.ndarray, neg_cos: np.ndarray, bound: float
) -> dict[str, Any]:
    """AUC over the pairs whose input cosine is below `bound` in absolute value (each class
    filtered on its own, as the reference does); None with fewer than CB_MIN of either."""
    p, n = pos[np.abs(pos_cos) < bound], neg[np.abs(neg_cos) < bound]
    value = auc(p, n) if len(p) >= CB_MIN and len(n) >= CB_MIN else None
    return {"auc": value, "positives": len(p), "negatives": len(n)}


def rank_auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC from ranks (Mann–Whitney U, ties counted half, as roc_auc_score); NaN unless both
    classes are present. Fast enough to score every task after every epoch of a head."""
    positives = int((y == 1).sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    rho = float(spearmanr(x, y).statistic)
    return None if math.isnan(rho) else rho


def ranking(pos: np.ndarray, neg: np.ndarray, pos_cos: np.ndarray, neg_cos: np.ndarray, k: int = 100) -> dict[str, Any]:
    """Every ranking figure of one score on one set of positives and negatives."""
    return {
        "auc": auc(pos, neg),
        "auprc": auprc(pos, neg),
        f"precision_at_{k}": precision_at(pos, neg, k),
        "cb_auc": cross_boundary_auc(pos, neg, pos_cos, neg_cos, 0.2)["auc"],
        "cb_sweep": {str(b): cross_boundary_auc(pos, neg, pos_cos, neg_cos, b) for b in CB_BOUNDS},
    }


def mean_sd(values: list[float | None]) -> dict[str, float | int | None]:
    """Mean and sample SD over seeds (SD None for one value); None entries are left out."""
    kept = [v for v in values if v is not None]
    if not kept:
        return {"mean": None, "sd": None, "n": 0}
    sd = float(np.std(kept, ddof=1)) if len(kept) > 1 else None
    return {"mean": float(np.mean(kept)), "sd": sd, "n": len(kept)}


def summary(values: list[float]) -> dict[str, Any]:
    """Mean ± SD (population) over seeds, and each seed's value."""
    return {
        "mean": round(float(np.mean(values)), 4),
        "sd": round(float(np.std(values)), 4),
        "per_seed": [round(v, 4) for v in values],
    }
