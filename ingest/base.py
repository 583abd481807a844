"""The adapter contract every source follows (parse → validate → typed rows with provenance) and
the registry that the CLI and Python API look adapters up in, in the style of PyKEEN's resolvers."""

from __future__ import annotations

import importlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option
from kgctl.graph.records import Record
from kgctl.ingest.readers import ByteCounter

GENE_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-._@/:]*$")


class Lookup:
    """Identifiers already in the graph, for rows that refer to nodes by another key
    (a STRING protein id, an Ensembl gene id, an InChIKey). Empty for a bulk load."""

    def __init__(self, fetch: Callable[[str, dict[str, Any]], list[dict[str, Any]]] | None) -> None:
        self._fetch = fetch
        self._cache: dict[tuple[str, str], dict[str, list[str]]] = {}

    def ids(self, label: str, key: str) -> dict[str, str]:
        """{value of `key`: node id} for every `label` node that has `key` (one of them, the
        last by id, where several share a value: use `grouped` when that matters)."""
        return {k: v[-1] for k, v in self.grouped(label, key).items()}

    def grouped(self, label: str, key: str) -> dict[str, list[str]]:
        """{value of `key`: the ids of every `label` node with that value, sorted}."""
        from kgctl.graph.schema import check_label

        check_label(label)
        if not re.fullmatch(r"[a-z_0-9]+", key):
            raise ValueError(f"bad property name {key!r}")
        if (label, key) not in self._cache:
            rows = (
                self._fetch(
                    f"MATCH (n:{label}) WHERE n.{key} IS NOT NULL RETURN n.{key} AS k, n.id AS id ORDER BY id",
                    {},
                )
                if self._fetch
                else []
            )
            found: dict[str, list[str]] = {}
            for r in rows:
                found.setdefault(str(r["k"]), []).append(str(r["id"]))
            self._cache[(label, key)] = found
        return self._cache[(label, key)]


class Adapter(ABC):
    """One source. Subclasses set the class attributes and implement `validate` and `records`.

    `records` must be deterministic for the same files and options (an interrupted run resumes by
    skipping the batches it already committed), and must yield a node before any relationship
    that needs it, and a `RowDone` or `Reject` after each input row.
    """

    name: ClassVar[str]  # the CLI name: `kgctl ingest <name>`
    source: ClassVar[str]  # provenance `source` on everything written
    licence: ClassVar[str]  # the source's licence (SPDX id where there is one), likewise
    formats: ClassVar[str]  # one line for --help
    parser_version: ClassVar[int] = 1  # bump when parsing changes, so a re-ingest is not a no-op
    options: ClassVar[tuple[Option, ...]] = ()
    min_files: ClassVar[int] = 1

    def __init__(self, files: list[Path], options: dict[str, Any], lookup: Lookup) -> None:
        if len(files) < self.min_files:
            raise KgctlError(f"`{self.name}` needs at least {self.min_files} file(s)")
        self.files = files
        self.opts = {o.key: (() if o.multiple else o.default) for o in self.options} | {
            k: v for k, v in options.items() if v is not None and v != ()
        }
        self.lookup = lookup

    def source_version(self) -> str:
        """The release, from `--source-version` or a `vNN` in the file name, else 'unknown'."""
        if self.opts.get("source_version"):
            return str(self.opts["source_version"])
        for path in self.files:
            match = re.search(r"v(\d+(?:\.\d+)*)", path.name)
            if match:
                return match.group(1)
        return "unknown"

    def licence_of(self) -> str:
        """`--licence` when given (files whose terms differ from the source's), else the source's."""
        return str(self.opts.get("licence") or self.licence)

    @property
    def source_label(self) -> str:
        """The provenance `source`; adapters may let users name it (e.g. the table's origin)."""
        return self.source

    @abstractmethod
    def validate(self) -> None:
        """Check that every file is in this source's format (headers, shapes) before any write;
        raise KgctlError naming the file, line and field otherwise."""

    @abstractmethod
    def records(self, counter: ByteCounter) -> Iterator[Record]:
        """Stream nodes, relationships, rejects and row ends."""


ADAPTERS: dict[str, type[Adapter]] = {}


def register(cls: type[Adapter]) -> type[Adapter]:
    ADAPTERS[cls.name] = cls
    return cls


def adapter_class(name: str) -> type[Adapter]:
    importlib.import_module("kgctl.ingest")  # the package imports, and so registers, every adapter
    try:
        return ADAPTERS[name]
    except KeyError:
        raise KgctlError(f"unknown source {name!r}; choose from {', '.join(sorted(ADAPTERS))}") from None


def gene_id(symbol: str) -> str:
    """Gene node ids are upper-case HGNC symbols."""
    return symbol.strip().upper()


def clean_props(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if v is not None and v != ""}
