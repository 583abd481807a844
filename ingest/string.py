"""STRING v12 protein links (`protein.links`, `.detailed`, `.full`) and `protein.info` names:
`Gene` nodes and one `INTERACTS_WITH` per unordered pair with the combined score and every channel."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option
from kgctl.graph.records import Edge, EdgeBlock, Node, Record, Reject, RowDone
from kgctl.ingest.base import GENE_SYMBOL, Adapter, gene_id, register
from kgctl.ingest.readers import ByteCounter, open_binary, open_text

INFO_HEADER = ("#string_protein_id", "preferred_name")
LINK_LAYOUTS = {
    3: ("protein1", "protein2", "combined_score"),
    10: (
        "protein1",
        "protein2",
        "neighborhood",
        "fusion",
        "cooccurence",
        "coexpression",
        "experimental",
        "database",
        "textmining",
        "combined_score",
    ),
    16: (
        "protein1",
        "protein2",
        "neighborhood",
        "neighborhood_transferred",
        "fusion",
        "cooccurence",
        "homology",
        "coexpression",
        "coexpression_transferred",
        "experiments",
        "experiments_transferred",
        "database",
        "database_transferred",
        "textmining",
        "textmining_transferred",
        "combined_score",
    ),
}
OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}
BLOCK_BYTES = 1 << 20
FILTER = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|==|>|<)\s*(\d+)\s*$")


def file_kind(path: Path) -> str:
    """'info' or 'links', from the header line; anything else is the wrong format."""
    with open_text(path) as handle:
        header = handle.readline().rstrip("\r\n")
    if tuple(header.split("\t")[:2]) == INFO_HEADER:
        return "info"
    fields = tuple(header.split(" "))
    if LINK_LAYOUTS.get(len(fields)) == fields:
        return "links"
    raise KgctlError(
        f"{path}:1: not a STRING protein.links or protein.info file: the header is "
        f"{header[:120]!r}; expected 'protein1 protein2 … combined_score' (space-separated) or "
        "'#string_protein_id<TAB>preferred_name…'"
    )


@register
class StringAdapter(Adapter):
    name = "string"
    source = "STRING"
    licence = "CC-BY-4.0"  # STRING v12: CC BY 4.0
    formats = "STRING v12 protein.links[.detailed|.full].txt(.gz) plus protein.info.txt(.gz)"
    options = (
        Option("min-score", "Keep links with combined_score >= this (0-1000).", int, 0),
        Option(
            "channel",
            "Channel filter such as 'experimental>=700' (repeatable; all must hold).",
            multiple=True,
        ),
        Option("source-version", "Release to record (default: the vNN in the file name)."),
    )

    def validate(self) -> None:
        self.kinds = {path: file_kind(path) for path in self.files}
        self.links = [p for p, k in self.kinds.items() if k == "links"]
        self.infos = [p for p, k in self.kinds.items() if k == "info"]
        if not self.links and not self.infos:
            raise KgctlError("no STRING files given")
        if not 0 <= int(self.opts.get("min_score") or 0) <= 1000:
            raise KgctlError(f"--min-score {self.opts['min_score']}: STRING scores run 0-1000")
        self.filters: list[tuple[str, Callable[[Any, Any], Any], int]] = []
        for text in self.opts.get("channel", ()):
            match = FILTER.match(text)
            if not match:
                raise KgctlError(f"--channel {text!r}: expected NAME>=VALUE, e.g. experimental>=700")
            name, op, value = match.groups()
            for path in self.links:
                with open_text(path) as handle:
                    header = handle.readline().split()
                if name not in header[2:]:
                    raise KgctlError(
                        f"--channel {text!r}: {path.name} has no channel {name!r}; it has {', '.join(header[2:])}"
                    )
            self.filters.append((name, OPS[op], int(value)))
        if self.links and not self.infos and not self.lookup.ids("Gene", "string_id"):
            raise KgctlError(
                "STRING links name proteins, not genes: pass the matching protein.info file too (or ingest it first)"
            )

    def records(self, counter: ByteCounter) -> Iterator[Record]:
        names: dict[str, str] = dict(self.lookup.ids("Gene", "string_id")) if self.links else {}
        for path in self.infos:
            with open_text(path, counter) as handle:
                yield from self._info(path, handle, names)
        if not self.links:
            return
        links = LinkParser(names, self.filters, int(self.opts.get("min_score") or 0))
        for path in self.links:  # one relationship per pair across every links file: the first
            with open_binary(path, counter) as handle:
                yield from links.parse(path, handle)

    def _info(self, path: Path, handle: IO[str], names: dict[str, str]) -> Iterator[Record]:
        handle.readline()
        for number, line in enumerate(handle, 2):
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) < 2:
                yield Reject(
                    path.name,
                    number,
                    "preferred_name",
                    "expected at least 2 tab-separated fields",
                    line,
                )
                continue
            protein, name = fields[0], fields[1]
            if not re.fullmatch(r"\d+\.\S+", protein):
                yield Reject(
                    path.name,
                    number,
                    "#string_protein_id",
                    f"not a STRING protein id: {protein!r}",
                    line,
                )
                continue
            if not GENE_SYMBOL.match(name):
                yield Reject(path.name, number, "preferred_name", f"not a gene symbol: {name!r}", line)
                continue
            symbol = gene_id(name)
            names[protein] = symbol
            size = fields[2] if len(fields) > 2 else ""
            yield Node(
                "Gene",
                symbol,
                {
                    "string_id": protein,
                    "species": protein.split(".", 1)[0],
                    "protein_size": int(size) if size.isdigit() else None,
                    "annotation": fields[3] if len(fields) > 3 and fields[3] else None,
                },
            )
            yield RowDone()


class LinkParser:
    """protein.links lines → `INTERACTS_WITH`. Blocks of about a megabyte are parsed as columns
    (pyarrow + numpy); a block with anything unusual in it (a bad field count, unknown protein,
    non-integer or out-of-range score, a gene paired with itself) goes through the line-by-line
    parser instead, which names the line and field of each bad row. Both give the same result."""

    def __init__(
        self,
        names: dict[str, str],
        filters: list[tuple[str, Callable[[Any, Any], Any], int]],
        min_score: int,
        block_bytes: int = BLOCK_BYTES,
    ) -> None:
        self.names = names
        self.block_bytes = block_bytes
        self.filters = filters
        self.min_score = min_score
        symbols = sorted(set(names.values()))
        self.codes = {s: i for i, s in enumerate(symbols)}  # sorted, so code order = id order
        self.symbols = pa.array(symbols, pa.string())
        self.proteins = pa.array(list(names), pa.string())
        self.protein_codes = np.array([self.codes[s] for s in names.values()], dtype=np.int64)
        self.n_symbols = len(symbols) + 1
        self.seen: set[int] = set()  # lo * n_symbols + hi of every pair kept or filtered

    def parse(self, path: Path, handle: IO[bytes]) -> Iterator[Record]:
        header = handle.readline().decode("utf-8").split()
        number = 2
        for block in line_blocks(handle, self.block_bytes):
            lines = block.count(b"\n")
            fast = self.columns(block, lines, header)
            if fast is None:
                yield from self.lines(path, block.decode("utf-8"), number, header)
            else:
                yield fast
            number += lines

    def columns(self, block: bytes, lines: int, header: list[str]) -> EdgeBlock | None:
        """The block as one EdgeBlock, or None when any line needs the line-by-line parser."""
        types = {name: pa.string() for name in header[:2]} | {n: pa.int32() for n in header[2:]}
        try:
            table = pacsv.read_csv(
                pa.py_buffer(block),
                read_options=pacsv.ReadOptions(column_names=header),
                parse_options=pacsv.ParseOptions(delimiter=" ", quote_char=False, ignore_empty_lines=False),
                convert_options=pacsv.ConvertOptions(column_types=types, null_values=[], strings_can_be_null=False),
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            return None
        if table.num_rows != lines:
            return None
        first = pc.index_in(table.column(0), value_set=self.proteins)
        second = pc.index_in(table.column(1), value_set=self.proteins)
        if first.null_count or second.null_count:
            return None
        a = self.protein_codes[first.to_numpy()]
        b = self.protein_codes[second.to_numpy()]
        scores = {n: table.column(n).to_numpy() for n in header[2:]}
        if (a == b).any() or any(((v < 0) | (v > 1000)).any() for v in scores.values()):
            return None
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        keys = lo * self.n_symbols + hi
        unique, first_index = np.unique(keys, return_index=True)
        new = np.fromiter((k not in self.seen for k in unique.tolist()), bool, len(unique))
        rows = np.sort(first_index[new])  # first occurrence of each new pair, in file order
        self.seen.update(unique[new].tolist())
        keep = scores["combined_score"][rows] >= self.min_score
        for name, op, value in self.filters:
            keep &= op(scores[name][rows], value)
        loaded = rows[keep]
        return EdgeBlock(
            "INTERACTS_WITH",
            "Gene",
            "Gene",
            self.symbols.take(pa.array(lo[loaded])),
            self.symbols.take(pa.array(hi[loaded])),
            {name: values[loaded] for name, values in scores.items()},
            {"loaded": len(loaded), "filtered": len(rows) - len(loaded), "duplicate": lines - len(rows)},
        )

    def lines(self, path: Path, text: str, first: int, header: list[str]) -> Iterator[Record]:
        columns = header[2:]
        width = len(header)
        score_index = columns.index("combined_score")
        filters = [(columns.index(n), op, v) for n, op, v in self.filters]
        names, codes, seen = self.names, self.codes, self.seen
        for number, line in enumerate(text.split("\n")[:-1], first):  # the block ends with \n
            fields = line.split()
            if len(fields) != width:
                yield Reject(
                    path.name, number, "*", f"expected {width} space-separated fields, found {len(fields)}", line
                )
                continue
            a, b = names.get(fields[0]), names.get(fields[1])
            if a is None or b is None:
                field, protein = ("protein1", fields[0]) if a is None else ("protein2", fields[1])
                yield Reject(
                    path.name, number, field, f"unknown STRING protein {protein!r} (not in protein.info)", line
                )
                continue
            if a == b:
                yield Reject(path.name, number, "protein2", f"both proteins name the same gene {a}", line)
                continue
            if a > b:
                a, b = b, a
            key = codes[a] * self.n_symbols + codes[b]
            if key in seen:  # STRING lists every pair in both directions; the first one counts
                yield RowDone("duplicate")
                continue
            try:
                scores = [int(v) for v in fields[2:]]
            except ValueError:
                bad = next(c for c, v in zip(columns, fields[2:], strict=True) if not v.isdigit())
                yield Reject(path.name, number, bad, "not an integer score", line)
                continue
            if not all(0 <= s <= 1000 for s in scores):
                bad = next(c for c, s in zip(columns, scores, strict=True) if not 0 <= s <= 1000)
                yield Reject(path.name, number, bad, "score outside 0-1000", line)
                continue
            seen.add(key)
            if scores[score_index] < self.min_score or not all(op(scores[i], v) for i, op, v in filters):
                yield RowDone("filtered")
                continue
            yield Edge("INTERACTS_WITH", "Gene", a, "Gene", b, dict(zip(columns, scores, strict=True)))
            yield RowDone()


def line_blocks(handle: IO[bytes], size: int = BLOCK_BYTES) -> Iterator[bytes]:
    """Whole lines, about `size` bytes at a time; the last line gets its newline if it lacks one."""
    rest = b""
    while chunk := handle.read(size):
        data = rest + chunk
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut]
        rest = data[cut:]
    if rest:
        yield rest + b"\n"
