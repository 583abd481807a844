"""Molecule probes (methods/infoalign.md §6): the four property sets in InfoAlign's raw_data
layout with their random scaffold split 60/15/25 (scaffold groups shuffled with seed 3; MLP head),
beside the head on Morgan fingerprints, a random forest on them and Tanimoto nearest neighbours
(k chosen on validation). Items are SMILES strings."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from rdkit import Chem
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

from kgctl.core.errors import KgctlError
from kgctl.graph.chem import mol_from_smiles, morgan_bits, murcko_scaffold
from kgctl.graph.similarity import tanimoto
from kgctl.models.probing.heads import Split, headline, score, validation_share
from kgctl.models.probing.labels import (
    FeatureBaseline,
    Labelled,
    LabelSet,
    PredictorBaseline,
    register_features,
    register_label_set,
    register_predictor,
)

if TYPE_CHECKING:
    from kgctl.models.evaluators import Context
    from kgctl.models.probing.evaluate import ProbeOptions

KIND = "molecule"
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


def inchikeys(smiles: list[str]) -> list[str]:
    return [Chem.MolToInchiKey(mol_from_smiles(s)) for s in smiles]  # type: ignore[no-untyped-call]


def read_assays(path: Path, name: str) -> Assays:
    """A property set's `assays.csv.gz`: SMILES and one column per task (identifier columns are
    never labels); rows RDKit cannot read are dropped and counted."""
    if name not in SETS:
        raise KgctlError(f"unknown property set {name!r}; choose from {', '.join(SETS)}")
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


def official_scaffold_split(
    smiles: list[str], fractions: tuple[float, float, float] = FRACTIONS
) -> dict[str, np.ndarray]:
    """The split of the official repository (liugangcode/InfoAlign `dataset/data_utils.py`
    `scaffold_split`): scaffolds as RDKit's Murcko scaffold SMILES with stereochemistry, groups in
    first-seen order shuffled by `np.random.seed(3)`, then filled molecule by molecule, 60 % train,
    15 % valid, the rest test, so a scaffold group may straddle two parts."""
    from rdkit.Chem.Scaffolds import MurckoScaffold

    groups: dict[str, list[int]] = {}
    for i, s in enumerate(smiles):
        mol = Chem.MolFromSmiles(s)
        scaffold = Chem.MolToSmiles(MurckoScaffold.GetScaffoldForMol(mol)) if mol is not None else ""  # type: ignore[no-untyped-call]
        groups.setdefault(scaffold, []).append(i)
    ordered = list(groups.values())
    np.random.RandomState(SPLIT_SEED).shuffle(ordered)  # the legacy global generator, seeded 3
    train_cut = int(fractions[0] * len(smiles))
    valid_cut = int(fractions[1] * len(smiles)) + train_cut
    flat = np.array([i for members in ordered for i in members], dtype=np.int64)
    return {"train": flat[:train_cut], "valid": flat[train_cut:valid_cut], "test": flat[valid_cut:]}


SPLIT_RULES: dict[str, tuple[Callable[[list[str]], dict[str, np.ndarray]], str]] = {
    "grouped": (scaffold_split, "random scaffold split 60/15/25, whole scaffold groups shuffled with seed 3"),
    "official": (
        official_scaffold_split,
        "the official repository's scaffold split 60/15/25 (groups shuffled with seed 3, filled in order)",
    ),
}


class PropertySet(LabelSet):
    """One of InfoAlign's property sets and its published split."""

    kind = KIND
    head = "mlp"

    def load(self, options: ProbeOptions, ctx: Context) -> Labelled:
        if not options.file:
            raise KgctlError(
                f"--labels {self.name} needs --file (its assays.csv.gz, e.g. "
                f"../shared/data/infoalign/{SETS[self.name][0]})"
            )
        data = read_assays(Path(options.file), self.name)
        rule, rule_text = SPLIT_RULES[options.split_rule]
        split = rule(data.smiles)
        if any(len(rows) == 0 for rows in split.values()):
            raise KgctlError(
                f"{self.name}: the scaffold split leaves a part empty "
                f"({', '.join(f'{k} {len(v)}' for k, v in split.items())}): too few scaffolds"
            )
        scaffold = {s: i for i, s in enumerate(dict.fromkeys(murcko_scaffold(s) for s in data.smiles))}
        facts = {
            "molecules": len(data.smiles),
            "tasks": len(data.tasks),
            "unreadable_smiles": data.unreadable,
            "split": {k: len(v) for k, v in split.items()},
            "split_rule": rule_text,
        }
        return Labelled(
            f"{self.name} ({Path(options.file).name})",
            data.smiles,
            data.labels,
            np.array([scaffold[murcko_scaffold(s)] for s in data.smiles]),
            data.metric,
            Split(split["train"], split["valid"], split["test"]),
            facts,
        )


@register_label_set
class ChEMBL2k(PropertySet):
    name = "chembl2k"
    description = "ChEMBL2k: binary ChEMBL assays (ROC-AUC)"


@register_label_set
class Broad6k(PropertySet):
    name = "broad6k"
    description = "Broad6k: binary Broad Institute assays (ROC-AUC)"


@register_label_set
class ToxCast(PropertySet):
    name = "toxcast"
    description = "ToxCast: binary toxicity assays (ROC-AUC)"


@register_label_set
class Biogen3k(PropertySet):
    name = "biogen3k"
    description = "Biogen3K: ADME measurements (MAE)"


FINGERPRINT_BITS = 1024
FOREST_BITS = 2048  # what a chemist fitting a forest would use


@register_features
class Fingerprint(FeatureBaseline):
    name = "fingerprint"
    kind = KIND
    description = f"Morgan fingerprint, radius 2, {FINGERPRINT_BITS} bits"

    def features(self, items: Any) -> np.ndarray:
        return fingerprints(tuple(items))


@functools.lru_cache(maxsize=4)
def fingerprints(smiles: tuple[str, ...], bits: int = FINGERPRINT_BITS) -> np.ndarray:
    """float32 Morgan bits (radius 2) of a set's molecules, computed once per set and width: the
    head's features, the forest and the Tanimoto neighbours of every seed and label share read
    these arrays (none writes to them)."""
    return morgan_bits(list(smiles), 2, bits).astype(np.float32)


@register_predictor
class RandomForest(PredictorBaseline):
    """A class-balanced forest per task (a regression forest for MAE sets) on 2,048-bit Morgan
    fingerprints: each setting of `grid` fitted on the training rows and scored on the validation
    rows (or a grouped share of training) by the set's metric over all tasks; the best refitted
    on train + validation for the test rows. A single-class task predicts its rate."""

    name = "random_forest"
    kind = KIND
    description = (
        f"class-balanced random forest per task on Morgan fingerprints (radius 2, {FOREST_BITS} bits), "
        "leaf size and features per split chosen on validation"
    )
    grid: tuple[tuple[int, str], ...] = ((1, "sqrt"), (3, "sqrt"), (1, "log2"))  # (min leaf, max features)

    def fit_predict(self, data: Labelled, split: Split, seed: int, options: ProbeOptions) -> np.ndarray:
        x = fingerprints(tuple(data.items), FOREST_BITS)
        chosen = validation_share(split, data.groups, seed)
        found = {
            setting: headline(
                score(
                    data.labels[chosen.valid],
                    self.forests(x, data, chosen.train, chosen.valid, setting, seed, options),
                    data.metric,
                ),
                data.metric,
            )
            for setting in self.grid
        }
        best = max(found, key=lambda k: found[k])  # ties: the first (sklearn's defaults)
        self.chosen = {"min_samples_leaf": best[0], "max_features": best[1]}
        references = np.concatenate([chosen.train, chosen.valid])
        return self.forests(x, data, references, split.test, best, seed, options)

    def forests(
        self,
        x: np.ndarray,
        data: Labelled,
        fit_rows: np.ndarray,
        rows: np.ndarray,
        setting: tuple[int, str],
        seed: int,
        options: ProbeOptions,
    ) -> np.ndarray:
        """Predictions [len(rows), T] of one forest per task fitted on `fit_rows`."""
        y = data.labels
        leaf, features = setting
        out = np.zeros((len(rows), y.shape[1]))
        for t in range(y.shape[1]):
            known = fit_rows[~np.isnan(y[fit_rows, t])]
            labels = y[known, t]
            if data.metric == "auc" and len(np.unique(labels)) < 2:
                out[:, t] = labels.mean() if len(labels) else 0.5
                continue
            kwargs = {"min_samples_leaf": leaf, "max_features": features, "random_state": seed, "n_jobs": -1}
            if data.metric == "auc":
                model = RandomForestClassifier(options.rf_trees, class_weight="balanced", **kwargs)
                out[:, t] = model.fit(x[known], labels).predict_proba(x[rows])[:, 1]
            else:
                regressor = RandomForestRegressor(options.rf_trees, **kwargs)
                out[:, t] = regressor.fit(x[known], labels).predict(x[rows])
        return out


@register_predictor
class TanimotoKNN(PredictorBaseline):
    """Per task, the weighted mean label of a test molecule's k most Tanimoto-similar labelled
    training molecules (among its `POOL` most similar), each weighed by similarity to the power
    p (0: uniform, 1: similarity, 3: the nearest dominate); k and p chosen on the validation rows
    (or a grouped share of training) by the set's metric, then read with train + validation as
    references, as the forest is fitted."""

    name = "tanimoto_knn"
    kind = KIND
    description = f"Tanimoto k-NN on Morgan fingerprints (radius 2, {FINGERPRINT_BITS} bits), k and weighting chosen on validation"
    grid = (1, 3, 5, 10, 20, 50)
    powers = (1.0, 0.0, 3.0)  # the first is the default weighting
    pool = 200

    def fit_predict(self, data: Labelled, split: Split, seed: int, options: ProbeOptions) -> np.ndarray:
        bits = fingerprints(tuple(data.items))
        chosen = validation_share(split, data.groups, seed)
        found = {
            key: headline(score(data.labels[chosen.valid], p, data.metric), data.metric)
            for key, p in self.predict(bits, data.labels, chosen.train, chosen.valid).items()
        }
        best = max(found, key=lambda key: found[key])  # ties: the default weighting, the smallest k
        self.chosen = {"k": best[1], "power": best[0]}
        references = np.concatenate([chosen.train, chosen.valid])
        return self.predict(bits, data.labels, references, split.test, (best,))[best]

    def predict(
        self,
        bits: np.ndarray,
        labels: np.ndarray,
        references: np.ndarray,
        queries: np.ndarray,
        grid: tuple[tuple[float, int], ...] = (),
    ) -> dict[tuple[float, int], np.ndarray]:
        """{(power, k): predictions [len(queries), T]} for each setting (default: every power × k)."""
        similarity = tanimoto(bits[queries], bits[references])
        pool = min(self.pool, len(references))
        near = np.argsort(-similarity, axis=1, kind="stable")[:, :pool]
        sims = np.take_along_axis(similarity, near, 1) + 1e-6
        settings = grid or tuple((p, k) for p in self.powers for k in self.grid)
        out = {key: np.zeros((len(queries), labels.shape[1])) for key in settings}
        for t in range(labels.shape[1]):
            y = labels[references[near], t]  # [queries, pool]
            known = ~np.isnan(y)
            rank = np.cumsum(known, axis=1)
            seen = labels[references, t][~np.isnan(labels[references, t])]
            fallback = float(seen.mean()) if len(seen) else 0.5
            for (power, k), predicted in out.items():
                weight = np.where(known & (rank <= k), sims**power, 0.0)
                total = weight.sum(1)
                mean = (weight * np.nan_to_num(y)).sum(1) / np.maximum(total, 1e-12)
                predicted[:, t] = np.where(total > 0, mean, fallback)
        return out
