"""Neo4j Browser for kgctl: a `:play` guide built from the query library, a GraSS stylesheet, and
a loopback server that hands both to Browser (which fetches guides and styles cross-origin).

The guide's example gene is the one with the most predictions in the newest written-back run, so
every clickable query answers with rows on the user's own graph.
"""

from __future__ import annotations

import html
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

from kgctl.graph.connection import Connection
from kgctl.graph.schema import NODE_LABELS
from kgctl.queries import REQUIRED, Query, available

GUIDE_PATH = "/kgctl-guide.html"
STYLE_PATH = "/kgctl.grass"

# Label → (fill, border, caption). Captions name what a person reads: gene symbols, molecule
# names, profile and run ids.
_LABEL_STYLE: dict[str, tuple[str, str, str]] = {
    "Gene": ("#4C8EDA", "#2870C2", "{id}"),
    "Molecule": ("#F79767", "#F36924", "{name}"),
    "Transcript": ("#8DCC93", "#5DB665", "{id}"),
    "CellLine": ("#C990C0", "#B261A5", "{id}"),
    "ExpressionProfile": ("#FFC454", "#D7A013", "{id}"),
    "MorphologyProfile": ("#DA7194", "#CC3C6C", "{id}"),
    "Dataset": ("#A5ABB6", "#9AA1AC", "{id}"),
    "IngestRun": ("#A5ABB6", "#9AA1AC", "{source}"),
    "ModelRun": ("#57C7E3", "#23B3D7", "{model}"),
}
# Known edges are thin and grey; model predictions thick and red.
_TYPE_STYLE: dict[str, tuple[str, str, str]] = {
    "INTERACTS_WITH": ("#A5ABB6", "1.5px", "known"),
    "PREDICTED_ASSOCIATION": ("#E0245E", "4px", "predicted"),
    "SIMILAR_TO": ("#7A6FD8", "2px", "{score}"),
}

# The gene's known interactions and the predictions of one run, strongest first; Browser adds the
# relationships among the partners it draws.
GRAPH_CYPHER = """MATCH (g:Gene {id: $gene})-[r:INTERACTS_WITH|PREDICTED_ASSOCIATION]-(o:Gene)
WHERE type(r) = 'INTERACTS_WITH' OR r.run = $run
RETURN g, r, o
ORDER BY coalesce(r.score, r.combined_score / 1000.0) DESC
LIMIT 12"""


@dataclass(frozen=True)
class Example:
    """The values the guide fills in: a gene with predictions, its top predicted partner, and
    the run and model they come from (None where the graph has none)."""

    gene: str | None
    partner: str | None
    model: str | None
    run: str | None


def example(conn: Connection) -> Example:
    """The gene with the most predicted partners in the newest written-back run, else the gene
    with the most known interactions, else nothing (an empty graph)."""
    found = conn.read("""
        MATCH (m:ModelRun) WHERE m.written_back_at IS NOT NULL
        WITH m ORDER BY m.written_back_at DESC, m.id DESC LIMIT 1
        MATCH (g:Gene)-[p:PREDICTED_ASSOCIATION {run: m.id}]->(o:Gene)
        WITH m, g, count(p) AS n, max(p.score) AS top
        ORDER BY n DESC, top DESC, g.id LIMIT 1
        MATCH (g)-[p:PREDICTED_ASSOCIATION {run: m.id}]->(o:Gene)
        RETURN g.id AS gene, o.id AS partner, m.model AS model, m.id AS run
        ORDER BY p.score DESC, o.id LIMIT 1""")
    if found:
        return Example(**found[0])
    known = conn.read(
        "MATCH (g:Gene) WITH g, COUNT { (g)-[:INTERACTS_WITH]-() } AS n "
        "ORDER BY n DESC, g.id LIMIT 1 RETURN g.id AS gene"
    )
    return Example(known[0]["gene"] if known else None, None, None, None)


def grass() -> str:
    """The stylesheet: one rule per schema label, known and predicted edges drawn apart."""
    rules = [
        "node {\n  diameter: 50px;\n  color: #A5ABB6;\n  border-color: #9AA1AC;\n  border-width: 2px;\n"
        '  text-color-internal: #FFFFFF;\n  font-size: 10px;\n  caption: "{id}";\n}',
        "relationship {\n  color: #A5ABB6;\n  shaft-width: 1px;\n  font-size: 8px;\n  padding: 3px;\n"
        '  text-color-external: #000000;\n  text-color-internal: #FFFFFF;\n  caption: "<type>";\n}',
    ]
    for label in NODE_LABELS:
        fill, border, caption = _LABEL_STYLE[label]
        rules.append(
            f"node.{label} {{\n  color: {fill};\n  border-color: {border};\n"
            f'  text-color-internal: #FFFFFF;\n  caption: "{caption}";\n}}'
        )
    for rel_type, (colour, width, caption) in _TYPE_STYLE.items():
        rules.append(
            f'relationship.{rel_type} {{\n  color: {colour};\n  shaft-width: {width};\n  caption: "{caption}";\n}}'
        )
    return "\n\n".join(rules) + "\n"


def _cypher_literal(value: Any) -> str:
    """A Cypher literal for `:params` (JSON's string escapes are Cypher's)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def example_params(query: Query, ex: Example) -> dict[str, Any]:
    """Every parameter of a query with a value: the example's gene, partner, model and run
    where the query takes them, otherwise its declared default."""
    given = {"gene": ex.gene, "a": ex.gene, "b": ex.partner, "model": ex.model, "run": ex.run}
    values = {}
    for p in query.params:
        if p.name in given and (given[p.name] is not None or p.default is REQUIRED):
            values[p.name] = given[p.name]
        else:
            values[p.name] = None if p.default is REQUIRED else p.default
    return values


def params_command(values: dict[str, Any]) -> str:
    """`:param` lines Browser runs as one multi-statement: the `=>` form has the server evaluate
    each value, so 50 stays an integer (`:params {limit: 50}` would send 50.0)."""
    return "\n".join(f":param {k} => {_cypher_literal(v)};" for k, v in values.items())


def _runnable(text: str, caption: str = "") -> str:
    figcaption = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><pre class="pre-scrollable code runnable">{html.escape(text)}</pre>{figcaption}</figure>'


def _slide(title: str, lead: str, body: str) -> str:
    return (
        f'<slide class="row-fluid"><div class="col-sm-3"><h3>{html.escape(title)}</h3>'
        f'<p class="lead">{lead}</p></div><div class="col-sm-9">{body}</div></slide>'
    )


def guide_html(ex: Example, style_url: str, queries: dict[str, Query] | None = None) -> str:
    """The guide: connecting and styling, the example gene as a graph, then one slide per named
    query with its parameters set by `:params` and its Cypher, each a click away from the editor."""
    queries = queries if queries is not None else available()
    gene = html.escape(ex.gene or "(none yet)")
    if ex.run:
        where = (
            f"The examples use gene <b>{gene}</b>, which has the most predictions of run "
            f"<code>{html.escape(ex.run)}</code> ({html.escape(ex.model or '')})."
        )
    elif ex.gene:
        where = (
            f"No model run has been written back yet; the examples use <b>{gene}</b>, the gene "
            "with the most known interactions. <code>kgctl demo</code> writes predictions."
        )
    else:
        where = "The graph is empty: run <code>kgctl demo</code> or <code>kgctl ingest</code> first."
    slides = [
        _slide(
            "kgctl",
            "One context graph: genes, molecules, profiles, transcripts, and the "
            "predictions of every model with their run.",
            f"<p>{where}</p><p>Click a grey box to put it in the editor, then run it "
            "(Ctrl+Enter). First load kgctl's stylesheet: genes are blue, molecules orange, "
            "known interactions thin and grey, <b>predicted associations thick and red</b>.</p>"
            + _runnable(f":style {style_url}", "load the kgctl stylesheet")
            + _runnable("CALL db.schema.visualization()", "what connects to what"),
        ),
        _slide(
            "A gene and its partners",
            "Known interactions beside what the models predict.",
            _runnable(params_command({"gene": ex.gene, "run": ex.run}), "choose the gene and run")
            + _runnable(GRAPH_CYPHER, "its neighbourhood as a graph"),
        ),
    ]
    for query in queries.values():
        values = example_params(query, ex)
        described = "".join(
            f"<li><code>{html.escape(p.name)}</code> ({p.type}) {html.escape(p.help)}</li>" for p in query.params
        )
        slides.append(
            _slide(
                query.name,
                html.escape(query.description),
                (f"<ul>{described}</ul>" if described else "")
                + (_runnable(params_command(values), "set its parameters") if values else "")
                + _runnable(query.cypher, f"kgctl query {query.name}"),
            )
        )
    return (
        '<article class="guide"><carousel class="deck container-fluid">' + "".join(slides) + "</carousel></article>\n"
    )


def browser_link(browser_url: str, bolt_uri: str, user: str, database: str, command: str | None = None) -> str:
    """Browser's URL with the connection form filled in (`dbms`, `db`), and optionally a
    command waiting in the editor (`cmd=edit`)."""
    scheme, _, address = bolt_uri.partition("://")
    params = {"dbms": f"{scheme}://{user}@{address}", "db": database, "preselectAuthMethod": "NATIVE"}
    if command:
        params |= {"cmd": "edit", "arg": command}
    return f"{browser_url}?{urlencode(params, safe=':/@')}"


class GuideServer:
    """The guide (for `ex`) and the stylesheet over HTTP on loopback, with the CORS header
    Browser's cross-origin fetch needs; GET only, two paths, in a background thread until
    `close()`."""

    def __init__(self, ex: Example, port: int = 0) -> None:
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                page = owner.pages.get(self.path.split("?")[0])
                owner.requests += 1
                body = (page[0] if page else "not found\n").encode()
                self.send_response(200 if page else 404)
                self.send_header("Content-Type", f"{page[1] if page else 'text/plain'}; charset=utf-8")
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_OPTIONS(self) -> None:  # noqa: N802
                self.send_response(204)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Access-Control-Allow-Methods", "GET")
                self.send_header("Access-Control-Allow-Headers", "*")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the CLI reports
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.pages = {GUIDE_PATH: (guide_html(ex, self.style_url), "text/html"), STYLE_PATH: (grass(), "text/plain")}
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        # `localhost`, which Browser allows before it has read the server's allowlist (a `:play`
        # right after connecting was refused for 127.0.0.1 on a slow machine).
        return f"http://localhost:{self.httpd.server_address[1]}"

    @property
    def guide_url(self) -> str:
        return self.base_url + GUIDE_PATH

    @property
    def style_url(self) -> str:
        return self.base_url + STYLE_PATH

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> GuideServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
