"""Expression matrices (genes × samples or samples × genes; CSV/TSV, parquet, `.h5ad`):
`ExpressionProfile` nodes with `features`, or a per-gene vector on each `Gene`, plus the
`Dataset` node that records the feature order."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option
from kgctl.graph.records import Node, Record, Reject, RowDone
from kgctl.ingest.base import GENE_SYMBOL, Adapter, clean_props, gene_id, register
from kgctl.ingest.h5ad import H5ad
from kgctl.ingest.matrix import MISSING, dataset_node, slug, versioned
from kgctl.ingest.readers import ByteCounter, file_format, open_text, sniff_delimiter

GENE_HEADER = re.compile(r"gene|symbol|ensembl|probe|id_ref|feature", re.IGNORECASE)
SYMBOL_ENTREZ = re.compile(r"^(.+) \((\d+)\)$")


def read_matrix(path: Path, counter: ByteCounter | None = None) -> tuple[pd.DataFrame, str]:
    """The matrix as a DataFrame (rows as in the file) and the name of its index column."""
    kind = file_format(path)
    if kind == "h5ad":
        with H5ad(path) as h5ad:
            obs, var = h5ad.header.obs, h5ad.header.var
            x = h5ad.rows(0, len(obs))
        frame = pd.DataFrame(x, index=obs.index.astype(str), columns=var.index.astype(str))
        return frame, "obs_names"
    if kind == "parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:
            raise KgctlError(f"{path}: not a readable parquet file: {exc}") from exc
        if not isinstance(frame.index, pd.RangeIndex):
            return frame, str(frame.index.name or "index")
        first = frame.columns[0]
        return frame.set_index(first), str(first)
    with open_text(path) as handle:
        header = handle.readline().rstrip("\r\n")
    delimiter = sniff_delimiter(header, path)
    with open_text(path, counter) as handle:
        frame = pd.read_csv(handle, sep=delimiter, index_col=0, dtype=str, keep_default_na=False)
    names = next(csv.reader([header], delimiter=delimiter), [])
    if len(names) == frame.shape[1] + 1:  # pandas renames a repeated column 'X' to 'X.1'
        frame.columns = pd.Index(names[1:])
    frame.attrs["short_rows"] = short_rows(path, delimiter, len(frame))
    return frame, str(frame.index.name or "")


def short_rows(path: Path, delimiter: str, rows: int) -> np.ndarray:
    """Which data rows have fewer fields than the header: pandas pads them with "" (as it reads
    present empty cells here), so they would pass for missing values."""
    short = np.zeros(rows, dtype=bool)
    with open_text(path) as handle:
        width = len(next(csv.reader([handle.readline()], delimiter=delimiter), []))
        row = 0
        for line in handle:
            if not line.strip():  # pandas skips blank lines
                continue
            fields = (
                line.count(delimiter) + 1 if '"' not in line else len(next(csv.reader([line], delimiter=delimiter)))
            )
            if row < rows and fields < width:
                short[row] = True
            row += 1
    return short


@register
class ExpressionAdapter(Adapter):
    name = "expression"
    source = "expression"
    licence = "unknown"  # any matrix: pass --licence
    formats = "genes × samples or samples × genes matrices: CSV/TSV, parquet, .h5ad"
    options = (
        Option("dataset", "Dataset name (default: the file name)."),
        Option(
            "orientation",
            "samples-by-genes or genes-by-samples (default: from the header; .h5ad is obs × var).",
            str,
            "auto",
        ),
        Option(
            "mode",
            "profiles (an ExpressionProfile per sample) or genes (a vector on each Gene).",
            str,
            "profiles",
        ),
        Option("assay", "Assay recorded on profiles.", str, "RNA"),
        Option("cell-line", "Cell line recorded on profiles."),
        Option("units", "Units of the values, recorded on the Dataset.", str, "unspecified"),
        Option("source-version", "Release to record."),
    )

    def validate(self) -> None:
        if self.opts["mode"] not in {"profiles", "genes"}:
            raise KgctlError(f"--mode {self.opts['mode']!r}: choose profiles or genes")
        if self.opts["orientation"] not in {"auto", "samples-by-genes", "genes-by-samples"}:
            raise KgctlError(f"--orientation {self.opts['orientation']!r}: choose samples-by-genes or genes-by-samples")
        for path in self.files:
            if file_format(path) == "table":
                with open_text(path) as handle:
                    header = handle.readline().rstrip("\r\n")
                    second = handle.readline()
                fields = header.split(sniff_delimiter(header, path))
                if len(fields) < 2 or not second.strip():
                    raise KgctlError(f"{path}: needs a header and at least one data row with 2+ columns")

    def records(self, counter: ByteCounter) -> Iterator[Record]:
        for path in self.files:
            yield from self._file(path, counter)

    def _file(self, path: Path, counter: ByteCounter) -> Iterator[Record]:
        frame, index_name = read_matrix(path, counter)
        orientation = self.opts["orientation"]
        if orientation == "auto":
            h5ad = file_format(path) == "h5ad"
            orientation = "genes-by-samples" if not h5ad and GENE_HEADER.search(index_name) else "samples-by-genes"
        genes_by_samples = orientation == "genes-by-samples"
        # Parse numbers; remember where the bad cells are (file coordinates: line and column).
        values = frame.apply(
            lambda col: (
                pd.to_numeric(col.where(~col.isin(MISSING), np.nan), errors="coerce") if col.dtype == object else col
            )
        )
        bad = values.isna() & ~frame.isin(MISSING) & frame.notna() if frame.dtypes.eq(object).any() else None
        short = frame.attrs.get("short_rows", np.zeros(len(frame), dtype=bool))

        def short_row(pos: int) -> Reject:
            return Reject(
                path.name,
                pos + 2,
                str(frame.index[pos]),
                f"short row: fewer than the header's {frame.shape[1] + 1} fields",
            )

        gene_axis = frame.index if genes_by_samples else frame.columns
        sample_axis = frame.columns if genes_by_samples else frame.index
        dataset = str(self.opts.get("dataset") or re.sub(r"\.(csv|tsv|txt|parquet|h5ad)(\.gz)?$", "", path.name))
        version = self.source_version()
        # Genes: symbols or 'SYMBOL (ENTREZ)'; a bad, repeated or short gene drops that row or
        # column with a reject (the first of a repeated gene is kept). Positions, not labels:
        # a repeated label would select every copy.
        keep, symbols, seen = [], [], set()
        for pos, g in enumerate(map(str, gene_axis)):
            where, field = (pos + 2, index_name) if genes_by_samples else (1, g)
            if genes_by_samples and short[pos]:
                yield short_row(pos)
                continue
            match = SYMBOL_ENTREZ.match(g)
            symbol = match.group(1) if match else g
            if not GENE_SYMBOL.match(symbol):
                yield Reject(path.name, where, field, f"not a gene identifier: {g!r}")
            elif gene_id(symbol) in seen:
                yield Reject(
                    path.name, where, field, f"gene {gene_id(symbol)!r} appears more than once (the first is kept)"
                )
            else:
                seen.add(gene_id(symbol))
                keep.append(pos)
                symbols.append(gene_id(symbol))
        matrix = values.iloc[keep].T if genes_by_samples else values.iloc[:, keep]
        # samples × genes from here on
        bad_cells = None
        if bad is not None:
            bad_cells = bad.iloc[keep].T if genes_by_samples else bad.iloc[:, keep]
        samples = [str(s) for s in sample_axis]
        if len(set(samples)) != len(samples):
            dupe = next(s for s in samples if samples.count(s) > 1)
            raise KgctlError(f"{path}: sample {dupe!r} appears more than once")
        ok_rows: list[int] = []
        for i, sample in enumerate(samples):
            if not genes_by_samples and short[i]:
                yield short_row(i)
                continue
            if bad_cells is not None and bad_cells.iloc[i].any():
                column = int(bad_cells.iloc[i].to_numpy().argmax())
                gene = str(bad_cells.columns[column])
                line = keep[column] + 2 if genes_by_samples else i + 2
                field = sample if genes_by_samples else gene
                yield Reject(path.name, line, field, f"not a number in sample {sample!r}, gene {gene!r}")
                continue
            ok_rows.append(i)
        if not ok_rows:
            return
        good = matrix.iloc[ok_rows].to_numpy(dtype=np.float64)
        kept_samples = [samples[i] for i in ok_rows]
        if self.opts["mode"] == "profiles":
            yield dataset_node(
                dataset,
                version,
                kind="expression",
                features=symbols,
                axis="genes",
                units=str(self.opts["units"]),
                vector_property="features",
                vector_label="ExpressionProfile",
            )
            for sample, vector in zip(kept_samples, good, strict=True):
                yield Node(
                    "ExpressionProfile",
                    f"{dataset}:{sample}",
                    clean_props(
                        {
                            "dataset": f"{dataset}@{version}",
                            "sample": sample,
                            "assay": self.opts["assay"],
                            "cell_line": self.opts.get("cell_line"),
                            "features": vector.tolist(),
                        }
                    ),
                )
                yield RowDone()
            return
        prop = versioned(f"expression_{slug(dataset)}", version)
        yield dataset_node(
            dataset,
            version,
            kind="expression",
            features=kept_samples,
            axis="samples",
            units=str(self.opts["units"]),
            vector_property=prop,
            vector_label="Gene",
        )
        for sample in kept_samples:
            del sample
            yield RowDone()
        for symbol, vector in zip(symbols, good.T, strict=True):
            yield Node("Gene", symbol, {prop: vector.tolist()})
