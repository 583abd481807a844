"""LINCS L1000 signatures: GCT (1.2/1.3 text) or GCTX (HDF5), Level 3–5, plus a compound table
(pert_id, SMILES, InChIKey): an `ExpressionProfile {assay:'L1000'}` per signature, and
`(:Molecule)-[:PERTURBS]->(profile)` from the compound that made it; controls have no edge."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option
from kgctl.graph.records import Edge, Node, Record, Reject, RowDone
from kgctl.ingest.base import Adapter, clean_props, register
from kgctl.ingest.matrix import MISSING, dataset_node, to_float
from kgctl.ingest.molecule_nodes import describe_smiles, molecule_node
from kgctl.ingest.readers import HDF5_MAGIC, ByteCounter, open_binary, open_text

SMILES_COLUMNS = ("canonical_smiles", "smiles", "SMILES")


def kind_of(path: Path) -> str:
    """'gctx', 'gct' or 'compounds', from the content."""
    with path.open("rb") as handle:
        if handle.read(8) == HDF5_MAGIC:
            return "gctx"
    with open_binary(path) as handle:
        first = handle.readline()
    if first.startswith((b"#1.2", b"#1.3")):
        return "gct"
    return "compounds"


def read_gct(
    path: Path, counter: ByteCounter | None = None
) -> tuple[np.ndarray, list[str], dict[str, list[str]], dict[str, list[str]]]:
    """(matrix samples × probes, probe ids, column metadata, row metadata) of a GCT 1.2/1.3 file."""
    with open_text(path, counter) as handle:
        version = handle.readline().strip()
        dims = handle.readline().split()
        try:
            n_rows, n_cols = int(dims[0]), int(dims[1])
            n_row_meta, n_col_meta = (int(dims[2]), int(dims[3])) if version == "#1.3" else (1, 0)
        except (IndexError, ValueError) as exc:
            raise KgctlError(f"{path}:2: field 'dimensions': expected 'rows columns [row-meta col-meta]'") from exc
        if min(n_rows, n_row_meta, n_col_meta) < 0 or n_cols < 1:
            raise KgctlError(f"{path}:2: field 'dimensions': {' '.join(dims)} (counts must be positive)")
        header = handle.readline().rstrip("\r\n").split("\t")
        first_sample = 1 + n_row_meta
        samples = header[first_sample:]
        if len(samples) != n_cols:
            raise KgctlError(f"{path}:3: the header names {len(samples)} samples; line 2 says {n_cols}")
        col_meta: dict[str, list[str]] = {"id": samples}
        line = 3
        for _ in range(n_col_meta):
            line += 1
            fields = handle.readline().rstrip("\r\n").split("\t")
            if len(fields) != len(header):
                raise KgctlError(f"{path}:{line}: column metadata row has {len(fields)} fields, expected {len(header)}")
            col_meta[fields[0]] = fields[first_sample:]
        # Rows as they come, not an array of the declared size: line 2 cannot make us allocate
        # more than the file holds.
        values: list[np.ndarray] = []
        probes: list[str] = []
        row_meta: dict[str, list[str]] = {name: [] for name in header[1:first_sample]}
        for r in range(n_rows):
            line += 1
            text = handle.readline()
            if not text:
                raise KgctlError(f"{path}:{line}: the file ends after {r} of {n_rows} data rows")
            fields = text.rstrip("\r\n").split("\t")
            if len(fields) != len(header):
                raise KgctlError(f"{path}:{line}: field '{fields[0]}': {len(fields)} fields, expected {len(header)}")
            probes.append(fields[0])
            for name, value in zip(header[1:first_sample], fields[1:first_sample], strict=True):
                row_meta[name].append(value)
            try:
                values.append(np.array([to_float(v) for v in fields[first_sample:]], np.float32))
            except ValueError:
                column = next(
                    i for i, v in enumerate(fields[first_sample:]) if v.strip() not in MISSING and not _is_float(v)
                )
                raise KgctlError(
                    f"{path}:{line}: field {samples[column]!r}: not a finite number: {fields[first_sample + column]!r}"
                ) from None
        if handle.readline().strip():
            raise KgctlError(f"{path}:{line + 1}: more data rows than the {n_rows} line 2 declares")
    matrix = np.stack(values) if values else np.empty((0, n_cols), np.float32)
    return matrix.T.copy(), probes, col_meta, row_meta


def _is_float(text: str) -> bool:
    try:
        to_float(text)
    except ValueError:
        return False
    return True


def read_gctx(
    path: Path,
) -> tuple[np.ndarray, list[str], dict[str, list[str]], dict[str, list[str]]]:
    import h5py

    def strings(values: Any) -> list[str]:
        return [v.decode() if isinstance(v, bytes) else str(v) for v in values[()]]

    try:
        with h5py.File(path, "r") as h5:
            matrix = np.asarray(h5["0/DATA/0/matrix"][()], dtype=np.float32)  # samples × probes
            col = {k: strings(v) for k, v in h5["0/META/COL"].items()}
            row = {k: strings(v) for k, v in h5["0/META/ROW"].items()}
    except KeyError as exc:
        raise KgctlError(f"{path}: not a GCTX file (missing {exc})") from exc
    if matrix.shape != (len(col["id"]), len(row["id"])):
        raise KgctlError(
            f"{path}: matrix shape {matrix.shape} does not match {len(col['id'])} samples × {len(row['id'])} probes"
        )
    return matrix, row.pop("id"), col, row


@register
class L1000Adapter(Adapter):
    name = "l1000"
    source = "LINCS L1000"
    licence = "CC-BY-4.0"  # LINCS data and derivatives: CC BY 4.0
    formats = "GCT/GCTX (Level 3-5) plus a compound table with pert_id and SMILES"
    options = (
        Option("dataset", "Dataset name (default: the GCT file name)."),
        Option("source-version", "Release to record (e.g. GSE92742)."),
    )

    def validate(self) -> None:
        self.kinds = {path: kind_of(path) for path in self.files}
        self.matrices = [p for p, k in self.kinds.items() if k != "compounds"]
        self.tables = [p for p, k in self.kinds.items() if k == "compounds"]
        if not self.matrices:
            raise KgctlError("no GCT or GCTX file among the inputs (a GCT starts with #1.2 or #1.3)")
        for path in self.tables:
            with open_text(path) as handle:
                header = handle.readline().rstrip("\r\n").split("\t")
            if "pert_id" not in header or not any(c in header for c in SMILES_COLUMNS):
                raise KgctlError(
                    f"{path}:1: neither a GCT/GCTX file nor a compound table with pert_id and "
                    f"canonical_smiles columns (header: {', '.join(header[:6])})"
                )

    def records(self, counter: ByteCounter) -> Iterator[Record]:
        compounds: dict[str, Node] = {}
        for path in self.tables:
            yield from self._compounds(path, counter, compounds)
        for path in self.matrices:
            yield from self._signatures(path, counter, compounds)

    def _compounds(self, path: Path, counter: ByteCounter, out: dict[str, Node]) -> Iterator[Record]:
        with open_text(path, counter) as handle:
            # Plain tab-separated, as `validate` read the header: a `"` is data, not a quote that
            # would join the following fields and lines into one.
            reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            smiles_col = next(c for c in SMILES_COLUMNS if c in (reader.fieldnames or []))
            for row in reader:
                pert_id, smiles = row.get("pert_id") or "", (row.get(smiles_col) or "").strip()
                node = molecule_node(describe_smiles([smiles])[0], row.get("pert_iname") or None)
                if node is None:
                    yield Reject(
                        path.name,
                        reader.line_num,
                        smiles_col,
                        f"invalid SMILES for {pert_id}: {smiles[:80]!r}",
                    )
                    continue
                out[pert_id[:13]] = node
                yield node
                yield RowDone()

    def _signatures(self, path: Path, counter: ByteCounter, compounds: dict[str, Node]) -> Iterator[Record]:
        if self.kinds[path] == "gctx":
            matrix, probes, col, row = read_gctx(path)
            counter.done += path.stat().st_size
        else:
            matrix, probes, col, row = read_gct(path, counter)
        dataset = str(self.opts.get("dataset") or path.name.split(".")[0])
        version = self.source_version()
        symbols = row.get("pr_gene_symbol")
        node = dataset_node(
            dataset,
            version,
            kind="L1000",
            features=probes,
            axis="probes",
            units=_units(col),
            vector_property="features",
            vector_label="ExpressionProfile",
        )
        if symbols:
            node.props["feature_symbols"] = symbols
        yield node
        for i, sample in enumerate(col["id"]):
            meta = {k: v[i] for k, v in col.items()}
            pert_type = meta.get("pert_type", "")
            control = pert_type.startswith("ctl_")
            pert_id = meta.get("pert_id", "")
            molecule = compounds.get(pert_id[:13])
            # GCT: the line of the pert_id metadata row (keys follow the file's row order from the
            # header, line 3); GCTX has no lines, so the sample's column number stands in.
            keys = list(col)
            line = 3 + keys.index("pert_id") if self.kinds[path] == "gct" and "pert_id" in keys else i + 1
            if not control and molecule is None:
                yield Reject(
                    path.name,
                    line,
                    "pert_id",
                    f"unknown compound {pert_id!r} for {sample} (not in the compound table)",
                    sample,
                )
                continue
            if not np.isfinite(matrix[i]).all():
                yield Reject(path.name, line, sample, "missing or non-finite values in the signature", sample)
                continue
            profile = f"{dataset}:{sample}"
            yield Node(
                "ExpressionProfile",
                profile,
                clean_props(
                    {
                        "dataset": f"{dataset}@{version}",
                        "sample": sample,
                        "assay": "L1000",
                        "cell_line": _value(meta.get("cell_id")),
                        "dose": _number(meta.get("pert_dose")),
                        "dose_unit": _value(meta.get("pert_dose_unit")),
                        "time": _number(meta.get("pert_time")),
                        "time_unit": _value(meta.get("pert_time_unit")),
                        "pert_id": _value(pert_id),
                        "pert_type": _value(pert_type),
                        "control": control,
                        "plate": _value(meta.get("det_plate")),
                        "well": _value(meta.get("det_well")),
                        "features": matrix[i].tolist(),
                    }
                ),
            )
            if molecule is not None and not control:
                yield Edge(
                    "PERTURBS",
                    "Molecule",
                    molecule.id,
                    "ExpressionProfile",
                    profile,
                    clean_props(
                        {"type": "compound", "dose": _number(meta.get("pert_dose")), "dataset": f"{dataset}@{version}"}
                    ),
                )
            yield RowDone()


def _value(text: str | None) -> str | None:
    return None if text is None or text.strip() in MISSING else text


def _number(text: str | None) -> float | None:
    value = _value(text)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _units(col: dict[str, list[str]]) -> str:
    codes = set(col.get("provenance_code", []))
    return "robust z-score (Level 4)" if any("ZS" in c for c in codes) else "log2 expression (Level 3)"
