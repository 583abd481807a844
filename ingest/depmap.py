"""DepMap matrices (`CRISPRGeneEffect.csv`, `OmicsExpression…TPMLogp1….csv`; rows ModelID, columns
`SYMBOL (ENTREZ)`): `CellLine` nodes and, on each `Gene`, its vector over cell lines, with the
`Dataset` node that records the cell-line order."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option
from kgctl.graph.records import Node, Record, Reject, RowDone
from kgctl.ingest.base import Adapter, gene_id, register
from kgctl.ingest.matrix import dataset_node, to_float, versioned
from kgctl.ingest.readers import ByteCounter, open_text

GENE_COLUMN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9\-._@/]*) \((\d+)\)$")
MODEL_ID = re.compile(r"^ACH-\d{6}$")
META_COLUMNS = {"ModelID", "SequencingID", "IsDefaultEntryForModel", "ModelConditionID", "IsDefaultEntryForMC", ""}
KINDS = {
    "gene-effect": ("depmap_gene_effect", "Chronos gene effect (more negative = more essential)"),
    "expression": ("depmap_expression", "log2(TPM + 1)"),
}


def kind_of(path: Path) -> str | None:
    name = path.name.lower()
    if "geneeffect" in name or "gene_effect" in name:
        return "gene-effect"
    if "expression" in name:
        return "expression"
    return None


@register
class DepMapAdapter(Adapter):
    name = "depmap"
    source = "DepMap"
    licence = "CC-BY-4.0"  # DepMap portal data: CC BY 4.0
    formats = "CRISPRGeneEffect.csv, OmicsExpression…TPMLogp1….csv (rows ModelID, columns 'SYMBOL (ENTREZ)')"
    options = (
        Option("kind", "gene-effect or expression (default: from the file name).", type=str),
        Option("source-version", "DepMap release to record, e.g. 24Q4."),
    )

    def validate(self) -> None:
        self.kinds: dict[Path, str] = {}
        for path in self.files:
            kind = self.opts.get("kind") or kind_of(path)
            if kind not in KINDS:
                raise KgctlError(
                    f"{path}: cannot tell whether this is gene effect or expression from its name; "
                    "pass --kind gene-effect or --kind expression"
                )
            with open_text(path) as handle:
                header = next(csv.reader([handle.readline()]))
            genes = [c for c in header if GENE_COLUMN.match(c)]
            if "ModelID" not in header and header[:1] != [""]:  # an empty first line, too
                raise KgctlError(f"{path}:1: field 'ModelID': no ModelID column; not a DepMap matrix")
            if not genes:
                raise KgctlError(
                    f"{path}:1: no 'SYMBOL (ENTREZ)' gene columns (header starts "
                    f"{', '.join(header[:4])}); not a DepMap matrix"
                )
            self.kinds[path] = kind

    def records(self, counter: ByteCounter) -> Iterator[Record]:
        for path in self.files:
            yield from self._matrix(path, self.kinds[path], counter)

    def _matrix(self, path: Path, kind: str, counter: ByteCounter) -> Iterator[Record]:
        prop, units = KINDS[kind]
        with open_text(path, counter) as handle:
            reader = csv.reader(handle)
            header = next(reader)
            model_at = header.index("ModelID") if "ModelID" in header else 0
            default_at = header.index("IsDefaultEntryForModel") if "IsDefaultEntryForModel" in header else None
            genes: list[tuple[int, str, str]] = []
            for i, column in enumerate(header):
                match = GENE_COLUMN.match(column)
                if match:
                    symbol = gene_id(match.group(1))
                    twice = next((header[j] for j, other, _ in genes if other == symbol), None)
                    if twice is not None:  # one vector per gene: which column would be meant?
                        raise KgctlError(f"{path}:1: columns {twice!r} and {column!r} are the same gene {symbol}")
                    genes.append((i, symbol, match.group(2)))
                elif column not in META_COLUMNS:
                    yield Reject(
                        path.name,
                        1,
                        column,
                        "column is neither metadata nor 'SYMBOL (ENTREZ)'; skipped",
                    )
            models: list[str] = []
            rows: list[np.ndarray] = []
            seen: set[str] = set()
            for row in reader:
                number = reader.line_num
                raw = ",".join(row)[:500]
                if len(row) != len(header):
                    yield Reject(
                        path.name,
                        number,
                        "*",
                        f"expected {len(header)} fields, found {len(row)}",
                        raw,
                    )
                    continue
                if default_at is not None and row[default_at] not in {"Yes", "True", "1"}:
                    yield RowDone("filtered")
                    continue
                model = row[model_at].strip()
                if not MODEL_ID.match(model):
                    yield Reject(path.name, number, "ModelID", f"not a DepMap ModelID: {model!r}", raw)
                    continue
                if model in seen:
                    yield Reject(path.name, number, "ModelID", f"{model} appears twice", raw)
                    continue
                values = np.empty(len(genes), dtype=np.float32)
                bad = None
                for j, (i, _, _) in enumerate(genes):
                    try:
                        values[j] = to_float(row[i])
                    except ValueError:
                        bad = header[i]
                        break
                if bad is not None:
                    yield Reject(
                        path.name,
                        number,
                        bad,
                        f"not a finite number: {row[header.index(bad)]!r}",
                        raw,
                    )
                    continue
                seen.add(model)
                models.append(model)
                rows.append(values)
                yield Node("CellLine", model, {"depmap_id": model})
                yield RowDone()
        if not models:
            return
        version = self.source_version()
        prop = versioned(prop, version)
        yield dataset_node(
            f"DepMap {kind}",
            version,
            kind=kind,
            features=models,
            axis="cell lines",
            units=units,
            vector_property=prop,
            vector_label="Gene",
        )
        matrix = np.vstack(rows).T  # genes × cell lines
        for (_, symbol, entrez), vector in zip(genes, matrix, strict=True):
            series = vector.astype(np.float64).tolist()  # NaN where the screen has no value
            yield Node(
                "Gene",
                symbol,
                {"entrez_id": entrez, prop: series, f"{prop}_dataset": f"DepMap {kind}@{version}"},
            )
