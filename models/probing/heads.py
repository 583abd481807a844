"""The probe's heads on frozen features, registered by name: ridge (penalty chosen on validation
or by grouped cross-validation), logistic regression (C chosen on validation) and the MLP of
InfoAlign's protocol (early stopping on validation). Each fits on a split's training rows and
predicts its test rows, one column per label; the figures of a prediction (Pearson r, ROC-AUC with the shares of tasks above
0.80–0.95, or MAE) come from `score`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from scipy.stats import pearsonr
from sklearn.linear_model import LogisticRegression
from torch import nn

from kgctl.core.errors import KgctlError
from kgctl.models.metrics import rank_auc

METRICS = ("pearson_r", "auc", "mae")
THRESHOLDS = (0.80, 0.85, 0.90, 0.95)
ALPHAS = np.logspace(-3, 5, 17)


@dataclass
class Split:
    """Row indices of one split; an empty `valid` leaves choosing settings to the head (grouped
    cross-validation or a grouped share of `train`)."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def group_split(groups: np.ndarray, seed: int, test: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(rest, test) row indices: whole groups, shuffled by `seed`, fill the test share."""
    rng = np.random.default_rng(seed)
    unique, counts = np.unique(groups, return_counts=True)
    order = rng.permutation(len(unique))
    taken = np.cumsum(counts[order]) <= test * len(groups)
    test_groups = unique[order[taken]] if taken.any() else unique[order[:1]]
    in_test = np.isin(groups, test_groups)
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)


def correlation(predicted: np.ndarray, observed: np.ndarray) -> float:
    """Pearson r, 0 when either side is constant."""
    if np.std(predicted) < 1e-12 or np.std(observed) < 1e-12:
        return 0.0
    return float(pearsonr(predicted, observed)[0])


def score(y: np.ndarray, predicted: np.ndarray, metric: str) -> dict[str, Any]:
    """The figures of test predictions [n, T] against labels [n, T] (NaN: not measured): mean
    Pearson r or MAE over tasks, or mean ROC-AUC over the tasks with both classes and the shares
    of all tasks at or above each threshold (a task that cannot be scored counts as below)."""
    values = []
    for t in range(y.shape[1]):
        known = ~np.isnan(y[:, t])
        if metric == "auc":
            values.append(rank_auc(y[known, t], predicted[known, t]))
        elif known.any():
            p, o = predicted[known, t], y[known, t]
            values.append(correlation(p, o) if metric == "pearson_r" else float(np.abs(p - o).mean()))
    array = np.array(values)
    if metric != "auc":
        return {metric: float(np.mean(array))}
    scored = array[~np.isnan(array)]
    return {
        "auc": float(scored.mean()) if len(scored) else float("nan"),
        **{f"share_auc_{t:.2f}": float(np.mean(np.nan_to_num(array, nan=0.0) >= t)) for t in THRESHOLDS},
    }


def headline(figures: dict[str, Any], metric: str) -> float:
    """The figure settings are chosen by (higher is better): -MAE, or the metric itself."""
    value = -figures["mae"] if metric == "mae" else figures[metric]
    return float(value) if np.isfinite(value) else -np.inf


class Head(ABC):
    """A registered head: fit on `split.train` of features `x` and labels `y` [n, T], return
    predictions [len(split.test), T]; `seed` seeds whatever is random in it."""

    name: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def fit_predict(
        self, x: np.ndarray, y: np.ndarray, split: Split, groups: np.ndarray, metric: str, seed: int
    ) -> np.ndarray: ...


HEADS: dict[str, type[Head]] = {}
H = TypeVar("H", bound=type[Head])


def register_head(cls: H) -> H:
    if cls.name in HEADS and HEADS[cls.name] is not cls:
        raise KgctlError(f"a probe head named {cls.name!r} is already registered")
    HEADS[cls.name] = cls
    return cls


def head(name: str) -> Head:
    if name not in HEADS:
        raise KgctlError(f"unknown probe head {name!r}; registered: {', '.join(HEADS)}")
    return HEADS[name]()


@register_head
class Ridge(Head):
    name = "ridge"
    description = "ridge regression on standardised features, its penalty chosen on validation or by grouped 3-fold CV"

    def fit_predict(
        self, x: np.ndarray, y: np.ndarray, split: Split, groups: np.ndarray, metric: str, seed: int
    ) -> np.ndarray:
        out = np.zeros((len(split.test), y.shape[1]))
        for t in range(y.shape[1]):
            train = split.train[~np.isnan(y[split.train, t])]
            valid = split.valid[~np.isnan(y[split.valid, t])]
            if len(train) < 2:
                out[:, t] = y[train, t].mean() if len(train) else 0.0
                continue
            alpha = self.penalty(x, y[:, t], train, valid, groups)
            out[:, t] = ridge_path(x[train], y[train, t], x[split.test], np.array([alpha]))[:, 0]
        return out

    @staticmethod
    def penalty(x: np.ndarray, y: np.ndarray, train: np.ndarray, valid: np.ndarray, groups: np.ndarray) -> float:
        """The penalty with the least squared error on `valid`, or, with no validation rows, by
        grouped 3-fold cross-validation within `train` (rows of one group, e.g. variants of one
        UTR, share a fold: leave-one-out would reward memorising the group)."""
        errors = np.zeros(len(ALPHAS))
        if len(valid):
            errors += ((ridge_path(x[train], y[train], x[valid]) - y[valid][:, None]) ** 2).sum(0)
            return float(ALPHAS[int(np.argmin(errors))])
        folds = fold_of(groups[train], 3)
        if len(np.unique(folds)) < 2:
            return float(np.median(ALPHAS))
        for k in np.unique(folds):
            inner, held = train[folds != k], train[folds == k]
            errors += ((ridge_path(x[inner], y[inner], x[held]) - y[held][:, None]) ** 2).sum(0)
        return float(ALPHAS[int(np.argmin(errors))])


@register_head
class Logistic(Head):
    """A linear probe for binary labels: L2 logistic regression per task on standardised
    features, its C chosen by validation ROC-AUC (validation rows, or a grouped share of train)."""

    name = "logistic"
    description = "logistic regression per task on standardised features, C chosen on validation ROC-AUC"
    grid = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)

    def fit_predict(
        self, x: np.ndarray, y: np.ndarray, split: Split, groups: np.ndarray, metric: str, seed: int
    ) -> np.ndarray:
        if metric != "auc":
            raise KgctlError(f"the logistic head fits binary labels (ROC-AUC sets), not {metric}: use ridge or mlp")
        split = validation_share(split, groups, seed)
        mean, scale = x[split.train].mean(0), x[split.train].std(0)
        scale[scale < 1e-8] = 1.0
        xs = (x - mean) / scale
        out = np.zeros((len(split.test), y.shape[1]))
        for t in range(y.shape[1]):
            train = split.train[~np.isnan(y[split.train, t])]
            valid = split.valid[~np.isnan(y[split.valid, t])]
            if len(np.unique(y[train, t])) < 2:
                out[:, t] = y[train, t].mean() if len(train) else 0.5
                continue
            fits = {c: LogisticRegression(C=c, max_iter=1000).fit(xs[train], y[train, t]) for c in self.grid}
            figure = {
                c: rank_auc(y[valid, t], f.predict_proba(xs[valid])[:, 1]) if len(valid) else np.nan
                for c, f in fits.items()
            }
            best = max(self.grid, key=lambda c: -np.inf if np.isnan(figure[c]) else figure[c])
            out[:, t] = fits[best].predict_proba(xs[split.test])[:, 1]
        return out


def fold_of(groups: np.ndarray, k: int) -> np.ndarray:
    """A fold per row, whole groups per fold (groups dealt round-robin by size)."""
    unique, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    fold = np.zeros(len(unique), dtype=np.int64)
    fold[np.argsort(-counts, kind="stable")] = np.arange(len(unique)) % k
    return fold[inverse]


def ridge_path(x: np.ndarray, y: np.ndarray, x_new: np.ndarray, alphas: np.ndarray = ALPHAS) -> np.ndarray:
    """Predictions [len(x_new), len(alphas)] of ridge fits on standardised x, all penalties from
    one SVD."""
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-8] = 1.0
    xs = (x - mean) / scale
    u, sv, vt = np.linalg.svd(xs.astype(np.float64), full_matrices=False)
    uy = u.T @ (y - y.mean())
    shrink = sv[:, None] / (sv[:, None] ** 2 + alphas[None, :])  # [rank, alphas]
    coef = vt.T @ (shrink * uy[:, None])  # [features, alphas]
    return np.asarray(((x_new - mean) / scale) @ coef + y.mean())


def validation_share(split: Split, groups: np.ndarray, seed: int) -> Split:
    """The split itself when it has validation rows, else a grouped 15 % of `train` (seed + 7)
    as validation; with too few rows, train doubles as validation."""
    if len(split.valid):
        return split
    inner, valid = group_split(groups[split.train], seed + 7, test=0.15)
    if len(valid) == 0 or len(inner) < 2:
        return Split(split.train, split.train, split.test)
    return Split(split.train[inner], split.train[valid], split.test)


@register_head
class MLP(Head):
    """InfoAlign's head (methods/infoalign.md §6): MLP(d → 1200, BatchNorm, GELU, Dropout 0.5 → T),
    full batch, Adam lr 1e-3 and weight decay 1e-5, NaN-masked BCE (AUC), L1 (MAE) or MSE
    (Pearson r), ≤300 epochs, the epoch with the best validation figure (patience 50)."""

    name = "mlp"
    description = "MLP(d→1200, BN, GELU, dropout 0.5→T), Adam 1e-3, full batch, ≤300 epochs, patience 50 on validation"
    epochs = 300
    patience = 50

    def fit_predict(
        self, x: np.ndarray, y: np.ndarray, split: Split, groups: np.ndarray, metric: str, seed: int
    ) -> np.ndarray:
        split = validation_share(split, groups, seed)
        torch.manual_seed(seed)
        features = torch.from_numpy(np.asarray(x, dtype=np.float32))
        target = torch.from_numpy(np.asarray(y, dtype=np.float32))
        hidden = 1200
        net = nn.Sequential(
            nn.Linear(features.shape[1], hidden),
            nn.BatchNorm1d(hidden),
            nn.GELU(),
            nn.Dropout(0.5),
            nn.Linear(hidden, target.shape[1]),
        )
        optimiser = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5)
        train = torch.from_numpy(split.train)
        xt, yt = features[train], target[train]
        best = BestEpoch(self.patience)
        for epoch in range(self.epochs):
            net.train()
            loss = masked_loss(net(xt), yt, metric)
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
            figure = headline(score(y[split.valid], _predict(net, features, split.valid, metric), metric), metric)
            if best.stop_after(figure, epoch, net):
                break
        best.restore(net)
        return _predict(net, features, split.test, metric)


def masked_loss(out: torch.Tensor, y: torch.Tensor, metric: str) -> torch.Tensor:
    """The loss over the measured labels only (NaN: not measured): BCE on logits for AUC sets,
    L1 for MAE, squared error for Pearson r."""
    known = ~torch.isnan(y)
    if metric == "auc":
        return nn.functional.binary_cross_entropy_with_logits(out[known], y[known])
    error = out - torch.nan_to_num(y)
    return (error.abs() if metric == "mae" else error**2)[known].mean()


class BestEpoch:
    """Early stopping on validation: the best figure so far, its epoch and weights, and whether
    `patience` epochs have passed without a better one."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.figure, self.epoch = -np.inf, 0
        self.state: dict[str, torch.Tensor] | None = None

    def stop_after(self, figure: float, epoch: int, net: nn.Module) -> bool:
        """Record an epoch's validation figure (keeping the weights when it is the best); True
        when training should stop."""
        if figure > self.figure:
            self.figure, self.epoch = figure, epoch
            self.state = {k: v.clone() for k, v in net.state_dict().items()}
            return False
        return epoch - self.epoch >= self.patience

    def restore(self, net: nn.Module) -> None:
        """Load the best epoch's weights (if any epoch was scored)."""
        if self.state is not None:
            net.load_state_dict(self.state)


def _predict(net: nn.Module, x: torch.Tensor, rows: np.ndarray, metric: str) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        out = net(x[torch.from_numpy(rows)])
        return np.asarray((torch.sigmoid(out) if metric == "auc" else out).numpy())
