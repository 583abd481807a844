"""`Molecule` nodes from SMILES, shared by every adapter that meets molecules (molecules, L1000):
keyed by InChIKey, with RDKit canonical SMILES and packed Morgan bits, so two sources that name
the same compound write the same node."""

from __future__ import annotations

import re

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from kgctl.graph.chem import mol_from_smiles
from kgctl.graph.records import Node
from kgctl.ingest.base import clean_props

MORGAN_RADIUS = 2
MORGAN_BITS = 2048
_GENERATOR = rdFingerprintGenerator.GetMorganGenerator(radius=MORGAN_RADIUS, fpSize=MORGAN_BITS)

Facts = tuple[str, str, bytes] | None
BROAD_ID = re.compile(r"^(BRD-[A-Z]\d{8})")


def broad_compound(sample: str) -> str | None:
    """The compound part of a Broad sample id (BRD-K12345678-001-01-1 → BRD-K12345678), which
    molecule tables and Cell Painting plates both name compounds by; None when it is not one."""
    found = BROAD_ID.match(sample.strip())
    return found.group(1) if found else None


def describe(mol: Chem.Mol) -> Facts:
    """(InChIKey, canonical SMILES, packed Morgan bits), or None when RDKit cannot make an InChIKey."""
    key = Chem.MolToInchiKey(mol)  # type: ignore[no-untyped-call]
    if not key:
        return None
    bits = _GENERATOR.GetFingerprintAsNumPy(mol).astype(np.uint8)
    return key, Chem.MolToSmiles(mol), np.packbits(bits).tobytes()


def describe_smiles(chunk: list[str]) -> list[Facts]:
    """`describe` for a chunk of SMILES (None where invalid); runs in worker processes."""
    out: list[Facts] = []
    for smiles in chunk:
        mol = mol_from_smiles(smiles)
        out.append(describe(mol) if mol is not None else None)
    return out


def molecule_node(facts: Facts, name: str | None, broad_id: str | None = None) -> Node | None:
    """The Molecule node; `broad_id` is the compound part of a Broad sample id (BRD-K12345678),
    which Cell Painting plates name compounds by."""
    if facts is None:
        return None
    key, smiles, fingerprint = facts
    props = {"smiles": smiles, "name": name, "fingerprint": fingerprint, "broad_id": broad_id}
    return Node("Molecule", key, clean_props(props))
