"""RDKit helpers shared by derived edges and the molecule models: Murcko scaffolds (the groups
InfoAlign's molecule similarity stays within, and the downstream scaffold split) and Morgan bits
at any radius and width."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import rdFingerprintGenerator
from rdkit.Chem.Scaffolds import MurckoScaffold

RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]  # callers report invalid SMILES themselves (as rejects)
_PARAMS = Chem.SmilesParserParams()
_PARAMS.strictCXSMILES = False  # type: ignore[assignment]  # keep the structure when a CXSMILES extension is not understood


def mol_from_smiles(smiles: str) -> Chem.Mol | None:
    """The molecule of a SMILES (None when RDKit cannot read it): the one parser of the ingest,
    the derived edges and the models, so they agree on which molecules exist."""
    return Chem.MolFromSmiles(smiles, _PARAMS) if smiles else None


def murcko_scaffold(smiles: str) -> str:
    """The Bemis–Murcko scaffold as canonical SMILES; '' for an acyclic or unreadable molecule."""
    mol = mol_from_smiles(smiles)
    if mol is None:
        return ""
    return str(MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False))  # type: ignore[no-untyped-call]


def morgan_bits(smiles: Iterable[str], radius: int, bits: int) -> np.ndarray:
    """uint8 [n, bits]: Morgan fingerprints (the generator API, not the deprecated call); an
    unreadable SMILES gets a zero row."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    rows = []
    for s in smiles:
        mol = mol_from_smiles(s)
        rows.append(
            generator.GetFingerprintAsNumPy(mol).astype(np.uint8) if mol is not None else np.zeros(bits, dtype=np.uint8)
        )
    return np.stack(rows) if rows else np.zeros((0, bits), dtype=np.uint8)


def scaffold_groups(smiles: Iterable[str]) -> np.ndarray:
    """int64 [n]: a group number per molecule, shared by molecules with the same scaffold; each
    acyclic or unreadable molecule is a group of its own."""
    seen: dict[str, int] = {}
    groups = []
    for i, s in enumerate(smiles):
        scaffold = murcko_scaffold(s)
        groups.append(seen.setdefault(scaffold, len(seen)) if scaffold else -1 - i)
    out = np.asarray(groups, dtype=np.int64)
    lonely = out < 0
    out[lonely] = len(seen) + np.arange(int(lonely.sum()))
    return out
