"""`kgctl query [NAME]`: list the named Cypher queries, or run one with typed parameters."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import click

from kgctl.cli.output import Result, connected, json_command
from kgctl.core.errors import KgctlError


def render_rows(rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1, default=str))
    elif fmt == "csv":
        buffer = io.StringIO()
        if rows:
            writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(show_edge=False)
        for column in rows[0] if rows else ["(no rows)"]:
            table.add_column(column)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        Console().print(table)


def _parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise KgctlError(f"--param {pair!r}: write it as name=value")
        out[key.strip()] = value
    return out


@click.command("query")
@click.argument("name", required=False)
@click.option("--param", "params", multiple=True, metavar="K=V", help="A query parameter (repeatable).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many rows.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@json_command(lambda r: render_rows(r["rows"], r["format"]) if "rows" in r else _render_queries(r))
def query(name: str | None, params: tuple[str, ...], limit: int | None, fmt: str) -> Result:
    """Run a named query from queries/ (without NAME: list them with their parameters).

    Parameters are typed from the query's header and passed to Neo4j as parameters; the query
    runs in a READ transaction, so it cannot write.
    """
    from kgctl import queries

    if name is None:
        return {
            "queries": [
                {
                    "name": q.name,
                    "description": q.description,
                    "params": [
                        {
                            "name": p.name,
                            "type": p.type,
                            "help": p.help,
                            "default": None if p.default is queries.REQUIRED else p.default,
                            "required": p.default is queries.REQUIRED,
                        }
                        for p in q.params
                    ],
                }
                for q in queries.available().values()
            ]
        }
    given = _parse_params(params)
    queries.get(name).bind(given)  # a clear error before connecting
    with connected() as (_, conn):
        _, rows = queries.rows(conn, name, given, limit)
    return {"query": name, "format": fmt, "rows": rows}


def _render_queries(r: Result) -> None:
    for q in r["queries"]:
        args = " ".join(
            f"{p['name']}=<{p['type']}>" if p["required"] else f"[{p['name']}={p['default']}]" for p in q["params"]
        )
        click.echo(f"{q['name']:<18} {q['description']}")
        click.echo(f"{'':<18} params: {args}")
