"""Faults: an ingest whose kgctl process, or whose Neo4j server, is killed with SIGKILL part-way
and that is then run again ends with exactly the graph of one clean run (every node,
relationship and property but the creation time), compared by a canonical dump."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from kgctl import generators
from kgctl.graph.connection import Connection, start_managed
from kgctl.graph.schema import apply_schema
from kgctl.ingest.pipeline import mark_stale_runs
from kgctl.testing import TestServer, cli_json, wipe

VOLATILE = {"created_at"}  # when a write happened, not what it wrote


def canonical(conn: Connection) -> tuple[list[str], list[str]]:
    """Every data node and relationship with its properties, sorted, as JSON lines."""
    nodes = conn.query("MATCH (n) WHERE NOT n:IngestRun AND NOT n:SchemaVersion "
                       "RETURN labels(n) AS l, properties(n) AS p")  # fmt: skip
    rels = conn.query("MATCH (a)-[r]->(b) RETURN a.id AS a, type(r) AS t, b.id AS b, "
                      "properties(r) AS p")  # fmt: skip

    def line(row: dict[str, Any]) -> str:
        row["p"] = {k: v for k, v in row["p"].items() if k not in VOLATILE}
        return json.dumps(row, sort_keys=True, default=str)

    return sorted(map(line, nodes)), sorted(map(line, rels))


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["kgctl", "neo4j"])
def test_a_killed_ingest_resumes_to_the_clean_runs_graph(
    spare_server: TestServer, tmp_path: Path, victim: str
) -> None:
    info, links = generators.string_files(tmp_path / "string", n_proteins=3000, n_lines=300_000,
                                          seed=3)  # fmt: skip
    args = ["ingest", "string", str(info), str(links), "--batch-size", "5000",
            "--rejects-dir", str(tmp_path / "rejects")]  # fmt: skip
    start_managed(spare_server.settings)
    server_pid = spare_server.server.pid()
    assert server_pid is not None
    ingest = subprocess.Popen([sys.executable, "-m", "kgctl.cli", *args], env=spare_server.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    with spare_server.connect() as conn:
        deadline = time.monotonic() + 600
        while ingest.poll() is None and time.monotonic() < deadline:
            done = conn.query("MATCH (r:IngestRun) RETURN max(r.batches_done) AS n")[0]["n"]
            if done and done >= 3:
                os.kill(ingest.pid if victim == "kgctl" else server_pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    code = ingest.wait(timeout=600)
    assert code == -signal.SIGKILL if victim == "kgctl" else code != 0, "it ended before the kill"
    resumed = cli_json(spare_server.env, *args)  # starts the server again after a Neo4j kill
    assert resumed["status"] == "completed" and resumed["batches_resumed"] >= 3
    assert resumed["stale_runs_marked"] == [resumed["run_id"]]  # the killed run's lock was free
    with spare_server.connect() as conn:
        after_kill = canonical(conn)
        wipe(conn)
        apply_schema(conn)
    clean = cli_json(spare_server.env, *args)
    assert clean["batches_resumed"] == 0
    with spare_server.connect() as conn:
        assert canonical(conn) == after_kill
    assert (resumed["relationships_written"], resumed["rows_loaded"]) == (
        clean["relationships_written"], clean["rows_loaded"])  # fmt: skip


@pytest.mark.neo4j
def test_only_runs_whose_process_is_gone_are_marked_stale(
    graph: Connection, tmp_path: Path
) -> None:
    held, free, gone = tmp_path / "held.lock", tmp_path / "free.lock", tmp_path / "gone.lock"
    free.touch()
    with open(held, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # as a live ingest holds its run's lock
        graph.query("UNWIND $runs AS r CREATE (:IngestRun {id: r[0], status: 'running', lock_file: r[1]})",
                    {"runs": [["live", str(held)], ["killed", str(free)], ["elsewhere", str(gone)]]},
                    write=True)  # fmt: skip
        assert mark_stale_runs(graph) == ["killed"]
        assert mark_stale_runs(graph) == []
    statuses = {
        r["id"]: r["s"] for r in graph.query("MATCH (r:IngestRun) RETURN r.id AS id, r.status AS s")
    }
    assert statuses == {"live": "running", "killed": "interrupted", "elsewhere": "running"}
