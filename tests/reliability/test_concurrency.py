"""Concurrency: what users run at the same time ends as if run one after the other, and no
transient error (a deadlock, a lock wait, a server still starting) reaches them."""

from __future__ import annotations

import gzip
import itertools
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from kgctl import queries
from kgctl.graph import writeback
from kgctl.graph.connection import Connection
from kgctl.graph.export import View, export_view
from kgctl.graph.schema import apply_schema
from kgctl.models import runs
from kgctl.testing.fixtures import (
    TestServer,
    cal_config,
    canonical_dump,
    cli_json,
    planted_gene_graph,
    run_cli,
    wipe,
)


def comparable(dump: tuple[list[str], list[str]]) -> tuple[list[str], list[str]]:
    """A node both sources wrote keeps the provenance of whichever created it (and lists its
    sources in the order they came): neither is an error of running at once, so both are set
    aside for such nodes; everything else must be equal."""
    nodes = []
    for line in dump[0]:
        row = json.loads(line)
        if len(row["p"].get("sources", [])) > 1:
            row["p"]["sources"] = sorted(row["p"]["sources"])
            for key in ("source", "source_version", "run", "licence"):
                row["p"].pop(key, None)
        nodes.append(json.dumps(row, sort_keys=True))
    return sorted(nodes), dump[1]


def head(path: Path, lines: int, out: Path) -> Path:
    """The first `lines` lines of a gzipped file (a real file's head keeps the test short)."""
    with gzip.open(path, "rt") as source, gzip.open(out, "wt") as target:
        target.writelines(itertools.islice(source, lines))
    return out


def ingest_args(data: Path, folder: Path) -> list[list[str]]:
    """STRING (the first 100,000 links of the real subset) and the Repurposing Hub: both write
    Gene nodes."""
    string = data / "string"
    links = head(string / "9606.protein.links.full.v12.0.subset.txt.gz", 100_001, folder / "links.txt.gz")
    rejects = str(folder / "rejects")
    return [
        [
            "ingest",
            "string",
            str(string / "9606.protein.info.v12.0.subset.txt.gz"),
            str(links),
            "--rejects-dir",
            rejects,
        ],
        [
            "ingest",
            "molecules",
            str(data / "molecules" / "repurposing_info.tsv.gz"),
            "--source-version",
            "2020-03-24",
            "--rejects-dir",
            rejects,
        ],
    ]


@pytest.mark.slow
def test_two_ingests_with_queries_running_end_as_one_after_the_other(
    graph: Connection, neo4j_server: TestServer, shared_data: Path, tmp_path: Path
) -> None:
    """STRING and the Repurposing Hub (both write Gene nodes) at once, while named queries read
    and a view is exported again and again: the graph equals the two run in turn, property for
    property, and no reader sees an error."""
    env = neo4j_server.env
    commands = ingest_args(shared_data, tmp_path)
    running = [
        subprocess.Popen(
            [sys.executable, "-m", "kgctl.cli", *args, "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in commands
    ]
    answered: list[int] = []
    exported: list[int] = []
    errors: list[str] = []

    def read() -> None:
        with neo4j_server.connect() as conn:
            while any(p.poll() is None for p in running):
                try:
                    _, rows = queries.rows(conn, "graph-stats", {})
                    answered.append(len(rows))
                    view = export_view(conn, "gene-association", tmp_path / f"view{len(exported)}", use_cache=False)
                    assert isinstance(view, View)
                    exported.append(len(view.node_ids))
                except Exception as exc:  # anything a user would see
                    errors.append(repr(exc))

    reader = threading.Thread(target=read)
    reader.start()
    outputs = [p.communicate(timeout=900) for p in running]
    reader.join(timeout=900)
    for (out, err), proc in zip(outputs, running, strict=True):
        assert proc.returncode == 0, err
        assert json.loads(out)["status"] == "completed"
    assert errors == [] and answered and exported
    together = comparable(canonical_dump(graph))
    wipe(graph)
    apply_schema(graph)
    for args in commands:
        cli_json(env, *args)
    assert comparable(canonical_dump(graph)) == together


def test_two_starts_at_once_both_succeed(spare_server: TestServer) -> None:
    """Two `kgctl db start` together: one starts the server, the other waits for it (or finds it
    running); both exit 0 and one server runs."""
    starts = [
        subprocess.Popen(
            [sys.executable, "-m", "kgctl.cli", "db", "start", "--json"],
            env=spare_server.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for proc in starts:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    pids = {r["pid"] for r in results}
    assert len(pids) == 1 and spare_server.server.pid() in pids
    stats = run_cli(spare_server.env, "query", "graph-stats", "--json")
    assert stats.returncode == 0, stats.stderr


@pytest.mark.slow
@pytest.mark.model("cal")
def test_write_backs_while_queries_read_the_predictions(
    graph: Connection, neo4j_server: TestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's predictions written back three times (each replaces the last, in many small
    transactions) while `run-summary` and `novel-candidates` read them: no reader sees an error
    or more edges than the run has, and the edges end exact."""
    env = neo4j_server.env
    config = cal_config(tmp_path / "cal.toml", planted_gene_graph(graph, tmp_path)["dataset"], 2)
    run_id = cli_json(env, "train", "cal", "--config", str(config), "--device", "cpu")["id"]
    data_dir = neo4j_server.settings.paths.data_dir
    first = runs.predict(graph, data_dir, run_id, {}, device="cpu", write_back=True, allow_split=True)
    total = first["written"]["relationships"]["count"]
    gene = graph.query(
        "MATCH (g:Gene)-[p:PREDICTED_ASSOCIATION {run: $id}]->() "
        "RETURN g.id AS g, count(p) AS n ORDER BY n DESC, g LIMIT 1",
        {"id": run_id},
    )[0]["g"]
    monkeypatch.setattr(writeback, "WRITE_BATCH", 50)
    writing = threading.Event()
    seen: list[int] = []
    errors: list[str] = []

    def read() -> None:
        with neo4j_server.connect() as conn:
            while writing.is_set():
                try:
                    _, summary = queries.rows(conn, "run-summary", {"run": run_id})
                    seen.append(summary[0]["edges"])
                    queries.rows(conn, "novel-candidates", {"gene": gene, "run": run_id})
                except Exception as exc:  # anything a user would see
                    errors.append(repr(exc))

    writing.set()
    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(3):
            done = runs.predict(graph, data_dir, run_id, {}, device="cpu", write_back=True, allow_split=True)
            assert done["written"]["relationships"]["count"] == total
    finally:
        writing.clear()
        reader.join(timeout=300)
    assert errors == [] and len(seen) > 3 and max(seen) <= total
    found = graph.query(
        "MATCH (a)-[p:PREDICTED_ASSOCIATION {run: $id}]->(b) "
        "RETURN count(p) AS n, count(DISTINCT [a.id, b.id]) AS pairs",
        {"id": run_id},
    )
    assert found == [{"n": total, "pairs": total}]
    assert runs.load_run(data_dir, run_id).record["written"]["status"] == "complete"
