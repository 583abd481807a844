"""Replogle-style Perturb-seq pseudo-bulk `.h5ad` (perturbations × read-out genes, obs index
`<id>_<GENE>_…`): one `ExpressionProfile` per perturbation, `(:Gene)-[:PERTURBS]->(profile)`;
non-targeting controls are kept as profiles marked `control: true`, with no PERTURBS edge."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option
from kgctl.graph.records import Edge, Node, Record, Reject, RowDone
from kgctl.ingest.base import GENE_SYMBOL, Adapter, clean_props, gene_id, register
from kgctl.ingest.matrix import dataset_node
from kgctl.ingest.readers import ByteCounter, is_gzip

CONTROLS = {"non-targeting", "non_targeting", "control", "negative_control", "safe-targeting"}
CELL_LINES = ("K562", "RPE1", "HepG2", "Jurkat", "HEK293T")
ROWS_PER_READ = 1024


def read_obs_var(path: Path) -> Any:
    """The AnnData in backed mode: obs and var in memory, X read in row blocks on demand."""
    import anndata

    if is_gzip(path):
        raise KgctlError(f"{path}: gzip-compressed; .h5ad files are HDF5 and must be decompressed")
    try:
        with warnings.catch_warnings():  # a repeated obs name is a reject of its own, below
            warnings.filterwarnings("ignore", "Observation names are not unique")
            return anndata.read_h5ad(path, backed="r")
    except Exception as exc:  # h5py/anndata raise many types for a file that is not h5ad
        raise KgctlError(f"{path}: not a readable .h5ad (AnnData HDF5) file: {exc}") from exc


@contextmanager
def damaged(path: Path, where: str) -> Iterator[None]:
    """A file that opens but whose HDF5 objects are damaged: h5py raises KeyError, OSError,
    ValueError and more from inside; name the file and the part instead."""
    try:
        yield
    except KgctlError:
        raise
    except Exception as exc:
        raise KgctlError(f"{path}: damaged .h5ad file ({where}): {exc}") from exc


def dense_rows(path: Path, x: Any, start: int, stop: int) -> np.ndarray:
    with damaged(path, f"X rows {start + 1}-{stop}"):
        block = x[start:stop]
        if hasattr(block, "toarray"):
            block = block.toarray()
        return np.asarray(block, dtype=np.float32)


@register
class PerturbSeqAdapter(Adapter):
    name = "perturbseq"
    source = "Perturb-seq"
    licence = "CC-BY-4.0"  # Replogle et al. 2022 (figshare): CC BY 4.0
    formats = "Replogle-style pseudo-bulk .h5ad (perturbations × read-out genes)"
    options = (
        Option("dataset", "Dataset name (default: the file name without .h5ad)."),
        Option("cell-line", "Cell line (default: K562/RPE1/HepG2/Jurkat from the file name)."),
        Option("perturbation-type", "PERTURBS type.", str, "CRISPRi"),
        Option("source-version", "Release to record (e.g. the figshare version)."),
    )

    def validate(self) -> None:
        self.meta: dict[Path, dict[str, Any]] = {}
        for path in self.files:
            adata = read_obs_var(path)
            try:
                with damaged(path, "obs, var or the shape of X"):
                    n_obs, n_var = adata.n_obs, adata.n_vars
                    shape = tuple(adata.X.shape) if adata.X is not None else None
                    if shape != (n_obs, n_var):
                        raise KgctlError(
                            f"{path}: X has shape {shape}, but obs has {n_obs} rows and var {n_var}"
                        )
                    if n_obs == 0 or n_var == 0:
                        raise KgctlError(
                            f"{path}: no perturbations or no read-out genes (X is {shape})"
                        )
                    var = adata.var
                    names = (
                        var["gene_name"].astype(str).tolist()
                        if "gene_name" in var
                        else var.index.astype(str).tolist()
                    )
                    self.meta[path] = {"obs": adata.obs.copy(), "features": names}
            finally:
                adata.file.close()

    def _dataset(self, path: Path) -> str:
        return str(self.opts.get("dataset") or path.name.removesuffix(".h5ad"))

    def _cell_line(self, path: Path) -> str | None:
        if self.opts.get("cell_line"):
            return str(self.opts["cell_line"])
        return next((c for c in CELL_LINES if c.lower() in path.name.lower()), None)

    def records(self, counter: ByteCounter) -> Iterator[Record]:
        for path in self.files:
            yield from self._file(path, counter)

    def _file(self, path: Path, counter: ByteCounter) -> Iterator[Record]:
        meta = self.meta[path]
        obs = meta["obs"]
        dataset, version = self._dataset(path), self.source_version()
        cell_line = self._cell_line(path)
        yield dataset_node(dataset, version, kind="Perturb-seq", features=meta["features"],
                           axis="read-out genes", units="z-normalised expression",
                           vector_property="features", vector_label="ExpressionProfile")  # fmt: skip
        adata = read_obs_var(path)
        try:
            names = obs.index.astype(str).tolist()
            gene_col = obs["gene"].astype(str).tolist() if "gene" in obs else None
            gene_ids = obs["gene_id"].astype(str).tolist() if "gene_id" in obs else None
            cells = obs["num_cells_filtered"].tolist() if "num_cells_filtered" in obs else None
            size = path.stat().st_size
            first = {n: i for i, n in reversed(list(enumerate(names)))}  # a repeated obs: the first
            for start in range(0, len(names), ROWS_PER_READ):
                block = dense_rows(path, adata.X, start, start + ROWS_PER_READ)
                counter.done += int(size * len(block) / len(names))
                for offset, values in enumerate(block):
                    i = start + offset
                    if first[names[i]] != i:
                        yield Reject(path.name, i + 1, "obs_names", f"{names[i]!r} appears more than "
                                     f"once (row {first[names[i]] + 1} is kept)", names[i])  # fmt: skip
                        continue
                    yield from self._row(path, i, names[i], values, dataset, version, cell_line,
                                         gene_col[i] if gene_col else None,
                                         gene_ids[i] if gene_ids else None,
                                         cells[i] if cells else None)  # fmt: skip
        finally:
            adata.file.close()

    def _row(self, path: Path, i: int, name: str, values: np.ndarray, dataset: str, version: str,
             cell_line: str | None, gene: str | None, ensembl: str | None,
             n_cells: Any) -> Iterator[Record]:  # fmt: skip
        parts = name.split("_")
        target = gene or (parts[1] if len(parts) >= 2 else "")
        line = i + 1  # the obs row, 1-based
        if len(parts) < 2 or not parts[0]:
            yield Reject(path.name, line, "obs_names", f"{name!r} is not <id>_<GENE>_…", name)
            return
        if not np.isfinite(values).all():
            yield Reject(
                path.name,
                line,
                "X",
                f"{name}: {int((~np.isfinite(values)).sum())} non-finite values",
                name,
            )
            return
        control = target.lower() in CONTROLS
        if not control and not GENE_SYMBOL.match(target):
            yield Reject(path.name, line, "gene", f"not a gene symbol: {target!r}", name)
            return
        profile = f"{dataset}:{name}"
        yield Node("ExpressionProfile", profile, clean_props({
            "dataset": f"{dataset}@{version}", "sample": name, "assay": "Perturb-seq",
            "cell_line": cell_line, "control": control,
            "perturbation": "non-targeting" if control else gene_id(target),
            "perturbation_type": self.opts["perturbation_type"],
            "n_cells": int(n_cells) if n_cells is not None and n_cells == n_cells else None,
            "features": values.tolist()}))  # fmt: skip
        if not control:
            ens = ensembl if ensembl and re.match(r"^ENSG\d+", ensembl) else None
            if ens is None and len(parts) >= 4 and parts[-1].startswith("ENSG"):
                ens = parts[-1]
            symbol = gene_id(target)
            yield Node(
                "Gene", symbol, clean_props({"ensembl_gene_id": ens.split(".")[0] if ens else None})
            )
            yield Edge("PERTURBS", "Gene", symbol, "ExpressionProfile", profile,
                       {"type": self.opts["perturbation_type"], "dataset": f"{dataset}@{version}"})  # fmt: skip
        yield RowDone()
