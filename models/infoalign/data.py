"""InfoAlign's inputs, built from the `context` view: the molecules (SMILES and their RDKit
graphs), the undirected walk graph with its weights and node types, one feature matrix per space
the walks reach (each node's row in it, −1 when it has none) and the drug targets held out of
the walk graph for evaluation. Saved in the run folder: training and evaluation need no Neo4j."""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from kgctl.core.errors import KgctlError
from kgctl.graph.chem import morgan_bits
from kgctl.graph.connection import Connection
from kgctl.graph.export import HeteroView, export
from kgctl.graph.views import view_spec
from kgctl.models.infoalign.config import InfoAlignConfig
from kgctl.models.probing.molgraph import MolGraphs, featurise

SPACES = {
    "fingerprint": "Molecule",
    "gene": "Gene",
    "expression": "ExpressionProfile",
    "morphology": "MorphologyProfile",
}
TARGETS = ("Molecule", "TARGETS", "Gene")


@dataclass
class Inputs:
    molecule_ids: np.ndarray  # str [M]: the first M nodes of the walk graph
    smiles: np.ndarray  # str [M]
    graphs: MolGraphs  # of the M molecules
    gene_ids: np.ndarray  # str [G]
    labels: list[str]  # node types, in the order of the walk graph's numbering
    node_type: np.ndarray  # int8 [N]
    edge_index: np.ndarray  # int64 [2, E], both directions of every edge
    edge_weight: np.ndarray  # float32 [E]
    features: dict[str, np.ndarray]  # space → [rows, width] (fingerprint uint8, others float32)
    rows: dict[str, np.ndarray]  # space → int64 [N]: each node's row, −1 when it has none
    targets_kept: np.ndarray  # int64 [K, 2]: (molecule, gene) TARGETS edges in the walk graph
    targets_held: np.ndarray  # int64 [H, 2]: held out of it
    meta: dict[str, Any]

    @property
    def n_molecules(self) -> int:
        return len(self.molecule_ids)

    def degree(self) -> np.ndarray:
        """int64 [N]: each node's edges in the walk graph."""
        return np.bincount(self.edge_index[0], minlength=len(self.node_type))

    def sha256(self) -> str:
        digest = hashlib.sha256()
        arrays = [
            self.edge_index,
            self.edge_weight,
            self.node_type,
            self.targets_held,
            *self.graphs.arrays("").values(),
            *(self.features[k] for k in sorted(self.features)),
        ]
        for array in arrays:
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()

    def save(self, path: Path) -> None:
        arrays = {
            "molecule_ids": self.molecule_ids,
            "smiles": self.smiles,
            "gene_ids": self.gene_ids,
            "labels": np.array(self.labels, dtype=str),
            "node_type": self.node_type,
            "edge_index": self.edge_index,
            "edge_weight": self.edge_weight,
            "targets_kept": self.targets_kept,
            "targets_held": self.targets_held,
            "meta": np.array(json.dumps(self.meta)),
            **self.graphs.arrays("graph_"),
        }
        arrays |= {f"features_{k}": v for k, v in self.features.items()}
        arrays |= {f"rows_{k}": v for k, v in self.rows.items()}
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path) -> Inputs:
        with np.load(path, allow_pickle=False) as f:
            spaces = [k.removeprefix("features_") for k in f.files if k.startswith("features_")]
            return cls(
                f["molecule_ids"],
                f["smiles"],
                MolGraphs.from_arrays(f, "graph_"),
                f["gene_ids"],
                [str(x) for x in f["labels"]],
                f["node_type"],
                f["edge_index"],
                f["edge_weight"],
                {k: f[f"features_{k}"] for k in spaces},
                {k: f[f"rows_{k}"] for k in spaces},
                f["targets_kept"],
                f["targets_held"],
                json.loads(str(f["meta"])),
            )


def min_max(x: np.ndarray) -> np.ndarray:
    """Each column scaled into [0, 1] over its observed values (NaN stays NaN; a constant
    column becomes 0), as InfoAlign scales its soft targets."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        low, high = np.nanmin(x, axis=0), np.nanmax(x, axis=0)
    span = np.where(np.isfinite(high - low) & (high > low), high - low, 1.0)
    return np.asarray(((x - np.nan_to_num(low)) / span).clip(0, 1), dtype=np.float32)


def feature_blocks(space: str, x: np.ndarray, names: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{space name: (the min-max-scaled rows of the nodes that have it, which nodes)}: one space,
    or where the export gave profiles of several datasets a column block each (`dataset:j`), one
    space per dataset (`morphology:<dataset>`), each with its own decoder."""
    parts = [re.fullmatch(r"(.+):(\d+)", n) for n in names]
    blocked = len(names) == x.shape[1] and all(parts)
    prefixes = [p.group(1) for p in parts if p] if blocked else []
    groups = sorted(set(prefixes)) if prefixes else [""]
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for group in groups:
        columns = np.array([p == group for p in prefixes]) if prefixes else np.ones(x.shape[1], dtype=bool)
        block = x[:, columns]
        has = ~np.isnan(block).all(axis=1)
        if has.any():
            name = f"{space}:{re.sub(r'[^A-Za-z0-9_@:-]', '_', group)}" if group else space
            out[name] = (min_max(block[has].astype(np.float32)), has)
    return out


def hold_out_targets(view: HeteroView, share: float, seed: int) -> tuple[HeteroView, np.ndarray, np.ndarray]:
    """The view without the TARGETS edges of `share` of the molecules that have any (chosen
    by `seed`), and the (molecule, gene) pairs kept and held out."""
    empty = np.zeros((0, 2), dtype=np.int64)
    if TARGETS not in view.edges:
        return view, empty, empty
    src, dst, weight = view.edges[TARGETS]
    pairs = np.column_stack([src, dst]).astype(np.int64)
    with_targets = np.unique(src)
    count = int(round(share * len(with_targets)))
    chosen = np.random.default_rng(seed).choice(with_targets, count, replace=False) if count else np.zeros(0, np.int64)
    held = np.isin(src, chosen)
    edges = dict(view.edges)
    edges[TARGETS] = (src[~held], dst[~held], weight[~held])
    return replace(view, edges=edges), pairs[~held], pairs[held]


def from_view(view: HeteroView, config: InfoAlignConfig) -> Inputs:
    """The inputs a config makes of an exported context view."""
    molecules = view.nodes.get("Molecule", [])
    if not molecules:
        raise KgctlError(
            "the context view has no Molecule nodes: ingest molecules first "
            "(`kgctl ingest molecules`, or `kgctl build context`)"
        )
    if list(view.nodes)[0] != "Molecule":
        raise KgctlError("the context view must list Molecule first")
    smiles = [str(s or "") for s in view.tables["Molecule"].column("smiles").to_pylist()]
    graphs, readable = featurise(smiles)
    if not readable.all():
        bad = [molecules[i] for i in np.flatnonzero(~readable)[:3]]
        raise KgctlError(f"{int((~readable).sum())} Molecule nodes have no readable SMILES (e.g. {', '.join(bad)})")
    walk_view, kept, held = hold_out_targets(view, config.holdout_targets, config.seed)
    edge_index, edge_weight, node_type, labels = walk_view.homogeneous()
    offsets = np.cumsum([0] + [len(view.nodes[k]) for k in labels])
    features: dict[str, np.ndarray] = {}
    rows: dict[str, np.ndarray] = {}
    for space, label in SPACES.items():
        if space == "fingerprint":
            matrix: np.ndarray = morgan_bits(smiles, config.fingerprint_radius, config.fingerprint_bits)
            has = np.ones(len(matrix), dtype=bool)
            blocks = {space: (matrix, has)}
        else:
            x = view.x.get(label)
            if x is None or not len(x):
                continue
            blocks = feature_blocks(space, x, view.meta.get("feature_names", {}).get(label) or [])
        start = int(offsets[labels.index(label)])
        for name, (matrix, has) in blocks.items():
            node_rows = np.full(len(node_type), -1, dtype=np.int64)
            node_rows[start + np.flatnonzero(has)] = np.arange(int(has.sum()))
            features[name], rows[name] = matrix, node_rows
    meta = {
        **{k: view.meta.get(k) for k in ("fingerprint", "nodes", "relationships", "licences", "features")},
        "spaces": {k: list(v.shape) for k, v in features.items()},
        "targets": {
            "molecules_with_targets": int(len(np.unique(np.concatenate([kept[:, 0], held[:, 0]])))),
            "held_out_molecules": int(len(np.unique(held[:, 0]))),
            "held_out_edges": int(len(held)),
            "kept_edges": int(len(kept)),
        },
    }
    return Inputs(
        np.array(molecules, dtype=str),
        np.array(smiles, dtype=str),
        graphs,
        np.array(view.nodes.get("Gene", []), dtype=str),
        labels,
        node_type.numpy().astype(np.int8),
        edge_index.numpy(),
        edge_weight.numpy(),
        features,
        rows,
        kept,
        held,
        meta,
    )


def collect_inputs(conn: Connection, config: InfoAlignConfig, views: Path) -> Inputs:
    bound = view_spec("context").bind(dataset=config.dataset or None)
    name = f"context-{config.dataset}" if config.dataset else "context"
    view = export(conn, bound, views / name)
    assert isinstance(view, HeteroView)
    return from_view(view, config)


def reaches(inputs: Inputs, label: str, steps: int) -> np.ndarray:
    """bool [N]: which nodes have a `label` node within `steps` edges of the walk graph (itself
    included), i.e. which molecules a walk of that length can carry to the modality."""
    found = np.asarray([inputs.labels[t] == label for t in inputs.node_type], dtype=bool)
    src, dst = inputs.edge_index
    for _ in range(steps):
        grown = found.copy()
        grown[src[found[dst]]] = True
        if (grown == found).all():
            break
        found = grown
    return found


def with_context(inputs: Inputs, keys: list[str]) -> np.ndarray:
    """bool per key: the molecule is a node of the walk graph with at least one edge."""
    index = {str(m): i for i, m in enumerate(inputs.molecule_ids)}
    degree = inputs.degree()
    return np.array([k in index and degree[index[k]] > 0 for k in keys], dtype=bool)


def context_share(inputs: Inputs, keys: list[str], walk_length: int) -> dict[str, Any]:
    """How many molecules (by InChIKey) are Molecule nodes of the run's graph, how many of those
    have edges there (so that walks reach beyond their own fingerprint), and how many reach a
    profile of each cell modality, or a gene, within the walk length."""
    index = {str(m): i for i, m in enumerate(inputs.molecule_ids)}
    rows = [index[k] for k in keys if k in index]
    linked = int(with_context(inputs, keys).sum())
    reach = {
        f"reach_{name}": int(reaches(inputs, label, walk_length)[rows].sum()) if label in inputs.labels else 0
        for name, label in (("gene", "Gene"), ("expression", "ExpressionProfile"), ("morphology", "MorphologyProfile"))
    }
    return {
        "molecules": len(keys),
        "in_graph": len(rows),
        "with_context_edges": linked,
        "share_with_context_edges": round(linked / max(len(keys), 1), 4),
        "walk_length": walk_length,
        **reach,
    }
