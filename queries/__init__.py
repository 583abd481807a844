"""Named Cypher queries (`*.cypher` with a header) and the runner behind `kgctl query`.

A query file starts with `//` lines: the first says what it does, then one line per parameter,
`// param NAME: TYPE [= DEFAULT] [- help]` with TYPE string, int, float or bool. Values from the
command line are converted and passed as parameters, never pasted into the Cypher."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection

PARAM = re.compile(
    r"^//\s*param\s+(\w+)\s*:\s*(string|int|float|bool)\s*(?:=\s*(\S+))?\s*(?:-\s*(.*))?$"
)
TYPES = {"string": str, "int": int, "float": float, "bool": bool}
REQUIRED = object()


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: Any
    help: str

    def convert(self, text: str) -> Any:
        if self.type == "bool":
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise KgctlError(f"--param {self.name}: {text!r} is not a bool (true/false)")
            return text.lower() in ("true", "1", "yes")
        try:
            return TYPES[self.type](text)
        except ValueError:
            raise KgctlError(f"--param {self.name}: {text!r} is not {self.type}") from None


@dataclass(frozen=True)
class Query:
    name: str
    description: str
    params: tuple[Param, ...]
    cypher: str

    def bind(self, given: dict[str, str]) -> dict[str, Any]:
        names = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise KgctlError(f"query {self.name}: unknown parameter {', '.join(unknown)} "
                             f"(takes {', '.join(names) or 'none'})")  # fmt: skip
        bound = {}
        for p in self.params:
            if p.name in given:
                bound[p.name] = p.convert(given[p.name])
            elif p.default is REQUIRED:
                raise KgctlError(f"query {self.name}: --param {p.name}=… is required ({p.help})")
            else:
                bound[p.name] = p.default
        return bound


def parse(name: str, text: str) -> Query:
    header = [line for line in text.splitlines() if line.startswith("//")]
    if not header:
        raise KgctlError(f"query {name}: no `//` header")
    params = []
    for line in header[1:]:
        m = PARAM.match(line)
        if not m:
            raise KgctlError(f"query {name}: bad header line {line!r}")
        pname, ptype, default, help_ = m.groups()
        value: Any = REQUIRED
        if default is not None:
            value = None if default == "null" else Param(pname, ptype, None, "").convert(default)
        params.append(Param(pname, ptype, value, help_ or ""))
    body = "\n".join(line for line in text.splitlines() if not line.startswith("//"))
    return Query(name, header[0].lstrip("/ ").strip(), tuple(params), body.strip())


def available() -> dict[str, Query]:
    folder = resources.files(__name__)
    return {
        f.name.removesuffix(".cypher"): parse(f.name.removesuffix(".cypher"), f.read_text())
        for f in sorted(folder.iterdir(), key=lambda f: f.name)
        if f.name.endswith(".cypher")
    }


def get(name: str) -> Query:
    queries = available()
    if name not in queries:
        raise KgctlError(f"no query {name!r}; known: {', '.join(queries)}")
    return queries[name]


def run(conn: Connection, name: str, given: dict[str, str]) -> tuple[Query, list[dict[str, Any]]]:
    query = get(name)
    return query, conn.query(query.cypher, query.bind(given))
