"""Named Cypher queries (`*.cypher` with a header) and the runner behind `kgctl query`.

A query file starts with `//` lines: the first says what it does, then one line per parameter,
`// param NAME: TYPE [= DEFAULT] [- help]` with TYPE string, int, float or bool. Values from the
command line are converted and passed as parameters, never pasted into the Cypher; every query
runs in a READ transaction, so a query file cannot write. From Python,
`kgctl.queries.run(name, **params)` returns the rows as a pandas DataFrame."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from neo4j.exceptions import Neo4jError

from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection

if TYPE_CHECKING:
    import pandas as pd

PARAM = re.compile(r"^//\s*param\s+(\w+)\s*:\s*(string|int|float|bool)\s*(?:=\s*(\S+))?\s*(?:-\s*(.*))?$")
TYPES = {"string": str, "int": int, "float": float, "bool": bool}
REQUIRED = object()


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: Any
    help: str

    def convert(self, value: Any) -> Any:
        """A command-line string parsed, or a Python value checked, as the declared type."""
        if not isinstance(value, str):
            ok = {
                "string": False,
                "int": isinstance(value, int) and not isinstance(value, bool),
                "float": isinstance(value, int | float) and not isinstance(value, bool),
                "bool": isinstance(value, bool),
            }[self.type]
            if not ok:
                raise KgctlError(f"--param {self.name}: {value!r} is not {self.type}")
            return self._in_range(float(value) if self.type == "float" else value)
        text = value
        if self.type == "bool":
            if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise KgctlError(f"--param {self.name}: {text!r} is not a bool (true/false)")
            return text.lower() in ("true", "1", "yes")
        try:
            value = TYPES[self.type](text)
        except ValueError:
            raise KgctlError(f"--param {self.name}: {text!r} is not {self.type}") from None
        return self._in_range(value)

    def _in_range(self, value: Any) -> Any:
        """Neo4j integers are 64-bit, and floats must be finite."""
        if self.type == "int" and not -(2**63) <= value < 2**63:
            raise KgctlError(f"--param {self.name}: {value} is outside Neo4j's 64-bit integers")
        if self.type == "float" and not math.isfinite(value):
            raise KgctlError(f"--param {self.name}: {value} is not a finite number")
        return value


@dataclass(frozen=True)
class Query:
    name: str
    description: str
    params: tuple[Param, ...]
    cypher: str

    def bind(self, given: dict[str, Any]) -> dict[str, Any]:
        names = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise KgctlError(
                f"query {self.name}: unknown parameter {', '.join(unknown)} (takes {', '.join(names) or 'none'})"
            )
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


def rows(
    conn: Connection, name: str, given: dict[str, Any], limit: int | None = None
) -> tuple[Query, list[dict[str, Any]]]:
    """A named query's rows, its parameters checked first, in a READ transaction; `limit` sets
    the query's own `limit` parameter when it has one and cuts the rows in any case."""
    query = get(name)
    params = query.bind(given)
    if limit is not None:
        if limit < 1:
            raise KgctlError("--limit must be at least 1")
        if "limit" in params:
            params["limit"] = limit
    try:
        found = conn.read(query.cypher, params)
    except Neo4jError as exc:
        what = (
            "tried to write; named queries are read-only"
            if "AccessMode" in str(exc.code)
            else (f"{exc.code}: {str(exc.message or exc).splitlines()[0]}")
        )
        raise KgctlError(f"query {name}: {what}") from None
    return query, found[:limit] if limit is not None else found


def run(name: str, conn: Connection | None = None, *, limit: int | None = None, **params: Any) -> pd.DataFrame:
    """A named query's rows as a DataFrame; without `conn`, on the configured (or managed)
    server. Parameters are typed by the query's header: `run("nearest", gene="TP53", k=5)`."""
    import pandas as pd

    if conn is None:
        from kgctl.graph.connection import connect

        with connect() as opened:
            return run(name, opened, limit=limit, **params)
    _, found = rows(conn, name, params, limit)
    return pd.DataFrame(found)
