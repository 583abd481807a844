"""Molecular graphs for the graph encoders (InfoAlign's GIN, the D-MPNN baseline): RDKit atoms and bonds as OGB's 9 atom and 3 bond integer
features (`ogb.utils.features`, re-implemented so kgctl needs no ogb), packed for many molecules
at once, and gathered into a batch with vectorised offsets (no Python loop per molecule)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from rdkit import Chem
from torch import Tensor, nn

from kgctl.graph.chem import mol_from_smiles

CHIRALITY = ("CHI_UNSPECIFIED", "CHI_TETRAHEDRAL_CW", "CHI_TETRAHEDRAL_CCW", "CHI_OTHER")
HYBRIDISATION = ("SP", "SP2", "SP3", "SP3D", "SP3D2")
BOND_TYPES = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")
BOND_STEREO = ("STEREONONE", "STEREOZ", "STEREOE", "STEREOCIS", "STEREOTRANS", "STEREOANY")
# Sizes of each feature's vocabulary (the last value of each is "other").
ATOM_DIMS = (119, 5, 12, 12, 10, 6, 6, 2, 2)
BOND_DIMS = (5, 6, 2)


def _index(value: object, choices: Sequence[object]) -> int:
    return choices.index(value) if value in choices else len(choices)


def atom_features(atom: Chem.Atom) -> list[int]:
    return [
        min(atom.GetAtomicNum() - 1, 118) if atom.GetAtomicNum() > 0 else 118,
        _index(str(atom.GetChiralTag()), CHIRALITY),
        min(atom.GetTotalDegree(), 11),
        _index(atom.GetFormalCharge(), range(-5, 6)),
        min(atom.GetTotalNumHs(), 9),
        min(atom.GetNumRadicalElectrons(), 5),
        _index(str(atom.GetHybridization()), HYBRIDISATION),
        int(atom.GetIsAromatic()),
        int(atom.IsInRing()),
    ]


def bond_features(bond: Chem.Bond) -> list[int]:
    return [
        _index(str(bond.GetBondType()), BOND_TYPES),
        _index(str(bond.GetStereo()), BOND_STEREO),
        int(bond.GetIsConjugated()),
    ]


@dataclass
class MolGraphs:
    """Many molecular graphs in flat arrays: molecule i's atoms are
    `atoms[atom_ptr[i]:atom_ptr[i+1]]`, its directed bonds (both directions)
    `bonds/edges[:, bond_ptr[i]:bond_ptr[i+1]]`, with atom numbers local to the molecule."""

    atoms: np.ndarray  # uint8 [A, 9]
    bonds: np.ndarray  # uint8 [B, 3]
    edges: np.ndarray  # int32 [2, B], local atom numbers
    atom_ptr: np.ndarray  # int64 [n + 1]
    bond_ptr: np.ndarray  # int64 [n + 1]

    def __len__(self) -> int:
        return len(self.atom_ptr) - 1

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        return {f"{prefix}{k}": getattr(self, k) for k in ("atoms", "bonds", "edges", "atom_ptr", "bond_ptr")}

    @classmethod
    def from_arrays(cls, f: Mapping[str, np.ndarray], prefix: str) -> MolGraphs:
        return cls(*(f[f"{prefix}{k}"] for k in ("atoms", "bonds", "edges", "atom_ptr", "bond_ptr")))

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(atoms, edge_index with batch-wide atom numbers, bond features, molecule of each atom)
        of the molecules `rows`, in that order."""
        atom_counts = np.diff(self.atom_ptr)[rows]
        bond_counts = np.diff(self.bond_ptr)[rows]
        atoms = _ranges(self.atom_ptr[rows], atom_counts)
        bonds = _ranges(self.bond_ptr[rows], bond_counts)
        shift = np.repeat(np.cumsum(atom_counts) - atom_counts, bond_counts)
        edge_index = self.edges[:, bonds].astype(np.int64) + shift
        batch = np.repeat(np.arange(len(rows)), atom_counts)
        return self.atoms[atoms], edge_index, self.bonds[bonds], batch

    def batch(self, rows: np.ndarray, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x, edge_index, edge_attr, batch = self.gather(rows)
        return (
            torch.from_numpy(x).long().to(device),
            torch.from_numpy(edge_index).to(device),
            torch.from_numpy(edge_attr).long().to(device),
            torch.from_numpy(batch).to(device),
        )


def _ptr(counts: np.ndarray) -> np.ndarray:
    ptr = np.zeros(len(counts) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(counts)
    return ptr


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenated aranges [starts[i], starts[i] + counts[i]) without a Python loop."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - (np.cumsum(counts) - counts), counts)
    return offsets + np.arange(total)


def featurise(smiles: Sequence[str]) -> tuple[MolGraphs, np.ndarray]:
    """The graphs of every readable SMILES, and a bool mask of which were readable (an atom-less
    molecule counts as unreadable)."""
    atoms: list[list[int]] = []
    bonds: list[list[int]] = []
    edges: list[tuple[int, int]] = []
    atom_counts, bond_counts, ok = [], [], np.zeros(len(smiles), dtype=bool)
    for i, s in enumerate(smiles):
        mol = mol_from_smiles(s)
        if mol is None or mol.GetNumAtoms() == 0:
            continue
        ok[i] = True
        atoms += [atom_features(a) for a in mol.GetAtoms()]
        for bond in mol.GetBonds():
            a, b = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
            feats = bond_features(bond)
            bonds += [feats, feats]
            edges += [(a, b), (b, a)]
        atom_counts.append(mol.GetNumAtoms())
        bond_counts.append(2 * mol.GetNumBonds())
    return MolGraphs(
        np.asarray(atoms, dtype=np.uint8).reshape(-1, len(ATOM_DIMS)),
        np.asarray(bonds, dtype=np.uint8).reshape(-1, len(BOND_DIMS)),
        np.asarray(edges, dtype=np.int32).reshape(-1, 2).T.copy(),
        _ptr(np.asarray(atom_counts, dtype=np.int64)),
        _ptr(np.asarray(bond_counts, dtype=np.int64)),
    ), ok


class FeatureSum(nn.Module):
    """OGB's Atom/BondEncoder: one embedding per integer feature, summed (Xavier init). No
    `max_norm`: it rescales the weights in place on every lookup, so even a frozen encoder in
    eval mode would change."""

    def __init__(self, dims: tuple[int, ...], hidden: int) -> None:
        super().__init__()
        tables = [nn.Embedding(d, hidden) for d in dims]
        for table in tables:
            nn.init.xavier_uniform_(table.weight)
        self.tables = nn.ModuleList(tables)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.tables[0](x[:, 0])
        for i in range(1, len(self.tables)):
            out = out + self.tables[i](x[:, i])
        return out
