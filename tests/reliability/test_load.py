"""Load, the smoke version (the benchmark runs 8 clients for 60 s on the demo graph): client
processes running named queries at once get answers and no errors, and the server they reach
listens on loopback only (the kernel's socket table)."""

from __future__ import annotations

from pathlib import Path

from kgctl.graph.connection import Connection
from kgctl.testing.fixtures import (
    TestServer,
    listening,
    loopback,
    planted_gene_graph,
    query_load,
    query_plan,
)


def test_clients_at_once_get_answers_without_errors_on_loopback(
    graph: Connection, neo4j_server: TestServer, tmp_path: Path
) -> None:
    planted_gene_graph(graph, tmp_path)
    plan, skipped = query_plan(graph)
    assert {"graph-stats", "gene-neighbourhood"} <= {name for name, _ in plan}
    found = query_load(Path(neo4j_server.env["KGCTL_CONFIG"]).parent, plan, clients=4, seconds=5)
    assert found["errors"] == [] and found["answered"] > 4
    server = neo4j_server.settings.server
    sockets = listening({server.bolt_port, server.http_port})
    assert len(sockets) >= 2 and all(map(loopback, sockets)), sockets
