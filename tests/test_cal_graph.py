"""CAL against a real Neo4j: the demo end to end (CAL beats cosine on the held-out node split),
`kgctl train cal` with two processes, stop and resume, evaluation, write-back and queries, and
`kgctl runs delete` removing exactly what a run wrote."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kgctl.generators import planted_modules
from kgctl.graph.connection import Connection
from kgctl.graph.derive import build_coessentiality
from kgctl.ingest.pipeline import ingest
from kgctl.models.cal.config import CALConfig
from kgctl.models.cal.data import collect_inputs, embed, make_split
from kgctl.models.cal.train import train
from kgctl.testing import TestServer, graph_counts


def kgctl(env: dict[str, str], *args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", "kgctl.cli", *args, "--json"], env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout))


def test_demo_end_to_end(graph: Connection, neo4j_server: TestServer) -> None:
    demo = kgctl(neo4j_server.env, "demo")
    assert demo["browser_url"] == neo4j_server.server.browser_url
    assert demo["password"] == neo4j_server.server.password()
    node, edge = demo["evaluation"]["node"], demo["evaluation"]["edge"]
    # The planted modules are hidden from expression cosine; CAL must recover them on genes it
    # never saw (seeds 42, 123, 456). Observed: 0.94 against 0.69.
    assert node["cal"]["auc"]["n"] == 3
    assert node["cal"]["auc"]["mean"] > node["cosine"]["auc"]["mean"] + 0.15
    assert (
        node["cal"]["auc_degree_matched"]["mean"]
        > node["cosine"]["auc_degree_matched"]["mean"] + 0.15
    )
    assert edge["cal"]["auc"]["mean"] > edge["cosine"]["auc"]["mean"] + 0.15
    assert node["degree_product"]["auc"]["mean"] == pytest.approx(0.5, abs=0.05)  # unseen: degree 0
    assert all(Path(p).exists() for p in demo["plots"]) and len(demo["plots"]) == 6
    assert demo["novel_candidates"] and demo["planted_truth"]["same_module"] >= 80
    partners = [r["partner"] for r in demo["novel_candidates"]]
    assert not graph.query("MATCH (g:Gene {id: $g})-[:INTERACTS_WITH]-(h:Gene) WHERE h.id IN $p "
                           "RETURN h.id", {"g": demo["gene"], "p": partners})  # fmt: skip
    run_id = demo["run_id"]
    genes = graph.query("MATCH (g:Gene) WHERE g.embedding_cal_run = $id RETURN count(g) AS n",
                        {"id": run_id})[0]["n"]  # fmt: skip
    edges = graph.query("MATCH ()-[p:PREDICTED_ASSOCIATION {run_id: $id}]->() RETURN count(p) AS n, "
                        "min(p.rank) AS lo, max(p.rank) AS hi, collect(DISTINCT p.model) AS m",
                        {"id": run_id})[0]  # fmt: skip
    assert genes == 2000 and edges["n"] == 2000 * 10
    assert (edges["lo"], edges["hi"], edges["m"]) == (1, 10, ["cal"])
    model_run = graph.query("MATCH (m:ModelRun {id: $id}) RETURN m", {"id": run_id})[0]["m"]
    assert model_run["status"] == "trained"
    assert json.loads(model_run["metrics"])["evaluation"]["node"]
    assert model_run["embedding_sha256"] and model_run["written_back_at"]
    gene = demo["gene"]
    nearest = kgctl(
        neo4j_server.env, "query", "nearest", "--param", f"gene={gene}", "--param", "k=5"
    )
    assert len(nearest["rows"]) == 5 and gene not in [r["gene"] for r in nearest["rows"]]
    before = graph_counts(graph)
    deleted = kgctl(neo4j_server.env, "runs", "delete", run_id)
    removed = (deleted["relationships"], deleted["embeddings"], deleted["model_run_nodes"])
    assert removed == (20_000, 2000, 1)
    after = graph_counts(graph)
    assert after.get("PREDICTED_ASSOCIATION", 0) == 0 and after.get("ModelRun", 0) == 0
    assert after == {
        k: v for k, v in before.items() if k not in ("PREDICTED_ASSOCIATION", "ModelRun")
    }


@pytest.fixture
def planted_graph(graph: Connection, tmp_path: Path) -> str:
    """The demo's data ingested; returns the Perturb-seq Dataset id."""
    data = planted_modules(tmp_path / "data", n_genes=300, n_perturbed=220, n_modules=12, seed=1)
    for source, files in (
        ("string", [data.string_info, data.string_links]),
        ("perturbseq", [data.perturbseq]),
    ):
        ingest(graph, source, files, {}, rejects_dir=tmp_path)
    return str(graph.query("MATCH (d:Dataset) RETURN d.id AS id")[0]["id"])


def test_train_two_processes_resume_predict_and_delete(
    planted_graph: str, graph: Connection, neo4j_server: TestServer, tmp_path: Path
) -> None:
    env = neo4j_server.env
    config = tmp_path / "cal.toml"
    config.write_text(f'[cal]\ndataset = "{planted_graph}"\npca_dim = 16\nhidden_dim = 64\n'
                      "epochs = 4\nbatch_size = 64\ncheckpoint_every = 1\nsplit = \"node\"\n")  # fmt: skip
    two = kgctl(env, "train", "cal", "--config", str(config), "--nproc", "2", "--device", "cpu")
    training = two["metrics"]["training"]
    assert two["status"] == "trained" and training["nproc"] == 2 and training["backend"] == "gloo"
    assert training["epochs_done"] == 4 and two["data"]["split"]["unseen_genes"] > 0
    # Stop after 2 epochs, resume: the same weights as one uninterrupted run.
    whole = kgctl(env, "train", "cal", "--config", str(config), "--device", "cpu")
    part = kgctl(
        env, "train", "cal", "--config", str(config), "--device", "cpu", "--stop-after", "2"
    )
    assert part["status"] == "interrupted"
    resumed = kgctl(env, "train", "cal", "--resume", part["id"], "--device", "cpu")
    assert (
        resumed["status"] == "trained" and resumed["metrics"]["training"]["resumed_from_epoch"] == 2
    )
    assert (
        resumed["metrics"]["training"]["final_loss"] == whole["metrics"]["training"]["final_loss"]
    )
    assert resumed["data"]["embedding_sha256"] == whole["data"]["embedding_sha256"]
    status = graph.query("MATCH (m:ModelRun) RETURN m.id AS id, m.status AS s")
    assert {r["id"]: r["s"] for r in status}[part["id"]] == "trained"

    evaluation = kgctl(env, "evaluate", whole["id"], "--seeds", "1,2", "--splits", "node",
                       "--thresholds", "400,700")  # fmt: skip
    sweep = evaluation["threshold_sweep"]
    assert sweep["positives"]["400"] > sweep["positives"]["700"] == whole["data"]["positive_pairs"]
    tests = {r["test"] for r in sweep["per_seed"].values()}
    assert tests == {round(0.2 * sweep["positives"]["700"])}
    assert set(sweep["summary"]) == {"400", "700"}
    recorded = graph.query(
        "MATCH (m:ModelRun {id: $id}) RETURN m.metrics AS m", {"id": whole["id"]}
    )
    assert set(json.loads(recorded[0]["m"])["evaluation"]["threshold_sweep"]) == {"400", "700"}
    summary = evaluation["held_out"]["node"]["summary"]
    assert set(summary) == {"cal", "cosine", "degree_product", "bilinear", "walk_embedding"}
    assert (
        summary["cal"]["random"]["auc"]["n"] == 2
        and summary["cal"]["random"]["auc"]["sd"] is not None
    )
    assert evaluation["reference"]["cal"]["auc"] > 0.5 and len(evaluation["plots"]) == 3

    first = kgctl(env, "predict", whole["id"], "--top-k", "5", "--write-back", "--device", "cpu")
    again = kgctl(env, "predict", whole["id"], "--top-k", "5", "--write-back", "--device", "cpu")
    kgctl(env, "predict", two["id"], "--top-k", "3", "--write-back", "--device", "cpu")
    assert (
        first["written_back"]["relationships"] == again["written_back"]["relationships"] == 220 * 5
    )
    counts = {r["run"]: r["n"] for r in graph.query(
        "MATCH ()-[p:PREDICTED_ASSOCIATION]->() RETURN p.run_id AS run, count(p) AS n")}  # fmt: skip
    assert counts == {whole["id"]: 220 * 5, two["id"]: 220 * 3}  # re-running replaced, not added
    rows = kgctl(
        env, "query", "cross-boundary", "--param", "bound=0.3", "--param", f"run={two['id']}"
    )["rows"]
    assert rows and all(abs(r["expression_cosine"]) < 0.3 and r["run"] == two["id"] for r in rows)

    kgctl(env, "runs", "delete", whole["id"])
    counts = {r["run"]: r["n"] for r in graph.query(
        "MATCH ()-[p:PREDICTED_ASSOCIATION]->() RETURN p.run_id AS run, count(p) AS n")}  # fmt: skip
    assert counts == {two["id"]: 220 * 3}
    owners = graph.query("MATCH (g:Gene) WHERE g.embedding_cal IS NOT NULL "
                         "RETURN collect(DISTINCT g.embedding_cal_run) AS runs")[0]["runs"]  # fmt: skip
    assert owners == [two["id"]]  # the later write-back owns the embeddings; untouched
    listed = [r["id"] for r in kgctl(env, "runs", "list")["runs"]]
    assert whole["id"] not in listed and two["id"] in listed


def test_clear_errors(planted_graph: str, neo4j_server: TestServer) -> None:
    proc = subprocess.run([sys.executable, "-m", "kgctl.cli", "evaluate", "cal-nope"], env=neo4j_server.env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode != 0 and "no run 'cal-nope'" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "kgctl.cli", "train", "cal", "--dataset", "nope@1"],
                          env=neo4j_server.env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode != 0 and "nope@1" in proc.stderr


def test_channel_filter_selects_exactly_the_channel_pairs(
    planted_graph: str, graph: Connection, tmp_path: Path
) -> None:
    config = CALConfig(dataset=planted_graph, channel="experiments", min_channel=700)
    inputs = collect_inputs(graph, config, tmp_path / "view")
    expected = graph.query(
        "MATCH (a:Gene)-[r:INTERACTS_WITH]-(b:Gene) WHERE r.experiments >= 700 AND a.id < b.id "
        "AND (a)-[:PERTURBS]->() AND (b)-[:PERTURBS]->() RETURN a.id AS a, b.id AS b")  # fmt: skip
    got = {tuple(sorted((inputs.genes[i], inputs.genes[j]))) for i, j in inputs.positives}
    assert (
        got == {(r["a"], r["b"]) for r in expected} and inputs.meta["rule"] == "experiments >= 700"
    )
    everything = graph.query("MATCH (a:Gene)-[r:INTERACTS_WITH]->(b:Gene) WHERE (a)-[:PERTURBS]->() "
                             "AND (b)-[:PERTURBS]->() RETURN count(r) AS n")[0]["n"]  # fmt: skip
    assert len(inputs.known) == everything > len(inputs.positives)


def test_co_essential_positives_on_real_depmap(
    graph: Connection, shared_data: Path, tmp_path: Path
) -> None:
    ingest(graph, "depmap", [shared_data / "depmap" / "CRISPRGeneEffect.subset.csv.gz"], {},
           rejects_dir=tmp_path)  # fmt: skip
    dataset = graph.query("MATCH (d:Dataset) WHERE d.kind = 'gene-effect' RETURN d.id AS id")[0][
        "id"
    ]
    build_coessentiality(graph, dataset=dataset, method="pearson", threshold=0.5)
    config = CALConfig(dataset=dataset, relationship="CO_ESSENTIAL", pca_dim=16, hidden_dim=64,
                       epochs=2, batch_size=128, loss="random-negatives", negatives=64)  # fmt: skip
    inputs = collect_inputs(graph, config, tmp_path / "view")
    kept = set(inputs.genes.tolist())
    edges = graph.query(
        "MATCH (a:Gene)-[r:CO_ESSENTIAL]->(b:Gene) RETURN a.id AS a, b.id AS b, r.score AS s"
    )
    inside = [e for e in edges if e["a"] in kept and e["b"] in kept]
    assert len(inputs.positives) == len(inside) > 100 and all(e["s"] >= 0.5 for e in edges)
    assert inputs.meta["rule"] == "any score" and 800 < inputs.n <= 887
    split = make_split(inputs, config, "edge", 0)
    emb, info = embed(inputs.features, split.fit, config.pca_dim)
    result = train(emb, split.train, config, tmp_path / "run", device="cpu", progress=False)
    assert result["complete"] and info["dim"] == 16
