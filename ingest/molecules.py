"""Molecules from SMILES tables (CSV/TSV, e.g. the Drug Repurposing Hub), `.smi` and `.sdf`:
`Molecule` nodes keyed by InChIKey with RDKit canonical SMILES and a packed Morgan fingerprint,
and `TARGETS` edges to genes when the table has a target column."""

from __future__ import annotations

import csv
import ctypes
import itertools
import multiprocessing
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from rdkit import Chem

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option
from kgctl.graph.records import Edge, Node, Record, Reject, RowDone
from kgctl.ingest.base import GENE_SYMBOL, Adapter, clean_props, gene_id, register
from kgctl.ingest.molecule_nodes import Facts, broad_compound, describe, describe_smiles, molecule_node
from kgctl.ingest.readers import ByteCounter, open_binary, open_text

SMILES_COLUMNS = ("smiles", "canonical_smiles", "SMILES", "Smiles", "canonical_SMILES")
NAME_COLUMNS = ("pert_iname", "name", "Name", "compound_name", "pref_name")
TARGET_COLUMNS = ("target", "target_list", "targets")
BROAD_COLUMNS = ("broad_id", "broad_sample")
CHUNK = 500
WORKERS = min(os.cpu_count() or 1, 8)
T = TypeVar("T")


def chunked(rows: Iterator[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """In a worker: end when the ingest process ends, even by SIGKILL, instead of lingering with
    RDKit's memory (Linux's parent-death signal; elsewhere the pool's own shutdown only)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(1)


def parallel_describe(
    chunks: Iterator[list[T]], smiles_of: Callable[[T], str], workers: int
) -> Iterator[tuple[T, Facts]]:
    """RDKit work for each row, in worker processes when there is more than one chunk; order is
    kept and at most 2 × workers chunks are in flight, so memory stays flat."""
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    if second is None or workers < 2:
        for chunk in itertools.chain([first], [second] if second else [], chunks):
            yield from zip(chunk, describe_smiles([smiles_of(r) for r in chunk]), strict=True)
        return
    context = multiprocessing.get_context("fork")  # workers need only RDKit; no re-import of __main__
    with ProcessPoolExecutor(workers, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
        pending: deque[tuple[list[T], Future[list[Facts]]]] = deque()
        for chunk in itertools.chain([first, second], chunks):
            pending.append((chunk, pool.submit(describe_smiles, [smiles_of(r) for r in chunk])))
            if len(pending) >= 2 * workers:
                done, future = pending.popleft()
                yield from zip(done, future.result(), strict=True)
        while pending:
            done, future = pending.popleft()
            yield from zip(done, future.result(), strict=True)


def table_kind(path: Path) -> str:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".sdf") or name.endswith(".sd"):
        return "sdf"
    if name.endswith(".smi"):
        return "smi"
    return "table"


@register
class MoleculesAdapter(Adapter):
    name = "molecules"
    source = "molecules"
    licence = "unknown"  # any SMILES table: pass --licence (the Repurposing Hub is research use only)
    parser_version = 2  # 2: Broad compound ids
    formats = "CSV/TSV with a SMILES column (e.g. the Drug Repurposing Hub), .smi, .sdf"
    options = (
        Option("smiles-column", "Column with SMILES (default: smiles / canonical_smiles / SMILES)."),
        Option("name-column", "Column with the compound name (default: pert_iname / name)."),
        Option("target-column", "Column with '|'-separated target gene symbols (default: target)."),
        Option("moa-column", "Column with the mechanism of action, stored on TARGETS.", str, "moa"),
        Option("source-name", "Provenance source to record.", str, "molecules"),
        Option("source-version", "Release to record (e.g. 2020-03-24)."),
    )

    @property
    def source_label(self) -> str:
        return str(self.opts["source_name"])

    def validate(self) -> None:
        self.layout: dict[Path, dict[str, Any]] = {}
        for path in self.files:
            kind = table_kind(path)
            if kind != "table":
                self.layout[path] = {"kind": kind}
                continue
            with open_text(path) as handle:
                header_line = handle.readline().rstrip("\r\n")
            delimiter = "\t" if "\t" in header_line else ","
            header = next(csv.reader([header_line], delimiter=delimiter))
            smiles = self._pick(path, header, "smiles_column", SMILES_COLUMNS, required=True)
            self.layout[path] = {
                "kind": kind,
                "delimiter": delimiter,
                "smiles": smiles,
                "name": self._pick(path, header, "name_column", NAME_COLUMNS),
                "target": self._pick(path, header, "target_column", TARGET_COLUMNS),
                "moa": self.opts["moa_column"] if self.opts["moa_column"] in header else None,
                "broad": next((c for c in BROAD_COLUMNS if c in header), None),
                "columns": header,
            }

    def _pick(
        self, path: Path, header: list[str], option: str, defaults: tuple[str, ...], required: bool = False
    ) -> str | None:
        chosen = self.opts.get(option)
        if chosen:
            if chosen not in header:
                raise KgctlError(f"{path}:1: no column {chosen!r} (columns: {', '.join(header)})")
            return str(chosen)
        found = next((c for c in defaults if c in header), None)
        if required and found is None:
            raise KgctlError(
                f"{path}:1: field 'smiles': no SMILES column (looked for {', '.join(defaults)}; "
                f"the header has {', '.join(header[:12])}); name it with --smiles-column"
            )
        return found

    def records(self, counter: ByteCounter) -> Iterator[Record]:
        for path in self.files:
            layout = self.layout[path]
            if layout["kind"] == "sdf":
                yield from self._sdf(path, counter)
            elif layout["kind"] == "smi":
                yield from self._smi(path, counter)
            else:
                yield from self._table(path, layout, counter)

    def _table(self, path: Path, layout: dict[str, Any], counter: ByteCounter) -> Iterator[Record]:
        with open_text(path, counter) as handle:
            reader = csv.reader(handle, delimiter=layout["delimiter"])
            columns = next(reader)
            index = {c: i for i, c in enumerate(columns)}
            smiles_at = index[layout["smiles"]]
            numbered = ((reader.line_num, row) for row in reader)
            work = parallel_describe(
                chunked(numbered, CHUNK),
                lambda r: r[1][smiles_at].strip() if len(r[1]) == len(columns) else "",
                WORKERS,
            )
            for (number, row), facts in work:
                if len(row) != len(columns):
                    yield Reject(
                        path.name,
                        number,
                        "*",
                        f"expected {len(columns)} fields, found {len(row)}",
                        layout["delimiter"].join(row),
                    )
                    continue
                smiles = row[smiles_at].strip()
                name = row[index[layout["name"]]] if layout["name"] else None
                broad = broad_compound(row[index[layout["broad"]]]) if layout["broad"] else None
                raw = layout["delimiter"].join(row)
                node = molecule_node(facts, name, broad)
                if node is None:
                    why = "empty SMILES" if not smiles else f"invalid SMILES {smiles[:80]!r}"
                    yield Reject(path.name, number, layout["smiles"], why, raw)
                    continue
                targets: list[str] = []
                if layout["target"]:
                    targets = [t.strip() for t in row[index[layout["target"]]].split("|") if t.strip()]
                    bad = [t for t in targets if not GENE_SYMBOL.match(t)]
                    if bad:
                        yield Reject(
                            path.name,
                            number,
                            layout["target"],
                            f"not a gene symbol: {bad[0]!r}",
                            raw,
                        )
                        continue
                yield node
                moa = row[index[layout["moa"]]] if layout["moa"] else None
                for target in targets:
                    yield Node("Gene", gene_id(target))
                    yield Edge("TARGETS", "Molecule", node.id, "Gene", gene_id(target), clean_props({"moa": moa}))
                yield RowDone()

    def _smi(self, path: Path, counter: ByteCounter) -> Iterator[Record]:
        with open_text(path, counter) as handle:
            for number, line in enumerate(handle, 1):
                text = line.strip()
                if not text or text.startswith("#"):
                    continue
                parts = text.split(maxsplit=1)
                if number == 1 and parts[0].lower() in {"smiles", "canonical_smiles"}:
                    continue  # a header line
                node = molecule_node(describe_smiles([parts[0]])[0], parts[1] if len(parts) > 1 else None)
                if node is None:
                    yield Reject(path.name, number, "smiles", f"invalid SMILES {parts[0][:80]!r}", text)
                    continue
                yield node
                yield RowDone()

    def _sdf(self, path: Path, counter: ByteCounter) -> Iterator[Record]:
        with open_binary(path, counter) as handle:
            line = 1
            block: list[bytes] = []
            for raw in handle:
                block.append(raw)
                if raw.strip() != b"$$$$":
                    continue
                yield from self._sdf_record(path, line, b"".join(block))
                line += len(block)
                block = []
            if any(b.strip() for b in block):
                yield from self._sdf_record(path, line, b"".join(block))

    def _sdf_record(self, path: Path, line: int, block: bytes) -> Iterator[Record]:
        text = block.decode("utf-8", errors="replace")
        mol = Chem.MolFromMolBlock(text.split("M  END")[0] + "M  END\n") if "M  END" in text else None
        name = text.splitlines()[0].strip() if text else None
        node = molecule_node(describe(mol) if mol is not None else None, name or None)
        if node is None:
            yield Reject(path.name, line, "molblock", "RDKit cannot read this SDF record", text[:200])
            return
        yield node
        yield RowDone()
