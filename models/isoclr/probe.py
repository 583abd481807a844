"""IsoCLR's evaluations (methods/isoclr.md §6): a ridge probe on the frozen, mean-pooled
embeddings at several shares of the training labels, against ridge on one-hot and k-mer counts
and the same encoder trained from scratch on the labels; splits keep groups (overlapping UTR
fragments, genes, homology groups) on one side. And, with no labels, isoform retrieval."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import pearsonr
from sklearn.metrics import roc_auc_score
from torch import nn

from kgctl.core.progress import OnProgress, silent
from kgctl.models.isoclr.data import Inputs
from kgctl.models.isoclr.encoding import kmer_counts, one_hot_flat
from kgctl.models.isoclr.model import IsoCLRNet
from kgctl.models.isoclr.task import padded
from kgctl.models.metrics import summary

ALPHAS = np.logspace(-3, 5, 17)
MIN_TRAIN = 10
ONE_HOT_MAX = 2048  # one-hot baseline: the first this many nucleotides
NUCLEOTIDE_BUDGET = 1 << 20  # per embedding batch, padding included


@dataclass
class ProbeSet:
    """Sequences (as inputs), one label each, and the group each belongs to."""

    inputs: Inputs
    labels: np.ndarray
    groups: np.ndarray
    name: str


@torch.no_grad()
def embed(
    module: nn.Module,
    inputs: Inputs,
    rows: np.ndarray | None = None,
    *,
    device: str = "cpu",
    batch: int = 256,
    tracks: int = 6,
) -> np.ndarray:
    """float32 [len(rows), width]: the frozen encoder's pooled representation (eval mode: no
    dropout, BatchNorm running statistics untouched), in batches of similar length."""
    rows = np.arange(inputs.n) if rows is None else rows
    was = module.training
    module.eval()
    out: np.ndarray | None = None
    order = np.argsort(inputs.lengths[rows], kind="stable")
    for part in length_batches(inputs.lengths[rows][order], batch, order):
        x, lengths = padded(inputs, rows[part], tracks)
        h = module(x.to(device), lengths.to(device)).float().cpu().numpy()
        if out is None:
            out = np.zeros((len(rows), h.shape[1]), dtype=np.float32)
        out[part] = h
    module.train(was)
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def length_batches(
    sorted_lengths: np.ndarray, batch: int, order: np.ndarray, budget: int = NUCLEOTIDE_BUDGET
) -> list[np.ndarray]:
    """Cut `order` (sorted by length) into batches of at most `batch` sequences and, padded to
    their longest, at most `budget` nucleotides (long transcripts go a few at a time)."""
    out, start = [], 0
    while start < len(order):
        end = start + 1
        while end < len(order) and end - start < batch and (end + 1 - start) * sorted_lengths[end] <= budget:
            end += 1
        out.append(order[start:end])
        start = end
    return out


def group_split(groups: np.ndarray, seed: int, test: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """(train pool, test) row indices: whole groups, shuffled by `seed`, fill the test share."""
    rng = np.random.default_rng(seed)
    unique, counts = np.unique(groups, return_counts=True)
    order = rng.permutation(len(unique))
    taken = np.cumsum(counts[order]) <= test * len(groups)
    test_groups = unique[order[taken]] if taken.any() else unique[order[:1]]
    in_test = np.isin(groups, test_groups)
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)


def ridge_r(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, groups: np.ndarray) -> float:
    """Pearson r on `test` of ridge regression on standardised features, its penalty chosen by
    grouped 3-fold cross-validation within `train` (rows of one group, e.g. variants of one UTR,
    share a fold: leave-one-out would reward memorising the group)."""
    folds = fold_of(groups[train], 3)
    if len(np.unique(folds)) < 2:
        best = float(np.median(ALPHAS))
    else:
        errors = np.zeros(len(ALPHAS))
        for k in np.unique(folds):
            inner, held = train[folds != k], train[folds == k]
            errors += ((ridge_path(x[inner], y[inner], x[held]) - y[held][:, None]) ** 2).sum(0)
        best = float(ALPHAS[int(np.argmin(errors))])
    predicted = ridge_path(x[train], y[train], x[test], np.array([best]))[:, 0]
    return correlation(predicted, y[test])


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


def correlation(predicted: np.ndarray, observed: np.ndarray) -> float:
    if np.std(predicted) < 1e-12 or np.std(observed) < 1e-12:
        return 0.0
    return float(pearsonr(predicted, observed)[0])


def scratch_r(
    data: ProbeSet, module_args: dict[str, Any], train: np.ndarray, test: np.ndarray, seed: int, steps: int, device: str
) -> float:
    """The same encoder with a linear head trained on the labels from random weights (Adam, MSE
    on standardised labels); the epoch is chosen on a grouped validation share of `train`."""
    torch.manual_seed(seed)
    inner, valid = group_split(data.groups[train], seed + 7, test=0.15)
    inner, valid = train[inner], train[valid]
    if len(valid) == 0 or len(inner) < 2:
        inner, valid = train, train
    y = data.labels
    mu, sd = float(y[inner].mean()), float(y[inner].std() or 1.0)
    encoder = IsoCLRNet(**module_args).encoder
    head = nn.Linear(encoder.width, 1)
    net = nn.ModuleDict({"encoder": encoder, "head": head}).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    batch = 64
    per_epoch = max(1, math.ceil(len(inner) / batch))
    epochs = max(1, min(200, math.ceil(steps / per_epoch)))
    rng = np.random.default_rng(seed)
    target = torch.from_numpy(((y - mu) / sd).astype(np.float32))

    def predict(rows: np.ndarray) -> np.ndarray:
        net.eval()
        with torch.no_grad():
            h = torch.from_numpy(embed(encoder, data.inputs, rows, device=device, tracks=module_args["tracks"])).to(
                device
            )
            return np.asarray(head(h).squeeze(-1).cpu().numpy())

    best, best_state = -math.inf, None
    for _ in range(epochs):
        net.train()
        order = rng.permutation(inner)
        for lo in range(0, len(order), batch):
            rows = order[lo : lo + batch]
            if len(rows) < 2:
                continue
            x, lengths = padded(data.inputs, rows, module_args["tracks"])
            out = head(encoder(x.to(device), lengths.to(device))).squeeze(-1)
            loss = nn.functional.mse_loss(out, target[rows].to(device))
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
        figure = correlation(predict(valid), y[valid])
        if figure > best:
            best, best_state = figure, {k: v.detach().clone() for k, v in net.state_dict().items()}
    if best_state is not None:
        net.load_state_dict(best_state)
    return correlation(predict(test), y[test])


def low_data_curves(
    data: ProbeSet,
    module: nn.Module,
    module_args: dict[str, Any],
    *,
    seeds: tuple[int, ...],
    fractions: tuple[float, ...],
    scratch_steps: int,
    device: str,
    on_progress: OnProgress = silent,
) -> dict[str, Any]:
    """Pearson r on held-out groups per method, label share and seed, and mean ± SD."""
    keep = np.flatnonzero(np.isfinite(data.labels))
    sequences = [data.inputs.sequence(int(i)) for i in range(data.inputs.n)]
    torch.manual_seed(0)
    untrained = IsoCLRNet(**module_args).to(device)  # what pretraining adds to the architecture
    features: dict[str, np.ndarray] = {
        "isoclr": embed(module, data.inputs, device=device, tracks=module_args["tracks"]),
        "untrained": embed(untrained, data.inputs, device=device, tracks=module_args["tracks"]),
        "onehot": one_hot_flat(sequences, min(ONE_HOT_MAX, max(map(len, sequences)))),
        "kmer3": kmer_counts(sequences, 3),
        "kmer5": kmer_counts(sequences, 5),
    }
    methods = [*features, *(["scratch"] if scratch_steps > 0 else [])]
    scores: dict[str, dict[float, list[float]]] = {m: {f: [] for f in fractions} for m in methods}
    sizes: dict[float, list[int]] = {f: [] for f in fractions}
    total, done = len(seeds) * len(fractions), 0
    for seed in seeds:
        pool, test = group_split(data.groups[keep], seed)
        pool, test = keep[pool], keep[test]
        rng = np.random.default_rng(seed + 1)
        shuffled = rng.permutation(pool)
        for fraction in fractions:
            train = np.sort(shuffled[: max(MIN_TRAIN, round(fraction * len(pool)))])
            sizes[fraction].append(len(train))
            for name, x in features.items():
                scores[name][fraction].append(ridge_r(x, data.labels, train, test, data.groups))
            if scratch_steps > 0:
                scores["scratch"][fraction].append(
                    scratch_r(data, module_args, train, test, seed, scratch_steps, device)
                )
            done += 1
            on_progress(done, total, f"{data.name}: seed {seed}, {fraction:g} of the labels")
    table = {m: {f"{f:g}": summary(scores[m][f]) for f in fractions} for m in methods}
    baselines = [m for m in methods if m != "isoclr"]
    margin = {}
    for f in fractions:
        key = f"{f:g}"
        best = max(baselines, key=lambda m: table[m][key]["mean"])
        margin[key] = {
            "best_baseline": best,
            "isoclr_minus_best": round(table["isoclr"][key]["mean"] - table[best][key]["mean"], 4),
        }
    return {
        "labelled": int(len(keep)),
        "groups": int(len(np.unique(data.groups[keep]))),
        "seeds": list(seeds),
        "train_sizes": {f"{f:g}": sizes[f] for f in fractions},
        "test_share": 0.2,
        "metric": "pearson_r",
        "methods": table,
        "margin": margin,
    }


def isoform_retrieval(
    inputs: Inputs, vectors: dict[str, np.ndarray], max_length: int, limit: int = 5000, seed: int = 0
) -> dict[str, Any]:
    """For transcripts of genes with another transcript (at most `limit` of them): is the
    nearest other transcript (cosine) an isoform of the same gene, and the AUC of their
    same-gene pairs against their pairs with every other transcript."""
    eligible = np.flatnonzero(inputs.lengths <= max_length)
    gene = inputs.gene_of[eligible]
    counts = np.bincount(gene, minlength=len(inputs.genes))
    anchors = np.flatnonzero(counts[gene] >= 2)
    if len(anchors) > limit:
        anchors = np.sort(np.random.default_rng(seed).choice(anchors, limit, replace=False))
    out: dict[str, Any] = {"transcripts": int(len(eligible)), "anchors": int(len(anchors)), "methods": {}}
    if len(anchors) == 0:
        return {**out, "note": "no gene has two transcripts"}
    same = gene[anchors][:, None] == gene[None, :]
    others = np.ones_like(same)
    others[np.arange(len(anchors)), anchors] = False
    for name, x in vectors.items():
        v = x[eligible]
        v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        sim = v[anchors] @ v.T
        sim[~others] = -np.inf
        nearest = sim.argmax(1)
        out["methods"][name] = {
            "nearest_is_isoform": round(float(same[np.arange(len(anchors)), nearest].mean()), 4),
            "pair_auc": round(float(roc_auc_score(same[others], sim[others])), 4),
        }
    return out
