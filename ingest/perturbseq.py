"""Replogle-style Perturb-seq pseudo-bulk `.h5ad` (perturbations × read-out genes, obs index
`<id>_<GENE>_…`): one `ExpressionProfile` per perturbation, `(:Gene)-[:PERTURBS]->(profile)`;
non-targeting controls are kept as profiles marked `control: true`, with no PERTURBS edge."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option
from kgctl.graph.records import Edge, Node, Record, Reject, RowDone
from kgctl.ingest.base import GENE_SYMBOL, Adapter, clean_props, gene_id, register
from kgctl.ingest.h5ad import H5ad
from kgctl.ingest.matrix import dataset_node
from kgctl.ingest.readers import ByteCounter

CONTROLS = {"non-targeting", "non_targeting", "control", "negative_control", "safe-targeting"}
CELL_LINES = ("K562", "RPE1", "HepG2", "Jurkat", "HEK293T")
ROWS_PER_READ = 1024


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
            with H5ad(path) as h5ad:
                obs, var = h5ad.header.obs, h5ad.header.var
            if len(obs) == 0 or len(var) == 0:
                raise KgctlError(f"{path}: no perturbations or no read-out genes (X is {len(obs)} × {len(var)})")
            names = var.get("gene_name", var.index)
            self.meta[path] = {"obs": obs, "features": names.astype(str).tolist()}

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
        yield dataset_node(
            dataset,
            version,
            kind="Perturb-seq",
            features=meta["features"],
            axis="read-out genes",
            units="z-normalised expression",
            vector_property="features",
            vector_label="ExpressionProfile",
        )
        with H5ad(path) as h5ad:
            names = obs.index.astype(str).tolist()
            gene_col = obs["gene"].astype(str).tolist() if "gene" in obs else None
            gene_ids = obs["gene_id"].astype(str).tolist() if "gene_id" in obs else None
            cells = obs["num_cells_filtered"].tolist() if "num_cells_filtered" in obs else None
            size = path.stat().st_size
            first = {n: i for i, n in reversed(list(enumerate(names)))}  # a repeated obs: the first
            for start in range(0, len(names), ROWS_PER_READ):
                block = np.asarray(h5ad.rows(start, start + ROWS_PER_READ), dtype=np.float32)
                counter.done += int(size * len(block) / len(names))
                for offset, values in enumerate(block):
                    i = start + offset
                    if first[names[i]] != i:
                        yield Reject(
                            path.name,
                            i + 1,
                            "obs_names",
                            f"{names[i]!r} appears more than once (row {first[names[i]] + 1} is kept)",
                            names[i],
                        )
                        continue
                    yield from self._row(
                        path,
                        i,
                        names[i],
                        values,
                        dataset,
                        version,
                        cell_line,
                        gene_col[i] if gene_col else None,
                        gene_ids[i] if gene_ids else None,
                        cells[i] if cells else None,
                    )

    def _row(
        self,
        path: Path,
        i: int,
        name: str,
        values: np.ndarray,
        dataset: str,
        version: str,
        cell_line: str | None,
        gene: str | None,
        ensembl: str | None,
        n_cells: Any,
    ) -> Iterator[Record]:
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
        yield Node(
            "ExpressionProfile",
            profile,
            clean_props(
                {
                    "dataset": f"{dataset}@{version}",
                    "sample": name,
                    "assay": "Perturb-seq",
                    "cell_line": cell_line,
                    "control": control,
                    "perturbation": "non-targeting" if control else gene_id(target),
                    "perturbation_type": self.opts["perturbation_type"],
                    "n_cells": int(n_cells) if n_cells is not None and n_cells == n_cells else None,
                    "features": values.tolist(),
                }
            ),
        )
        if not control:
            ens = ensembl if ensembl and re.match(r"^ENSG\d+", ensembl) else None
            if ens is None and len(parts) >= 4 and parts[-1].startswith("ENSG"):
                ens = parts[-1]
            symbol = gene_id(target)
            yield Node("Gene", symbol, clean_props({"ensembl_gene_id": ens.split(".")[0] if ens else None}))
            yield Edge(
                "PERTURBS",
                "Gene",
                symbol,
                "ExpressionProfile",
                profile,
                {"type": self.opts["perturbation_type"], "dataset": f"{dataset}@{version}"},
            )
        yield RowDone()
