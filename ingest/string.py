"""STRING v12 protein links (`protein.links`, `.detailed`, `.full`) and `protein.info` names:
`Gene` nodes and one `INTERACTS_WITH` per unordered pair with the combined score and every channel."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from kgctl.errors import KgctlError
from kgctl.ingest.base import GENE_SYMBOL, Adapter, Option, gene_id, register
from kgctl.ingest.readers import ByteCounter, open_text
from kgctl.ingest.records import Edge, Node, Record, Reject, RowDone

INFO_HEADER = ("#string_protein_id", "preferred_name")
LINK_LAYOUTS = {
    3: ("protein1", "protein2", "combined_score"),
    10: ("protein1", "protein2", "neighborhood", "fusion", "cooccurence", "coexpression",
         "experimental", "database", "textmining", "combined_score"),
    16: ("protein1", "protein2", "neighborhood", "neighborhood_transferred", "fusion", "cooccurence",
         "homology", "coexpression", "coexpression_transferred", "experiments",
         "experiments_transferred", "database", "database_transferred", "textmining",
         "textmining_transferred", "combined_score"),
}  # fmt: skip
OPS: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
}  # fmt: skip
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
    formats = "STRING v12 protein.links[.detailed|.full].txt(.gz) plus protein.info.txt(.gz)"
    options = (
        Option("min-score", "Keep links with combined_score >= this (0-1000).", int, 0),
        Option(
            "channel",
            "Channel filter such as 'experimental>=700' (repeatable; all must hold).",
            multiple=True,
        ),  # fmt: skip
        Option("source-version", "Release to record (default: the vNN in the file name)."),
    )

    def validate(self) -> None:
        self.kinds = {path: file_kind(path) for path in self.files}
        self.links = [p for p, k in self.kinds.items() if k == "links"]
        self.infos = [p for p, k in self.kinds.items() if k == "info"]
        if not self.links and not self.infos:
            raise KgctlError("no STRING files given")
        self.filters: list[tuple[str, Callable[[int, int], bool], int]] = []
        for text in self.opts.get("channel", ()):
            match = FILTER.match(text)
            if not match:
                raise KgctlError(
                    f"--channel {text!r}: expected NAME>=VALUE, e.g. experimental>=700"
                )
            name, op, value = match.groups()
            for path in self.links:
                with open_text(path) as handle:
                    header = handle.readline().split()
                if name not in header[2:]:
                    raise KgctlError(
                        f"--channel {text!r}: {path.name} has no channel {name!r}; it has "
                        f"{', '.join(header[2:])}"
                    )
            self.filters.append((name, OPS[op], int(value)))
        if self.links and not self.infos and not self.lookup.ids("Gene", "string_id"):
            raise KgctlError(
                "STRING links name proteins, not genes: pass the matching protein.info file too "
                "(or ingest it first)"
            )

    def records(self, counter: ByteCounter) -> Iterator[Record]:
        names: dict[str, str] = dict(self.lookup.ids("Gene", "string_id")) if self.links else {}
        for path in self.infos:
            with open_text(path, counter) as handle:
                yield from self._info(path, handle, names)
        for path in self.links:
            with open_text(path, counter) as handle:
                yield from self._links(path, handle, names)

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
                yield Reject(
                    path.name, number, "preferred_name", f"not a gene symbol: {name!r}", line
                )
                continue
            symbol = gene_id(name)
            names[protein] = symbol
            size = fields[2] if len(fields) > 2 else ""
            yield Node("Gene", symbol, {"string_id": protein, "species": protein.split(".", 1)[0],
                                        "protein_size": int(size) if size.isdigit() else None,
                                        "annotation": fields[3] if len(fields) > 3 and fields[3] else None})  # fmt: skip
            yield RowDone()

    def _links(self, path: Path, handle: IO[str], names: dict[str, str]) -> Iterator[Record]:
        header = handle.readline().split()
        columns = header[2:]
        width = len(header)
        score_index = columns.index("combined_score")
        filters = [(columns.index(n), op, v) for n, op, v in self.filters]
        min_score = int(self.opts.get("min_score") or 0)
        symbols = {s: i for i, s in enumerate(sorted(set(names.values())))}
        n_symbols = len(symbols) + 1
        seen: set[int] = set()
        for number, line in enumerate(handle, 2):
            fields = line.split()
            if len(fields) != width:
                yield Reject(
                    path.name,
                    number,
                    "*",
                    f"expected {width} space-separated fields, found {len(fields)}",
                    line,
                )
                continue
            a, b = names.get(fields[0]), names.get(fields[1])
            if a is None or b is None:
                field, protein = ("protein1", fields[0]) if a is None else ("protein2", fields[1])
                yield Reject(
                    path.name,
                    number,
                    field,
                    f"unknown STRING protein {protein!r} (not in protein.info)",
                    line,
                )
                continue
            if a == b:
                yield Reject(
                    path.name, number, "protein2", f"both proteins name the same gene {a}", line
                )
                continue
            if a > b:
                a, b = b, a
            key = symbols[a] * n_symbols + symbols[b]
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
            if scores[score_index] < min_score or not all(op(scores[i], v) for i, op, v in filters):
                yield RowDone("filtered")
                continue
            yield Edge(
                "INTERACTS_WITH", "Gene", a, "Gene", b, dict(zip(columns, scores, strict=True))
            )
            yield RowDone()
