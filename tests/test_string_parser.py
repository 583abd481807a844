"""STRING links: the columnar block parser gives exactly what the line-by-line parser gives, also
when some blocks hold bad rows (those blocks fall back to the line parser, which names them)."""

from __future__ import annotations

import operator
import random
from pathlib import Path
from typing import Any

import pytest

from kgctl.graph.records import Edge, EdgeBlock, Reject, RowDone
from kgctl.graph.schema import STRING_CHANNELS
from kgctl.ingest.readers import open_binary
from kgctl.ingest.string import LINK_LAYOUTS, LinkParser

HEADER = (
    "protein1 protein2 neighborhood fusion cooccurence coexpression experimental database textmining combined_score"
)


def links_file(path: Path, bad: bool) -> tuple[Path, dict[str, str]]:
    rng = random.Random(7)
    names = {f"9606.P{i}": f"G{i:03d}" for i in range(60)}
    proteins = list(names)
    names |= {f"9606.Q{i}": f"H{i}" for i in range(8)}  # in no random pair: for the bad rows
    names["9606.ALIAS"] = "G001"  # a second protein for one gene
    lines = [HEADER]
    for _ in range(3000):
        a, b = rng.sample(proteins, 2)
        scores = [rng.choice([0, 0, rng.randint(0, 1000)]) for _ in range(8)]
        lines.append(" ".join([a, b, *map(str, scores)]))
        lines.append(" ".join([b, a, *map(str, scores)]))  # STRING's mirrored line
    if bad:
        for at, line in [
            (500, "9606.P1 9606.P2 1 2"),
            (1500, "9606.P1 9606.NOPE 0 0 0 0 0 0 0 9"),
            (2500, "9606.Q3 9606.Q4 0 0 x 0 0 0 0 9"),
            (4000, "9606.Q5 9606.Q6 0 0 0 0 0 0 0 1001"),
            (5000, "9606.P1 9606.ALIAS 0 0 0 0 0 0 0 5"),
            (5500, ""),
        ]:
            lines.insert(at, line)
    path.write_text("\n".join(lines) + "\n")
    return path, names


def parse(path: Path, names: dict[str, str], block_bytes: int | None) -> dict[str, Any]:
    filters = [("experimental", operator.ge, 100)]
    parser = LinkParser(names, filters, min_score=50, **({"block_bytes": block_bytes} if block_bytes else {}))
    if block_bytes is None:  # the reference: the line parser over the whole file
        text = path.read_text()
        header, _, body = text.partition("\n")
        records = list(parser.lines(path, body, 2, header.split()))
    else:
        with open_binary(path) as handle:
            records = list(parser.parse(path, handle))
    edges: list[tuple[Any, ...]] = []
    rows = {"loaded": 0, "filtered": 0, "duplicate": 0}
    rejects = []
    blocks = 0
    for r in records:
        if isinstance(r, EdgeBlock):
            blocks += 1
            edges += [tuple(row) for row in r.as_rows()]
            for k, v in r.rows.items():
                rows[k] += v
        elif isinstance(r, Edge):
            edges.append((r.start_id, r.end_id, *(r.props[k] for k in sorted(r.props))))
        elif isinstance(r, RowDone):
            rows[r.status] += 1
        elif isinstance(r, Reject):
            rejects.append((r.line, r.field))
    return {"edges": edges, "rows": rows, "rejects": rejects, "blocks": blocks}


@pytest.mark.adapter("string")
def test_blocks_equal_lines_on_clean_input(tmp_path: Path) -> None:
    path, names = links_file(tmp_path / "links.txt", bad=False)
    reference = parse(path, names, None)
    for size in (1 << 20, 4096, 999):
        got = parse(path, names, size)
        assert got["blocks"] > 0  # the columnar path ran
        assert {k: v for k, v in got.items() if k != "blocks"} == {k: v for k, v in reference.items() if k != "blocks"}
    assert reference["rows"]["loaded"] > 100 and reference["rows"]["filtered"] > 100
    assert reference["rows"]["duplicate"] >= 3000


@pytest.mark.adapter("string")
def test_blocks_with_bad_rows_fall_back_and_name_the_line(tmp_path: Path) -> None:
    path, names = links_file(tmp_path / "links.txt", bad=True)
    reference = parse(path, names, None)
    assert reference["rejects"] == [
        (501, "*"),
        (1501, "protein2"),
        (2501, "cooccurence"),
        (4001, "combined_score"),
        (5001, "protein2"),
        (5501, "*"),
    ]
    got = parse(path, names, 4096)
    assert got["blocks"] > 0
    assert {k: v for k, v in got.items() if k != "blocks"} == {k: v for k, v in reference.items() if k != "blocks"}


@pytest.mark.adapter("string")
def test_every_layout_channel_is_in_the_schema() -> None:
    channels = {c for layout in LINK_LAYOUTS.values() for c in layout[2:-1]}
    assert channels == set(STRING_CHANNELS)  # CAL's channel filter and the schema agree
