"""JUMP / Cell Painting profiles (parquet or CSV with `Metadata_*` columns and feature columns):
a `MorphologyProfile` per well or consensus row, `PERTURBS` from the compound (by InChIKey, which
must already be a Molecule) or the gene (by symbol); negative controls have no edge."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option
from kgctl.graph.records import Edge, Node, Record, Reject, RowDone
from kgctl.ingest.base import GENE_SYMBOL, Adapter, clean_props, gene_id, register
from kgctl.ingest.matrix import dataset_node
from kgctl.ingest.readers import ByteCounter, file_format, open_text, sniff_delimiter

INCHIKEY = re.compile(r"^[A-Z]{14}-[A-Z]{10}-[A-Z]$")
COMPOUND_COLUMNS = ("Metadata_InChIKey", "Metadata_inchikey", "Metadata_InChIKey_standard")
GENE_COLUMNS = ("Metadata_Symbol", "Metadata_gene", "Metadata_Gene", "Metadata_gene_symbol")
DOSE_COLUMNS = ("Metadata_mmoles_per_liter", "Metadata_dose", "Metadata_pert_dose")
CONTROL_TYPES = {"negcon", "ctl_vehicle", "control", "empty"}
ROWS_PER_READ = 5_000


def frames(path: Path, counter: ByteCounter) -> Iterator[pd.DataFrame]:
    """The table in row blocks (parquet row groups / CSV chunks), so memory stays flat."""
    if file_format(path) == "parquet":
        try:
            table = pq.ParquetFile(path)
        except Exception as exc:
            raise KgctlError(f"{path}: not a readable parquet file: {exc}") from exc
        size = path.stat().st_size
        batches = table.iter_batches(batch_size=ROWS_PER_READ)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as exc:  # a damaged row group
                raise KgctlError(f"{path}: not a readable parquet file: {exc}") from None
            counter.done += int(size * batch.num_rows / max(1, table.metadata.num_rows))
            yield batch.to_pandas()
    with open_text(path) as handle:
        delimiter = sniff_delimiter(handle.readline(), path)
    with open_text(path, counter) as handle:
        try:
            yield from pd.read_csv(handle, sep=delimiter, chunksize=ROWS_PER_READ, low_memory=False)
        except pd.errors.ParserError as exc:  # e.g. a quote that never closes
            raise KgctlError(f"{path}: not a readable {delimiter!r}-separated table: {exc}") from None


def columns_of(path: Path) -> list[str]:
    if file_format(path) == "parquet":
        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as exc:  # truncated: no footer
            raise KgctlError(f"{path}: not a readable parquet file: {exc}") from None
    with open_text(path) as handle:
        header = handle.readline().rstrip("\r\n")
    return header.split(sniff_delimiter(header, path))


@register
class MorphologyAdapter(Adapter):
    name = "morphology"
    source = "Cell Painting"
    licence = "CC0-1.0"  # JUMP Cell Painting: CC0 1.0
    formats = "JUMP / Cell Painting profiles: parquet or CSV with Metadata_* and feature columns"
    options = (
        Option("dataset", "Dataset name (default: the file name)."),
        Option(
            "perturbation-type",
            "PERTURBS type for gene wells (compound wells say 'compound').",
            str,
            "ORF",
        ),
        Option("source-name", "Profile source recorded on nodes (e.g. JUMP).", str, "JUMP"),
        Option("source-version", "Release to record."),
    )

    def validate(self) -> None:
        self.layout: dict[Path, dict[str, Any]] = {}
        for path in self.files:
            columns = columns_of(path)
            meta = [c for c in columns if c.startswith("Metadata_")]
            features = [c for c in columns if not c.startswith("Metadata_")]
            compound = next((c for c in COMPOUND_COLUMNS if c in columns), None)
            gene = next((c for c in GENE_COLUMNS if c in columns), None)
            if not meta or not features:
                raise KgctlError(
                    f"{path}:1: not a Cell Painting profile table: it needs Metadata_* columns and "
                    f"feature columns (found {len(meta)} metadata and {len(features)} other columns)"
                )
            if compound is None and gene is None:
                raise KgctlError(
                    f"{path}:1: field 'Metadata_InChIKey': no perturbation column (one of "
                    f"{', '.join(COMPOUND_COLUMNS + GENE_COLUMNS)})"
                )
            if "Metadata_Well" not in columns:
                raise KgctlError(f"{path}:1: field 'Metadata_Well': missing")
            self.layout[path] = {
                "features": features,
                "compound": compound,
                "gene": gene,
                "dose": next((c for c in DOSE_COLUMNS if c in columns), None),
            }

    def records(self, counter: ByteCounter) -> Iterator[Record]:
        molecules = self.lookup.ids("Molecule", "id")
        for path in self.files:
            yield from self._file(path, counter, molecules)

    def _file(self, path: Path, counter: ByteCounter, molecules: dict[str, str]) -> Iterator[Record]:
        layout = self.layout[path]
        features: list[str] = layout["features"]
        dataset = str(self.opts.get("dataset") or re.sub(r"\.(csv|tsv|parquet)(\.gz)?$", "", path.name))
        version = self.source_version()
        yield dataset_node(
            dataset,
            version,
            kind="morphology",
            features=features,
            axis="CellProfiler features",
            vector_property="features",
            vector_label="MorphologyProfile",
        )
        line = 1  # the header; for parquet, row numbers count the same way
        for frame in frames(path, counter):
            missing = [c for c in features if c not in frame.columns]
            if missing:  # the header as validated is not the header pandas read: a stray quote
                raise KgctlError(
                    f"{path}:1: the header cannot be read as a table's columns "
                    f"({len(missing)} missing once parsed, e.g. {missing[0][:80]!r}; "
                    "an unclosed quote?)"
                )
            values = frame[features].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
            meta = frame[[c for c in frame.columns if c.startswith("Metadata_")]].astype(object)
            meta = meta.where(meta.notna(), None)
            for i, row in enumerate(meta.itertuples(index=False)):
                line += 1
                record = dict(zip(meta.columns, row, strict=True))
                yield from self._row(path, line, record, values[i], features, layout, dataset, version, molecules)

    def _row(
        self,
        path: Path,
        line: int,
        meta: dict[str, Any],
        vector: np.ndarray,
        features: list[str],
        layout: dict[str, Any],
        dataset: str,
        version: str,
        molecules: dict[str, str],
    ) -> Iterator[Record]:
        well = str(meta.get("Metadata_Well") or "")
        plate = str(meta.get("Metadata_Plate") or "")
        raw = f"{plate} {well}"
        if not well:
            yield Reject(path.name, line, "Metadata_Well", "empty well", raw)
            return
        if not np.isfinite(vector).all():
            bad = features[int(np.argmax(~np.isfinite(vector)))]
            yield Reject(path.name, line, bad, "missing or non-numeric feature value", raw)
            return
        control_type = str(meta.get("Metadata_control_type") or meta.get("Metadata_pert_type") or "")
        control = control_type in CONTROL_TYPES
        compound = str(meta.get(layout["compound"]) or "") if layout["compound"] else ""
        gene = str(meta.get(layout["gene"]) or "") if layout["gene"] else ""
        start: tuple[str, str, str] | None = None
        if not control:
            if compound:
                if not INCHIKEY.match(compound):
                    yield Reject(path.name, line, layout["compound"], f"not an InChIKey: {compound!r}", raw)
                    return
                if compound not in molecules:
                    yield Reject(
                        path.name,
                        line,
                        layout["compound"],
                        f"unknown compound {compound} (ingest its molecule first)",
                        raw,
                    )
                    return
                start = ("Molecule", compound, "compound")
            elif gene:
                if not GENE_SYMBOL.match(gene):
                    yield Reject(path.name, line, layout["gene"], f"not a gene symbol: {gene!r}", raw)
                    return
                start = ("Gene", gene_id(gene), str(self.opts["perturbation_type"]))
            else:
                yield Reject(
                    path.name,
                    line,
                    layout["compound"] or layout["gene"],
                    "no perturbation and not a control",
                    raw,
                )
                return
        source = meta.get("Metadata_Source")
        profile = f"{dataset}:{f'{source}:' if source is not None else ''}{plate}:{well}"
        given = meta.get(layout["dose"]) if layout["dose"] else None
        try:
            dose = None if given is None or given == "" else float(given)
        except (TypeError, ValueError):
            yield Reject(path.name, line, layout["dose"] or "", f"dose is not a number: {given!r}", raw)
            return
        yield Node(
            "MorphologyProfile",
            profile,
            clean_props(
                {
                    "dataset": f"{dataset}@{version}",
                    "profile_source": str(self.opts["source_name"]),
                    "plate": plate or None,
                    "well": well,
                    "control": control,
                    "perturbation": start[1] if start else control_type,
                    "features": vector.tolist(),
                }
            ),
        )
        if start is not None:
            if start[0] == "Gene":
                yield Node("Gene", start[1])
            yield Edge(
                "PERTURBS",
                start[0],
                start[1],
                "MorphologyProfile",
                profile,
                clean_props({"type": start[2], "dose": dose, "dataset": f"{dataset}@{version}"}),
            )
        yield RowDone()
