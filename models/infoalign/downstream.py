"""InfoAlign's downstream protocol (methods/infoalign.md §6): the four property sets, the random
scaffold split 60/15/25 (scaffold groups shuffled with seed 3), an MLP head on a frozen
representation with early stopping on validation, 5 seeds, mean ROC-AUC with the shares of tasks
above 0.80–0.95 (MAE for Biogen3K), beside random forest and MLP on Morgan fingerprints."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rdkit import Chem
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from torch import nn

from kgctl.core.errors import KgctlError
from kgctl.core.progress import OnProgress, silent
from kgctl.graph.chem import mol_from_smiles, morgan_bits, murcko_scaffold
from kgctl.models.metrics import rank_auc, summary

# The sets, their files in InfoAlign's raw_data layout, and their metric.
SETS = {
    "chembl2k": ("chembl2k/raw/assays.csv.gz", "auc"),
    "broad6k": ("broad6k/raw/assays.csv.gz", "auc"),
    "toxcast": ("moltoxcast/raw/assays.csv.gz", "auc"),
    "biogen3k": ("biogenadme/raw/assays.csv.gz", "mae"),
}
ID_COLUMNS = {
    "smiles",
    "inchikey",
    "Metadata_JCP2022",
    "ChEMBL_ID",
    "mol_id",
    "Internal ID",
    "Vendor ID",
    "CollectionName",
}
THRESHOLDS = (0.80, 0.85, 0.90, 0.95)
SPLIT_SEED = 3
FRACTIONS = (0.6, 0.15, 0.25)


@dataclass
class Assays:
    name: str
    smiles: list[str]
    labels: np.ndarray  # float [n, T], NaN where not measured
    tasks: list[str]
    metric: str  # auc or mae
    unreadable: int  # rows dropped because RDKit cannot read their SMILES

    def inchikeys(self) -> list[str]:
        return [Chem.MolToInchiKey(mol_from_smiles(s)) for s in self.smiles]  # type: ignore[no-untyped-call]


def read_assays(path: Path, name: str) -> Assays:
    """A property set's `assays.csv.gz`: SMILES and one column per task (identifier columns are
    never labels); rows RDKit cannot read are dropped and counted."""
    if name not in SETS:
        raise KgctlError(f"unknown task {name!r}; choose from {', '.join(SETS)}")
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise KgctlError(f"{path}: {exc}") from exc
    if "smiles" not in table.columns:
        raise KgctlError(f"{path}:1: no 'smiles' column (columns: {', '.join(map(str, table.columns[:8]))})")
    tasks = [c for c in table.columns if c not in ID_COLUMNS]
    labels = table[tasks].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    metric = SETS[name][1]
    if metric == "auc" and not np.isin(labels[~np.isnan(labels)], (0.0, 1.0)).all():
        raise KgctlError(f"{path}: {name} labels must be 0/1 (is this the {name} file?)")
    smiles = table["smiles"].astype(str).tolist()
    readable = np.array([mol_from_smiles(s) is not None for s in smiles])
    if readable.sum() < 20:
        raise KgctlError(f"{path}: only {int(readable.sum())} readable SMILES")
    return Assays(
        name,
        [s for s, ok in zip(smiles, readable, strict=True) if ok],
        labels[readable],
        tasks,
        metric,
        int((~readable).sum()),
    )


def scaffold_split(
    smiles: list[str], seed: int = SPLIT_SEED, fractions: tuple[float, float, float] = FRACTIONS
) -> dict[str, np.ndarray]:
    """InfoAlign's random scaffold split: the Murcko-scaffold groups in a random order (seed 3),
    each put into valid or test while they have room, the rest into train."""
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(smiles):
        groups.setdefault(murcko_scaffold(s), []).append(i)
    sets = list(groups.values())
    order = np.random.RandomState(seed).permutation(len(sets))
    n_valid, n_test = (
        int(np.floor(fractions[1] * len(smiles))),
        int(np.floor(fractions[2] * len(smiles))),
    )
    split: dict[str, list[int]] = {"train": [], "valid": [], "test": []}
    for g in order:
        members = sets[g]
        if len(split["valid"]) + len(members) <= n_valid:
            split["valid"] += members
        elif len(split["test"]) + len(members) <= n_test:
            split["test"] += members
        else:
            split["train"] += members
    return {k: np.array(sorted(v), dtype=np.int64) for k, v in split.items()}


def scores(y: np.ndarray, predicted: np.ndarray, metric: str) -> dict[str, Any]:
    """Mean ROC-AUC over tasks with both classes and the shares of all tasks at or above each
    threshold (a task that cannot be scored counts as below), or mean MAE over tasks."""
    values = []
    for t in range(y.shape[1]):
        known = ~np.isnan(y[:, t])
        if metric == "mae":
            if known.any():
                values.append(float(np.abs(predicted[known, t] - y[known, t]).mean()))
        else:
            values.append(rank_auc(y[known, t], predicted[known, t]))
    array = np.array(values)
    if metric == "mae":
        return {"mae": float(np.mean(array)), "per_task": [round(v, 4) for v in values]}
    scored = array[~np.isnan(array)]
    return {
        "auc": float(scored.mean()) if len(scored) else float("nan"),
        "tasks_scored": int(len(scored)),
        **{f"share_auc_{t:.2f}": float(np.mean(np.nan_to_num(array, nan=0.0) >= t)) for t in THRESHOLDS},
    }


def head(inputs: int, outputs: int, hidden: int = 1200) -> nn.Module:
    """The method's head: MLP(d → 1200, BatchNorm, GELU, Dropout 0.5 → T)."""
    return nn.Sequential(
        nn.Linear(inputs, hidden), nn.BatchNorm1d(hidden), nn.GELU(), nn.Dropout(0.5), nn.Linear(hidden, outputs)
    )


def fit_head(
    x: np.ndarray,
    y: np.ndarray,
    split: dict[str, np.ndarray],
    metric: str,
    seed: int,
    epochs: int = 300,
    patience: int = 50,
) -> np.ndarray:
    """Train the head full-batch (Adam lr 1e-3, weight decay 1e-5; NaN-masked BCE or L1) and
    return its test predictions at the epoch with the best validation figure."""
    torch.manual_seed(seed)
    features = torch.from_numpy(np.asarray(x, dtype=np.float32))
    target = torch.from_numpy(np.asarray(y, dtype=np.float32))
    net = head(features.shape[1], target.shape[1])
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5)
    train = torch.from_numpy(split["train"])
    xt, yt = features[train], target[train]
    known = ~torch.isnan(yt)
    best, best_epoch, best_state = -np.inf, 0, None
    for epoch in range(epochs):
        net.train()
        out = net(xt)
        if metric == "mae":
            loss = (out - torch.nan_to_num(yt)).abs()[known].mean()
        else:
            loss = nn.functional.binary_cross_entropy_with_logits(out[known], yt[known])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        figure = _validation(net, features, y, split["valid"], metric)
        if figure > best:
            best, best_epoch = figure, epoch
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
        elif epoch - best_epoch >= patience:
            break
    assert best_state is not None
    net.load_state_dict(best_state)
    return _predict(net, features[torch.from_numpy(split["test"])], metric)


def _predict(net: nn.Module, x: torch.Tensor, metric: str) -> np.ndarray:
    net.eval()
    with torch.no_grad():
        out = net(x)
        return (out if metric == "mae" else torch.sigmoid(out)).numpy()


def _validation(net: nn.Module, x: torch.Tensor, y: np.ndarray, rows: np.ndarray, metric: str) -> float:
    found = scores(y[rows], _predict(net, x[torch.from_numpy(rows)], metric), metric)
    value = -found["mae"] if metric == "mae" else found["auc"]
    return float(value) if np.isfinite(value) else -np.inf


def random_forest(
    x: np.ndarray, y: np.ndarray, split: dict[str, np.ndarray], metric: str, seed: int, trees: int = 100
) -> np.ndarray:
    """One forest per task on that task's labelled training molecules (train and validation:
    the forest has no settings chosen on validation); a single-class task predicts its rate."""
    fit_rows = np.concatenate([split["train"], split["valid"]])
    test = x[split["test"]]
    out = np.zeros((len(test), y.shape[1]))
    for t in range(y.shape[1]):
        known = fit_rows[~np.isnan(y[fit_rows, t])]
        labels = y[known, t]
        if metric == "auc" and len(np.unique(labels)) < 2:
            out[:, t] = labels.mean() if len(labels) else 0.5
            continue
        if metric == "mae":
            model: Any = RandomForestRegressor(trees, random_state=seed, n_jobs=-1)
            out[:, t] = model.fit(x[known], labels).predict(test)
        else:
            model = RandomForestClassifier(trees, random_state=seed, n_jobs=-1)
            out[:, t] = model.fit(x[known], labels).predict_proba(test)[:, 1]
    return out


def evaluate_set(
    data: Assays,
    encoders: dict[str, Callable[[list[str]], np.ndarray]],
    seeds: tuple[int, ...],
    *,
    rf_trees: int = 100,
    on_progress: OnProgress = silent,
) -> dict[str, Any]:
    """Every encoder's frozen representation with the head, and the two fingerprint baselines,
    on the same split and seeds: per method the mean ± SD of the set's figures."""
    split = scaffold_split(data.smiles)
    if any(len(rows) == 0 for rows in split.values()):
        raise KgctlError(
            f"{data.name}: the scaffold split leaves a part empty "
            f"({', '.join(f'{k} {len(v)}' for k, v in split.items())}): too few scaffolds"
        )
    fingerprints = morgan_bits(data.smiles, 2, 1024).astype(np.float32)
    features = {name: encode(data.smiles) for name, encode in encoders.items()}
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in [*features, "fingerprint_mlp", "random_forest"]}
    test_y = data.labels[split["test"]]
    total, done = len(seeds) * len(runs), 0
    for seed in seeds:
        for name, x in features.items():
            runs[name].append(scores(test_y, fit_head(x, data.labels, split, data.metric, seed), data.metric))
        runs["fingerprint_mlp"].append(
            scores(test_y, fit_head(fingerprints, data.labels, split, data.metric, seed), data.metric)
        )
        runs["random_forest"].append(
            scores(
                test_y,
                random_forest(fingerprints, data.labels, split, data.metric, seed, rf_trees),
                data.metric,
            )
        )
        done += len(runs)
        on_progress(done, total, f"{data.name}: seed {seed} done")
    keys = ["mae"] if data.metric == "mae" else ["auc", *(f"share_auc_{t:.2f}" for t in THRESHOLDS)]
    methods = {m: {k: summary([r[k] for r in found]) for k in keys} for m, found in runs.items()}
    return {
        "set": data.name,
        "metric": data.metric,
        "molecules": len(data.smiles),
        "tasks": len(data.tasks),
        "unreadable_smiles": data.unreadable,
        "split": {k: len(v) for k, v in split.items()},
        "split_rule": "random scaffold split 60/15/25, scaffold groups shuffled with seed 3",
        "seeds": list(seeds),
        "head": "MLP(d→1200, BN, GELU, dropout 0.5→T), Adam 1e-3, full batch, ≤300 epochs, patience 50 on validation",
        "random_forest_trees": rf_trees,
        "fingerprint": "Morgan radius 2, 1024 bits",
        "methods": methods,
    }
