"""CAL against a real Neo4j: `kgctl train cal` with two processes, stop and resume, evaluation,
write-back and queries, and `kgctl runs delete` removing exactly what a run wrote (the demo end
to end is in test_demo.py)."""

import json
from pathlib import Path

import numpy as np
import pytest

from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection
from kgctl.graph.derive import build_coessentiality
from kgctl.models import runs
from kgctl.models.association.data import collect_inputs, embed, make_split
from kgctl.models.cal.config import CALConfig
from kgctl.models.cal.task import CALTask, cal_task
from kgctl.models.trainer import fit
from kgctl.testing.fixtures import (
    TestServer,
    cal_config,
    cli_json,
    graph_counts,
    ingest_files,
    planted_gene_graph,
    run_cli,
)

pytestmark = pytest.mark.model("cal")


@pytest.fixture
def planted_graph(graph: Connection, tmp_path: Path) -> str:
    """The demo's data ingested; returns the Perturb-seq Dataset id."""
    return str(planted_gene_graph(graph, tmp_path)["dataset"])


@pytest.mark.slow
def test_train_two_processes_resume_predict_and_delete(
    planted_graph: str, graph: Connection, neo4j_server: TestServer, tmp_path: Path
) -> None:
    env = neo4j_server.env
    config = cal_config(tmp_path / "cal.toml", planted_graph, epochs=4, batch_size=64)
    two = cli_json(env, "train", "cal", "--config", str(config), "--nproc", "2", "--device", "cpu")
    training = two["metrics"]["training"]
    assert two["status"] == "trained" and training["nproc"] == 2 and training["backend"] == "gloo"
    assert training["epochs_done"] == 4 and two["data"]["split"]["unseen_genes"] > 0
    # Stop after 2 epochs, resume: the same weights as one uninterrupted run.
    whole = cli_json(env, "train", "cal", "--config", str(config), "--device", "cpu")
    part = cli_json(env, "train", "cal", "--config", str(config), "--device", "cpu", "--stop-after", "2")
    assert part["status"] == "interrupted"
    resumed = cli_json(env, "train", "cal", "--resume", part["id"], "--device", "cpu")
    assert resumed["status"] == "trained" and resumed["metrics"]["training"]["resumed_from_epoch"] == 2
    assert resumed["metrics"]["training"]["final_loss"] == whole["metrics"]["training"]["final_loss"]
    assert resumed["data"]["embedding_sha256"] == whole["data"]["embedding_sha256"]
    status = graph.query("MATCH (m:ModelRun) RETURN m.id AS id, m.status AS s")
    assert {r["id"]: r["s"] for r in status}[part["id"]] == "trained"

    evaluation = cli_json(env, "evaluate", whole["id"], "--seeds", "1,2", "--splits", "node", "--thresholds", "400,700")
    sweep = evaluation["threshold_sweep"]
    assert sweep["positives"]["400"] > sweep["positives"]["700"] == whole["data"]["positive_pairs"]
    tests = {r["test"] for r in sweep["per_seed"].values()}
    assert tests == {round(0.2 * sweep["positives"]["700"])}
    assert set(sweep["summary"]) == {"400", "700"}
    recorded = graph.query("MATCH (m:ModelRun {id: $id}) RETURN m.metrics AS m", {"id": whole["id"]})
    assert set(json.loads(recorded[0]["m"])["evaluation"]["threshold_sweep"]) == {"400", "700"}
    summary = evaluation["held_out"]["node"]["summary"]
    assert set(summary) == {
        "cal",
        "graphsage",
        "cosine",
        "degree",
        "degree_cosine",
        "degree_logistic",
        "degree_product",
        "bilinear",
        "walk_embedding",
    }
    assert set(summary["cal"]) >= {"random", "degree_matched", "both_unseen"}
    assert summary["degree"]["both_unseen"]["auc"]["mean"] == 0.5  # no unseen gene has a degree
    assert sweep["validation_pairs_excluded"] > 0  # the pairs the swept settings were chosen on
    chosen = evaluation["held_out"]["node"]["per_seed"]["1"]["selection"]
    assert chosen["cal"]["epoch"] >= 1 and chosen["graphsage"]["metric"] == "validation_auc"
    assert summary["cal"]["random"]["auc"]["n"] == 2 and summary["cal"]["random"]["auc"]["sd"] is not None
    assert evaluation["reference"]["cal"]["auc"] > 0.5 and len(evaluation["plots"]) == 3

    # An option of another model (here a third-party one's) is refused, never ignored.
    plugin = {**env, "PYTHONPATH": str(Path(__file__).parent / "plugin")}
    proc = run_cli(plugin, "predict", whole["id"], "--min-score", "0.5")
    assert proc.returncode != 0
    assert "--min-score does not apply: predict of a cal run takes --top-k" in proc.stderr
    proc = run_cli(env, "predict", whole["id"], "--write-back")
    assert proc.returncode != 0 and "trained on the node split" in proc.stderr
    assert f"kgctl train cal --from-run {whole['id']} --split none" in proc.stderr
    split_ok = ("--write-back", "--allow-split", "--device", "cpu")
    first = cli_json(env, "predict", whole["id"], "--top-k", "5", *split_ok)
    again = cli_json(env, "predict", whole["id"], "--top-k", "5", *split_ok)
    cli_json(env, "predict", two["id"], "--top-k", "3", *split_ok)
    assert first["written"]["relationships"]["count"] == again["written"]["relationships"]["count"] == 220 * 5
    counts = {
        r["run"]: r["n"]
        for r in graph.query("MATCH ()-[p:PREDICTED_ASSOCIATION]->() RETURN p.run AS run, count(p) AS n")
    }
    assert counts == {whole["id"]: 220 * 5, two["id"]: 220 * 3}  # re-running replaced, not added
    rows = cli_json(env, "query", "cross-boundary", "--param", "bound=0.3", "--param", f"run={two['id']}")["rows"]
    assert rows and all(abs(r["expression_cosine"]) < 0.3 and r["run"] == two["id"] for r in rows)

    refused = run_cli(env, "runs", "delete", whole["id"])  # no terminal to ask, no --yes
    assert refused.returncode == 1 and "needs --yes" in refused.stderr
    cli_json(env, "runs", "delete", whole["id"], "--yes")
    counts = {
        r["run"]: r["n"]
        for r in graph.query("MATCH ()-[p:PREDICTED_ASSOCIATION]->() RETURN p.run AS run, count(p) AS n")
    }
    assert counts == {two["id"]: 220 * 3}
    owners = graph.query(
        "MATCH (g:Gene) WHERE g.embedding_cal IS NOT NULL RETURN collect(DISTINCT g.embedding_cal_run) AS runs"
    )[0]["runs"]
    assert owners == [two["id"]]  # the later write-back owns the embeddings; untouched
    listed = [r["id"] for r in cli_json(env, "runs", "list")["runs"]]
    assert whole["id"] not in listed and two["id"] in listed


@pytest.mark.slow
def test_clear_errors(planted_graph: str, neo4j_server: TestServer) -> None:
    proc = run_cli(neo4j_server.env, "evaluate", "cal-nope")
    assert proc.returncode != 0 and "'cal-nope' is not a run id" in proc.stderr
    missing = "cal-20260101-000000-abcdef"
    proc = run_cli(neo4j_server.env, "evaluate", missing)
    assert proc.returncode != 0 and f"no run {missing!r}" in proc.stderr
    proc = run_cli(neo4j_server.env, "train", "cal", "--dataset", "nope@1")
    assert proc.returncode != 0 and "nope@1" in proc.stderr
    # --resume continues a run with its own config: config options are refused, not ignored.
    proc = run_cli(neo4j_server.env, "train", "cal", "--resume", missing, "--epochs", "5", "--pca-dim", "8")
    assert proc.returncode != 0
    assert "--epochs, --pca-dim do not apply: --resume continues run" in proc.stderr
    proc = run_cli(neo4j_server.env, "train", "cal", "--dataset", planted_graph, "--transform", "sideways")
    assert proc.returncode == 2 and "'sideways' is not one of 'both', 'half'" in proc.stderr


@pytest.mark.slow
@pytest.mark.model("graphsage")
def test_a_plugin_model_is_evaluated_by_the_family_evaluator(planted_graph: str, neo4j_server: TestServer) -> None:
    """The plug-in in tests/plugin writes no evaluation code: `kgctl evaluate` runs the family's
    `pairs` evaluator on its run, with CAL, GraphSAGE and every pair baseline beside it (trained
    for the plug-in run's epochs), and refuses an evaluator or option that does not apply."""
    env = {**neo4j_server.env, "PYTHONPATH": str(Path(__file__).parent / "plugin")}
    train = ("--dataset", planted_graph, "--epochs", "4", "--split", "node", "--pca-dim", "16", "--device", "cpu")
    run = cli_json(env, "train", "linear_map", *train)
    result = cli_json(env, "evaluate", run["id"], "--seeds", "1", "--splits", "node", "--device", "cpu")
    assert result["evaluator"] == "pairs" and result["reference"] is None
    summary = result["held_out"]["node"]["summary"]
    assert set(summary) == {
        "linear_map",
        "cal",
        "graphsage",
        "cosine",
        "degree",
        "degree_cosine",
        "degree_logistic",
        "degree_product",
        "walk_embedding",
        "bilinear",
    }
    assert summary["linear_map"]["random"]["auc"]["mean"] > 0.5
    chosen = result["held_out"]["node"]["per_seed"]["1"]["selection"]
    assert 1 <= chosen["cal"]["epoch"] <= 4 and 1 <= chosen["graphsage"]["epoch"] <= 4
    proc = run_cli(env, "evaluate", run["id"], "--evaluator", "retrieval")
    assert proc.returncode != 0 and "linear_map runs are evaluated by pairs, evidence, not 'retrieval'" in proc.stderr
    proc = run_cli(env, "evaluate", run["id"], "--rf-trees", "3")
    assert proc.returncode != 0
    assert "--rf-trees does not apply: evaluator pairs takes --seeds, --splits, --thresholds" in proc.stderr


def test_channel_filter_selects_exactly_the_channel_pairs(
    planted_graph: str, graph: Connection, tmp_path: Path
) -> None:
    config = CALConfig(dataset=planted_graph, channel="experiments", min_channel=700)
    inputs = collect_inputs(graph, config, tmp_path / "view")
    expected = graph.query(
        "MATCH (a:Gene)-[r:INTERACTS_WITH]-(b:Gene) WHERE r.experiments >= 700 AND a.id < b.id "
        "AND (a)-[:PERTURBS]->() AND (b)-[:PERTURBS]->() RETURN a.id AS a, b.id AS b"
    )
    got = {tuple(sorted((inputs.genes[i], inputs.genes[j]))) for i, j in inputs.positives}
    assert got == {(r["a"], r["b"]) for r in expected} and inputs.meta["rule"] == "experiments >= 700"
    everything = graph.query(
        "MATCH (a:Gene)-[r:INTERACTS_WITH]->(b:Gene) WHERE (a)-[:PERTURBS]->() "
        "AND (b)-[:PERTURBS]->() RETURN count(r) AS n"
    )[0]["n"]
    assert len(inputs.known) == everything > len(inputs.positives)


def test_co_essential_positives_on_real_depmap(graph: Connection, shared_data: Path, tmp_path: Path) -> None:
    ingest_files(graph, "depmap", [shared_data / "depmap" / "CRISPRGeneEffect.subset.csv.gz"], tmp_path)
    dataset = graph.query("MATCH (d:Dataset) WHERE d.kind = 'gene-effect' RETURN d.id AS id")[0]["id"]
    build_coessentiality(graph, dataset=dataset, method="pearson", threshold=0.5)
    config = CALConfig(
        dataset=dataset,
        relationship="CO_ESSENTIAL",
        pca_dim=16,
        hidden_dim=64,
        epochs=2,
        batch_size=128,
        loss="random-negatives",
        transform="both",
        negatives=64,
    )
    inputs = collect_inputs(graph, config, tmp_path / "view")
    kept = set(inputs.genes.tolist())
    edges = graph.query("MATCH (a:Gene)-[r:CO_ESSENTIAL]->(b:Gene) RETURN a.id AS a, b.id AS b, r.score AS s")
    inside = [e for e in edges if e["a"] in kept and e["b"] in kept]
    assert len(inputs.positives) == len(inside) > 100 and all(e["s"] >= 0.5 for e in edges)
    assert inputs.meta["rule"] == "any score" and 800 < inputs.n <= 887
    split = make_split(inputs, config, "edge", 0)
    emb, info = embed(inputs.features, split.fit, config.pca_dim)
    result = fit(CALTask(config, emb, split.train), tmp_path / "run", device="cpu").result
    assert result["complete"] and info["dim"] == 16


def test_a_run_of_an_earlier_kgctl_is_deleted_and_refused_clearly(graph: Connection, tmp_path: Path) -> None:
    """A CAL run folder from before the model platform (no `format`, `written_back`), with its
    edges and embeddings as schema version 3 migrated them."""
    run_id = "cal-20261121-074544-abcdef"
    folder = tmp_path / "runs" / run_id
    folder.mkdir(parents=True)
    record = {
        "id": run_id,
        "model": "cal",
        "status": "trained",
        "created_at": "2026-11-21T07:45:44+00:00",
        "code_version": "0.1.0+a942536",
        "config": {"dataset": "d"},
        "metrics": {},
        "written_back": {"relationships": 1, "embeddings": 2},
    }
    (folder / "run.json").write_text(json.dumps(record))
    graph.query(
        "CREATE (a:Gene {id: 'A', embedding_cal: [1.0, 0.0], embedding_cal_run: $id}), "
        "(b:Gene {id: 'B', embedding_cal: [0.0, 1.0], embedding_cal_run: $id}), "
        "(a)-[:PREDICTED_ASSOCIATION {score: 0.9, run: $id}]->(b), (:ModelRun {id: $id})",
        {"id": run_id},
        write=True,
    )
    with pytest.raises(KgctlError, match="before the model platform: train it again"):
        runs.evaluate(graph, tmp_path, run_id, {})
    removed = runs.delete(graph, tmp_path, run_id)
    assert (removed["relationships"], removed["embeddings"], removed["model_run_nodes"]) == (
        1,
        2,
        1,
    )
    assert graph_counts(graph) == {"Gene": 2, "SchemaVersion": 1} and not folder.exists()
    assert not graph.query("MATCH (g:Gene) WHERE g.embedding_cal IS NOT NULL RETURN g")


@pytest.mark.slow
def test_settings_chosen_on_validation_then_a_final_model_on_all_pairs(
    planted_graph: str, graph: Connection, neo4j_server: TestServer, tmp_path: Path
) -> None:
    env = neo4j_server.env
    small = (
        "--dataset",
        planted_graph,
        "--pca-dim",
        "16",
        "--hidden-dim",
        "64",
        "--epochs",
        "30",
        "--batch-size",
        "64",
        "--device",
        "cpu",
    )
    search = ("--search", "transform=half,both;pca_dim=8,16")
    chosen = cli_json(env, "train", "cal", *small, "--split", "node", *search)
    selection = chosen["selection"]
    assert len(selection["candidates"]) == 4 and 1 <= selection["epoch"] <= 30
    best = max(selection["candidates"], key=lambda c: c["validation"])
    config = chosen["config"]
    assert selection["settings"] == best["settings"] == {"transform": config["transform"], "pca_dim": config["pca_dim"]}
    assert chosen["data"]["embedding_dim"] == config["pca_dim"]
    # Evaluation re-chooses per split and seed; each model scores over its own chosen PCA width.
    evaluation = cli_json(env, "evaluate", chosen["id"], "--seeds", "3", "--splits", "node", "--device", "cpu")
    picked = evaluation["held_out"]["node"]["per_seed"]["3"]["selection"]["cal"]["settings"]
    assert set(picked) == {"transform", "pca_dim"} and evaluation["held_out"]["node"]["summary"]["cal"]["random"]
    history = json.loads((Path(chosen["dir"]) / "history.json").read_text())["epochs"]
    assert max(e["validation_auc"] for e in history) == pytest.approx(selection["value"], abs=1e-6)
    # --split none has no validation pairs: a search there is refused, --from-run is the way.
    proc = run_cli(env, "train", "cal", *small, "--split", "none")
    assert proc.returncode != 0 and "--from-run RUN" in proc.stderr
    final = cli_json(env, "train", "cal", "--from-run", chosen["id"], "--split", "none", "--device", "cpu")
    assert final["config"]["transform"] == chosen["config"]["transform"]
    assert final["metrics"]["training"]["epochs_done"] == selection["epoch"] and final["config"]["search"] == ""
    assert final["data"]["split"]["train"] == final["data"]["positive_pairs"]
    written = cli_json(env, "predict", final["id"], "--write-back", "--top-k", "5", "--device", "cpu")
    rows = graph.query(
        "MATCH ()-[p:PREDICTED_ASSOCIATION {run: $id}]->() RETURN count(p) AS n, "
        "count(p.raw_score) AS raw, min(p.rank) AS lo",
        {"id": final["id"]},
    )[0]
    assert rows["n"] == rows["raw"] == written["written"]["relationships"]["count"] == 220 * 5
    assert written["prediction"]["hubness"] == "zscore" and written["prediction"]["most_listed"]["max_lists"] >= 1
    # The evidence check: the generator's own module truth as a gene-set file, against cosine
    # and random unknown pairs.
    from kgctl.testing.generators import planted_modules

    truth = planted_modules(tmp_path / "truth", n_genes=300, n_perturbed=220, n_modules=12, seed=1)
    gmt = tmp_path / "modules.gmt"
    gmt.write_text(
        "".join(
            f"M{m}\tplanted\t"
            + "\t".join(g for g, k in zip(truth.genes, truth.module.tolist(), strict=True) if k == m)
            + "\n"
            for m in range(12)
        )
    )
    check = cli_json(env, "evaluate", final["id"], "--evaluator", "evidence", "--files", str(gmt), "--top", "200")
    shares = check["all"]
    assert set(shares) == {"cal", "cosine", "random"} and shares["cal"] > shares["random"]
    assert check["enrichment_over_random"]["cal"] > 1
    assert (Path(final["dir"]) / "evidence.json").exists()
    recorded = cli_json(env, "runs", "show", final["id"])
    assert recorded["metrics"]["evidence"]["all"] == shares


def test_default_cal_no_longer_memorises_the_real_data(graph: Connection, shared_data: Path, tmp_path: Path) -> None:
    """STRING ≥ 700 × DepMap gene effect (shared data): the default (half transform, known
    partners masked, validation-selected epoch) never reaches in-batch accuracy 1 while its
    validation AUC rises; both sides through f without a validation stop memorises, and warns."""
    string = shared_data / "string"
    ingest_files(
        graph,
        "string",
        [string / "9606.protein.info.v12.0.subset.txt.gz", string / "9606.protein.links.full.v12.0.subset.txt.gz"],
        tmp_path,
    )
    ingest_files(graph, "depmap", [shared_data / "depmap" / "CRISPRGeneEffect.subset.csv.gz"], tmp_path)
    dataset = graph.query("MATCH (d:Dataset) WHERE d.kind = 'gene-effect' RETURN d.id AS id")[0]["id"]
    config = CALConfig(dataset=dataset, split="node", epochs=40, patience=0, search="")
    inputs = collect_inputs(graph, config, tmp_path / "view")
    assert inputs.n == 829 and len(inputs.positives) == 1511
    default = fit(cal_task(inputs, config), None, device="cpu").result
    history = default["history"]
    assert max(e["accuracy"] for e in history) < 0.9 and not default["warnings"]
    assert default["selection"]["value"] > history[0]["validation_auc"] + 0.02
    memorising = config.replace(transform="both", epochs=100)
    both = fit(cal_task(inputs, memorising), None, device="cpu").result
    assert both["history"][-1]["accuracy"] >= 0.99 and "memorising" in both["warnings"][0]


def test_gene_features_from_every_modality_the_graph_holds(
    graph: Connection, shared_data: Path, tmp_path: Path
) -> None:
    """Real DepMap gene effect and expression and the real L1000 plate (probes matched to genes by
    symbol) in one graph: CAL's inputs combine all three as blocks over the gene-effect genes."""
    from kgctl.graph.export import gene_features
    from kgctl.ingest.l1000 import read_gct

    depmap, l1000 = shared_data / "depmap", shared_data / "l1000"
    files = [
        depmap / "CRISPRGeneEffect.subset.csv.gz",
        depmap / "OmicsExpressionProteinCodingGenesTPMLogp1.subset.csv.gz",
    ]
    ingest_files(graph, "depmap", files, tmp_path)
    ingest_files(graph, "l1000", [l1000 / "test_l1000_level4.gct.gz", l1000 / "compounds.tsv.gz"], tmp_path)
    kinds = {r["kind"]: r["id"] for r in graph.query("MATCH (d:Dataset) RETURN d.kind AS kind, d.id AS id")}
    matrix, probes, _, rows = read_gct(l1000 / "test_l1000_level4.gct.gz")
    genes = [r["id"] for r in graph.query("MATCH (g:Gene) RETURN g.id AS id ORDER BY id")]
    probe = next(i for i, s in enumerate(rows["pr_gene_symbol"]) if s in genes)  # a landmark gene DepMap has
    symbol = rows["pr_gene_symbol"][probe]
    x, meta = gene_features(graph, kinds["L1000"], genes)
    assert meta["feature_source"] == "expression matrix column (probes by gene symbol)"
    assert x.shape[1] == 377 - 48  # the profiles in the graph (48 name compounds without a structure)
    assert {genes[i] for i in np.flatnonzero(~np.isnan(x).all(axis=1))} == set(rows["pr_gene_symbol"]) & set(genes)
    profile = x[genes.index(symbol)]  # the gene's probe across the plate's profiles, in profile order
    assert rows["pr_gene_symbol"].count(symbol) == 1 and len(probes) == 978
    assert np.isin(profile, matrix[:, probe].astype(np.float32)).all()
    build_coessentiality(graph, dataset=kinds["gene-effect"], method="pearson", threshold=0.5)
    config = CALConfig(
        dataset=",".join([kinds["gene-effect"], kinds["expression"], kinds["L1000"]]), relationship="CO_ESSENTIAL"
    )
    inputs = collect_inputs(graph, config, tmp_path / "view")
    blocks = {b["dataset"]: b for b in inputs.meta["feature_blocks"]}
    assert blocks[kinds["gene-effect"]]["genes_covered"] == inputs.n and 800 < inputs.n <= 887
    assert 100 <= blocks[kinds["expression"]]["genes_covered"] <= 105  # DepMap's expression sample: 106 genes
    assert 60 <= blocks[kinds["L1000"]]["genes_covered"] <= 72  # landmark genes among the gene-effect ones
    assert inputs.features.shape[1] == 58 + 55 + 329
    alone = collect_inputs(graph, config.replace(dataset=kinds["gene-effect"]), tmp_path / "view-1")
    assert np.array_equal(alone.genes, inputs.genes) and np.array_equal(alone.positives, inputs.positives)
