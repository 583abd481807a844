"""The molecule baselines a chemist would pick (class-balanced forest chosen on validation, the
D-MPNN trained end to end) and the official repository's split rule beside ours."""

from __future__ import annotations

import copy
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem
from rdkit.Chem.Scaffolds import MurckoScaffold

from kgctl.graph.chem import murcko_scaffold
from kgctl.models.probing.dmpnn import DMPNN, DirectedMPNN
from kgctl.models.probing.evaluate import ProbeOptions
from kgctl.models.probing.heads import Split, score
from kgctl.models.probing.labels import Labelled
from kgctl.models.probing.molecules import (
    SETS,
    RandomForest,
    official_scaffold_split,
    read_assays,
    scaffold_split,
)
from kgctl.models.probing.molgraph import featurise

# Molecules with and without a nitrogen, across many scaffolds: a property graphs can learn.
PLANTED = (
    [f"{'C' * i}c1ccc(cc1){'O' if i % 2 else 'N'}" for i in range(1, 21)]
    + [f"c1ccc(cc1)C(=O){'N' if i % 3 else 'O'}{'C' * i}" for i in range(1, 21)]
    + [f"{'C' * j}C1{'C' * (size - 1)}1{'N' if j % 2 else 'Cl'}" for size in range(3, 9) for j in range(1, 6)]
)


def scaffold_of(mol: Chem.Mol) -> str:
    return str(Chem.MolToSmiles(MurckoScaffold.GetScaffoldForMol(mol)))  # type: ignore[no-untyped-call]


def official_split_as_published(smiles: list[str]) -> tuple[list[int], list[int], list[int]]:
    """liugangcode/InfoAlign @eed96f3 `dataset/data_utils.py` `scaffold_split`, line for line
    (joblib's ordered map written as a loop)."""
    indices = list(range(len(smiles)))
    mols = [Chem.MolFromSmiles(s) for s in smiles]
    batched_id: dict[str, list[int]] = defaultdict(list)
    for mol, molecule_id in zip(mols, indices, strict=True):
        batched_id[scaffold_of(mol)].append(molecule_id)
    ids = list(batched_id.values())
    train_cutoff = int(0.6 * len(smiles))
    valid_cutoff = int(0.15 * len(smiles)) + train_cutoff
    train: list[int] = []
    valid: list[int] = []
    test: list[int] = []
    inds_all = copy.deepcopy(ids)
    np.random.seed(3)
    np.random.shuffle(inds_all)
    count = 0
    for inds_list in inds_all:
        for ind in inds_list:
            (train if count < train_cutoff else valid if count < valid_cutoff else test).append(ind)
            count += 1
    return train, valid, test


def test_the_official_split_is_the_official_repositorys(shared_data: Path) -> None:
    chembl = read_assays(shared_data / "infoalign" / SETS["chembl2k"][0], "chembl2k")
    ours = official_scaffold_split(chembl.smiles)
    train, valid, test = official_split_as_published(chembl.smiles)
    assert [ours[k].tolist() for k in ("train", "valid", "test")] == [train, valid, test]
    assert [len(train), len(valid), len(test)] == [1413, 353, 589]
    # It fills molecule by molecule, so scaffolds straddle parts; ours keeps each group whole.
    scaffold = [scaffold_of(Chem.MolFromSmiles(s)) for s in chembl.smiles]
    part = {i: k for k, rows in ours.items() for i in rows.tolist()}
    parts_of: dict[str, set[str]] = defaultdict(set)
    for i, s in enumerate(scaffold):
        parts_of[s].add(part[i])
    assert any(len(p) > 1 for p in parts_of.values())
    grouped = scaffold_split(chembl.smiles)
    whole = {i: k for k, rows in grouped.items() for i in rows.tolist()}
    ours_groups: dict[str, set[str]] = defaultdict(set)
    for i, s in enumerate(chembl.smiles):
        ours_groups[murcko_scaffold(s)].add(whole[i])
    assert all(len(p) == 1 for p in ours_groups.values())


def test_dmpnn_messages_leave_out_the_reverse_bond() -> None:
    # In ethane each bond's only incoming message is its own reverse: extra depth adds nothing.
    # In propane the middle atom passes one bond's message on to the other: depth matters.
    torch.manual_seed(0)
    deep, shallow = DMPNN(tasks=1, hidden=8, depth=3).eval(), DMPNN(tasks=1, hidden=8, depth=1).eval()
    shallow.load_state_dict(deep.state_dict())
    for smiles, same in (("CC", True), ("CCC", False)):
        graphs = featurise([smiles])[0]
        args = (*graphs.batch(np.array([0]), torch.device("cpu")), 1)
        with torch.no_grad():
            assert torch.allclose(deep(*args), shallow(*args)) == same


def test_dmpnn_and_the_balanced_forest_learn_a_planted_property() -> None:
    labels = np.array([[float("N" in s)] for s in PLANTED])
    labels[::7] = np.nan  # some molecules unmeasured
    rng = np.random.default_rng(0)
    order = rng.permutation(len(PLANTED))
    split = Split(np.sort(order[:40]), np.sort(order[40:52]), np.sort(order[52:]))
    data = Labelled("planted", PLANTED, labels, np.arange(len(PLANTED)), "auc")
    model = DirectedMPNN()
    predicted = model.fit_predict(data, split, 0, ProbeOptions())
    assert predicted.shape == (len(split.test), 1) and ((predicted >= 0) & (predicted <= 1)).all()
    assert score(labels[split.test], predicted, "auc")["auc"] > 0.8
    assert 1 <= model.chosen["best_epoch"] <= DirectedMPNN.settings.epochs
    forest = RandomForest()
    predicted = forest.fit_predict(data, split, 0, ProbeOptions(rf_trees=50))
    assert score(labels[split.test], predicted, "auc")["auc"] > 0.8
    assert (forest.chosen["min_samples_leaf"], forest.chosen["max_features"]) in RandomForest.grid
