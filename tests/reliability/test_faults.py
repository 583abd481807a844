"""Faults: an ingest whose kgctl process, or whose Neo4j server, is killed with SIGKILL part-way
and that is then run again ends with exactly the graph of one clean run (every node,
relationship and property but the creation time), compared by a canonical dump."""

from __future__ import annotations

import fcntl
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kgctl.graph.connection import Connection, start_managed
from kgctl.graph.schema import apply_schema
from kgctl.ingest.pipeline import mark_stale_runs
from kgctl.testing import generators
from kgctl.testing.fixtures import (
    TestServer,
    cal_config,
    canonical_dump,
    cli_json,
    graph_counts,
    ingest_files,
    kill_during_ingest,
    planted_gene_graph,
    run_cli,
    wipe,
)


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["kgctl", "neo4j"])
def test_a_killed_ingest_resumes_to_the_clean_runs_graph(spare_server: TestServer, tmp_path: Path, victim: str) -> None:
    info, links = generators.string_files(tmp_path / "string", n_proteins=3000, n_lines=60_000, seed=3)
    args = [
        "ingest",
        "string",
        str(info),
        str(links),
        "--batch-size",
        "3000",
        "--rejects-dir",
        str(tmp_path / "rejects"),
    ]
    start_managed(spare_server.settings)
    code = kill_during_ingest(spare_server, args, victim, at_batch=3)
    assert code == -signal.SIGKILL if victim == "kgctl" else code != 0, "it ended before the kill"
    resumed = cli_json(spare_server.env, *args)  # starts the server again after a Neo4j kill
    assert resumed["status"] == "completed" and resumed["batches_resumed"] >= 3
    assert resumed["stale_runs_marked"] == [resumed["run_id"]]  # the killed run's lock was free
    with spare_server.connect() as conn:
        after_kill = canonical_dump(conn)
        wipe(conn)
        apply_schema(conn)
    clean = cli_json(spare_server.env, *args)
    assert clean["batches_resumed"] == 0
    with spare_server.connect() as conn:
        assert canonical_dump(conn) == after_kill
    assert (resumed["relationships_written"], resumed["rows_loaded"]) == (
        clean["relationships_written"],
        clean["rows_loaded"],
    )


@pytest.mark.neo4j
def test_only_runs_whose_process_is_gone_are_marked_stale(graph: Connection, tmp_path: Path) -> None:
    held, free, gone = tmp_path / "held.lock", tmp_path / "free.lock", tmp_path / "gone.lock"
    free.touch()
    with open(held, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # as a live ingest holds its run's lock
        graph.query(
            "UNWIND $runs AS r CREATE (:IngestRun {id: r[0], status: 'running', lock_file: r[1]})",
            {"runs": [["live", str(held)], ["killed", str(free)], ["elsewhere", str(gone)]]},
            write=True,
        )
        assert mark_stale_runs(graph) == ["killed"]
        assert mark_stale_runs(graph) == []
    statuses = {r["id"]: r["s"] for r in graph.query("MATCH (r:IngestRun) RETURN r.id AS id, r.status AS s")}
    assert statuses == {"live": "running", "killed": "interrupted", "elsewhere": "running"}


@pytest.mark.slow
@pytest.mark.model("cal")
def test_training_killed_mid_epoch_resumes_to_the_uninterrupted_weights(
    graph: Connection, neo4j_server: TestServer, tmp_path: Path
) -> None:
    env = neo4j_server.env
    config = cal_config(tmp_path / "cal.toml", planted_gene_graph(graph, tmp_path)["dataset"], 60)
    whole = cli_json(env, "train", "cal", "--config", str(config), "--device", "cpu")
    folder = neo4j_server.settings.paths.data_dir / "runs"
    before = set(folder.iterdir())
    train = subprocess.Popen(
        [sys.executable, "-m", "kgctl.cli", "train", "cal", "--config", str(config), "--device", "cpu"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    while train.poll() is None and time.monotonic() < deadline:
        started = [d for d in set(folder.iterdir()) - before if (d / "checkpoint.pt").exists()]
        if started:
            time.sleep(0.2)  # into a later epoch
            train.kill()
            break
        time.sleep(0.02)
    assert train.wait(timeout=600) == -signal.SIGKILL, "training ended before the kill"
    run_id = started[0].name
    assert json.loads((started[0] / "run.json").read_text())["status"] != "trained"
    resumed = cli_json(env, "train", "cal", "--resume", run_id, "--device", "cpu")
    training = resumed["metrics"]["training"]
    assert resumed["status"] == "trained" and 1 <= training["resumed_from_epoch"] < 60
    assert training["final_loss"] == whole["metrics"]["training"]["final_loss"]
    assert resumed["data"]["embedding_sha256"] == whole["data"]["embedding_sha256"]


# Fault injection: the process kills itself with SIGKILL when the second batch of predicted
# edges is about to be sent (the first is committed), as a crash half-way through a write-back.
KILLED_WRITE_BACK = """
import os, signal, sys
from pathlib import Path
from kgctl.graph import connection, writeback
from kgctl.models import runs
from kgctl.testing.fixtures import test_server_at

writeback.WRITE_BATCH = 200
sent, query = 0, connection.Connection.query

def dying_query(self, cypher, params=None, write=False):
    global sent
    if write and "CREATE (a)-[p:" in cypher:
        sent += 1
        if sent == 2:
            os.kill(os.getpid(), signal.SIGKILL)
    return query(self, cypher, params, write=write)

connection.Connection.query = dying_query
server = test_server_at(Path(sys.argv[1]))
with server.connect() as conn:
    runs.predict(conn, server.settings.paths.data_dir, sys.argv[2], {}, device="cpu",
                 write_back=True, allow_split=True)
"""


@pytest.mark.slow
@pytest.mark.model("cal")
def test_a_write_back_killed_half_way_is_recorded_rerun_without_duplicates_and_deletable(
    graph: Connection, neo4j_server: TestServer, tmp_path: Path
) -> None:
    env = neo4j_server.env
    config = cal_config(tmp_path / "cal.toml", planted_gene_graph(graph, tmp_path)["dataset"], 3)
    run_id = cli_json(env, "train", "cal", "--config", str(config), "--device", "cpu")["id"]
    base = str(Path(env["KGCTL_CONFIG"]).parent)

    def edges() -> tuple[int, int]:
        found = graph.query(
            "MATCH (a)-[p:PREDICTED_ASSOCIATION {run: $id}]->(b) "
            "RETURN count(p) AS n, count(DISTINCT [a.id, b.id]) AS pairs",
            {"id": run_id},
        )
        return found[0]["n"], found[0]["pairs"]

    def killed_write_back() -> None:
        code = subprocess.run([sys.executable, "-c", KILLED_WRITE_BACK, base, run_id], env=env, timeout=600).returncode
        assert code == -signal.SIGKILL
        assert edges()[0] == 200  # the first batch, committed
        shown = cli_json(env, "runs", "show", run_id)
        assert shown["written"]["status"] == "writing"
        assert "write-back interrupted" in run_cli(env, "runs", "list").stdout

    killed_write_back()
    done = cli_json(env, "predict", run_id, "--write-back", "--allow-split", "--device", "cpu")
    total = done["written"]["relationships"]["count"]
    assert total > 400 and edges() == (total, total)  # every edge once
    assert cli_json(env, "runs", "show", run_id)["written"]["status"] == "complete"
    killed_write_back()  # the re-run replaced the edges: again only the first batch is there
    removed = cli_json(env, "runs", "delete", run_id, "--yes")
    assert removed["relationships"] == 200 and edges() == (0, 0)


@pytest.mark.adapter("depmap")
def test_undo_removes_what_one_run_wrote_and_nothing_else(
    graph: Connection, neo4j_server: TestServer, shared_data: Path, tmp_path: Path
) -> None:
    """A DepMap release on top of a molecules load, undone: the graph is the molecules load again
    (its genes keep their targets; the release's cell lines, genes and vectors are gone). A
    failed non-strict run's partial graph, undone, is gone too, and the same ingest then loads."""
    hub = tmp_path / "hub.tsv"
    hub.write_text("pert_iname\tsmiles\ttarget\naspirin\tCC(=O)Oc1ccccc1C(=O)O\tPTGS1|PTGS2\n")
    ingest_files(graph, "molecules", [hub], tmp_path)
    before = canonical_dump(graph)
    effect = shared_data / "depmap" / "CRISPRGeneEffect.subset.csv.gz"
    loaded = ingest_files(graph, "depmap", [effect], tmp_path, {"source_version": "24q4"})
    vectors = "MATCH (g:Gene) WHERE g.depmap_gene_effect_24q4 IS NOT NULL RETURN count(g) AS n"
    assert graph.query(vectors)[0]["n"] > 100
    env = neo4j_server.env
    refused = run_cli(env, "ingest", "undo", loaded["run_id"])  # no terminal to ask, no --yes
    assert refused.returncode != 0 and "needs --yes" in refused.stderr
    undone = cli_json(env, "ingest", "undo", loaded["run_id"], "--yes")
    assert undone["nodes"] > 0 and undone["vector_properties"]
    assert canonical_dump(graph) == before
    assert cli_json(env, "ingest", "undo", loaded["run_id"], "--yes")["already_undone"]
    # A failed non-strict run: a gene name past an index key's size ends it after some batches.
    info, links = generators.string_files(tmp_path / "string", n_proteins=400, n_lines=4000, seed=2)
    text = gzip.decompress(info.read_bytes()).decode().splitlines()
    text[-1] = "\t".join([text[-1].split("\t")[0], "G" * 3000, "", ""])
    info.write_bytes(gzip.compress(("\n".join(text) + "\n").encode()))
    args = ["ingest", "string", str(info), str(links), "--batch-size", "50", "--rejects-dir", str(tmp_path / "rejects")]
    failed = run_cli(env, *args)
    assert failed.returncode == 1 and "longer than the 2,000" in failed.stderr
    run_id = graph.query("MATCH (r:IngestRun {status: 'failed'}) RETURN r.id AS id")[0]["id"]
    assert graph_counts(graph).get("Gene", 0) > 2  # the partial graph
    cli_json(env, "ingest", "undo", run_id, "--yes")
    assert canonical_dump(graph) == before


def fill(disk: Path, leave_mib: int) -> None:
    """Fill `disk` but `leave_mib` MiB, with one file (`filler`)."""
    (disk / "filler").unlink(missing_ok=True)
    free = shutil.disk_usage(disk).free - leave_mib * 1024 * 1024
    with open(disk / "filler", "wb") as handle:
        os.posix_fallocate(handle.fileno(), 0, max(free, 1))


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs as the data disk needs root")
def test_a_start_on_a_nearly_full_disk_is_one_line_and_the_next_start_works(
    spare_server: TestServer,
) -> None:
    """A 700 MiB tmpfs as the data disk: with too little room to preallocate a transaction log
    `db start` refuses before launching; with room for one database but not both, Neo4j starts,
    a database fails and the start says so at once; freed, the next start works."""
    disk = spare_server.settings.paths.data_dir
    disk.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=700m", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        env = spare_server.env
        for leave_mib, says in ((100, "MiB free on the disk holding"), (330, "is full")):
            fill(disk, leave_mib)
            failed = run_cli(env, "db", "start")
            assert failed.returncode == 1 and "Traceback" not in failed.stderr
            assert says in failed.stderr.splitlines()[0], failed.stderr[-2000:]
            assert spare_server.server.pid() is None  # nothing left running
        (disk / "filler").unlink()
        started = cli_json(env, "db", "start")
        assert started["pid"] == spare_server.server.pid() is not None
        with spare_server.connect() as conn:
            assert conn.query("RETURN 1 AS one") == [{"one": 1}]
    finally:
        spare_server.server.stop(force=True, timeout=60)
        subprocess.run(["umount", "--lazy", str(disk)], check=False)
