"""What adapters yield: nodes, relationships and rejected rows, each tied to where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


Record = Node | Edge | Reject | RowDone
