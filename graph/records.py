"""What adapters yield: nodes, relationships and rejected rows, each tied to where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

Props = dict[str, Any]


@dataclass(slots=True)
class Node:
    """A node to MERGE on its unique `id`; `props` are SET (None values are dropped)."""

    label: str
    id: str
    props: Props = field(default_factory=dict)


@dataclass(slots=True)
class Edge:
    """A relationship between two nodes given by (label, id): one per type and (ordered) pair; a
    second source adds itself to `sources` and updates the properties."""

    type: str
    start_label: str
    start_id: str
    end_label: str
    end_id: str
    props: Props = field(default_factory=dict)


@dataclass(slots=True)
class EdgeBlock:
    """Many relationships of one type as columns: the fast path for large edge lists (STRING).
    Pairs are unique within the run (the adapter deduplicates), and `rows` counts the input rows
    the block stands for by status (`loaded`, `filtered`, `duplicate`), so no `RowDone` follows."""

    type: str
    start_label: str
    end_label: str
    start_ids: pa.Array  # strings
    end_ids: pa.Array
    props: dict[str, np.ndarray]  # property → one value per relationship
    rows: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.start_ids)

    def part(self, start: int, stop: int) -> EdgeBlock:
        """Relationships [start, stop) (rows are not split: they stay with the whole block)."""
        props = {k: v[start:stop] for k, v in self.props.items()}
        ids = self.start_ids[start:stop], self.end_ids[start:stop]
        return EdgeBlock(self.type, self.start_label, self.end_label, *ids, props)

    def as_rows(self) -> list[tuple[Any, ...]]:
        """(start, end, *props in sorted key order) per relationship, for UNWIND."""
        columns = [self.start_ids.to_pylist(), self.end_ids.to_pylist()]
        columns += [self.props[k].tolist() for k in sorted(self.props)]
        return list(zip(*columns, strict=True))


@dataclass(slots=True)
class Reject:
    """A row that failed validation: where it is (file, line, field) and why."""

    file: str
    line: int
    field: str
    message: str
    raw: str = ""

    def describe(self) -> str:
        return f"{self.file}:{self.line}: field {self.field!r}: {self.message}"


@dataclass(slots=True)
class RowDone:
    """Marks the end of one input row (or record) so the pipeline can count rows read: `loaded`,
    `filtered` (by an option such as --min-score) or `duplicate` (e.g. STRING's mirrored pairs)."""

    status: str = "loaded"


Record = Node | Edge | EdgeBlock | Reject | RowDone
