"""InfoAlign: molecular graph featurisation, walk targets with exact path weights and masks on a
hand-made graph, the soft-label loss against a direct computation, a short pretraining that
lowers the loss, the frozen encoder, the scaffold split and the metrics, the real property sets,
and (with Neo4j) a run on a small real-data graph: held-out targets, write-back and the queries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from sklearn.metrics import roc_auc_score

from kgctl import queries
from kgctl.core.errors import KgctlError
from kgctl.graph.chem import morgan_bits, murcko_scaffold, scaffold_groups
from kgctl.graph.connection import Connection
from kgctl.graph.export import HeteroView, vector_blocks
from kgctl.models import runs
from kgctl.models.infoalign import InfoAlign, InfoAlignConfig
from kgctl.models.infoalign.config import PUBLISHED
from kgctl.models.infoalign.data import context_share, from_view, min_max
from kgctl.models.infoalign.model import InfoAlignNet
from kgctl.models.infoalign.targets import walk_transfer
from kgctl.models.infoalign.task import (
    InfoAlignTask,
    embed,
    module_args,
    space_loss,
    space_weights,
    walk_targets,
)
from kgctl.models.metrics import rank_auc
from kgctl.models.probing.evaluate import ProbeOptions
from kgctl.models.probing.heads import Split, head, score
from kgctl.models.probing.labels import PREDICTORS, Labelled, PredictorBaseline
from kgctl.models.probing.molecules import SETS, RandomForest, official_scaffold_split, read_assays, scaffold_split
from kgctl.models.probing.molgraph import featurise
from kgctl.models.trainer import fit
from kgctl.testing.fixtures import context_graph

pytestmark = pytest.mark.model("infoalign")

# Small real drugs and simple variants: enough shapes and scaffolds for a pretraining test.
DRUGS = [
    "CC(=O)Oc1ccccc1C(=O)O",
    "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
    "CC(C)Cc1ccc(cc1)C(C)C(=O)O",
    "CN1CCC[C@H]1c1cccnc1",
    "OC(=O)c1ccccc1O",
    "c1ccc2ccccc2c1",
    "CCN(CC)CC",
    "CCOC(=O)C",
]
SMILES = (
    DRUGS
    + [f"{'C' * i}c1ccc(cc1){'O' if i % 2 else 'N'}" for i in range(1, 21)]
    + [f"c1ccc(cc1)C(=O)N{'C' * i}" for i in range(1, 21)]
)
# Eight ring scaffolds of five molecules each, and the drugs: room for a scaffold split.
RINGS = DRUGS + [f"{'C' * j}C1{'C' * (size - 1)}1" for size in range(3, 11) for j in range(1, 6)]


def view_of(
    smiles: list[str],
    edges: dict[tuple[str, str, str], tuple[list[int], list[int], list[float]]],
    expression: np.ndarray | None = None,
    genes: int = 0,
) -> HeteroView:
    """A context view without Neo4j: molecules (first), genes and expression profiles."""
    n_expr = 0 if expression is None else len(expression)
    return HeteroView(
        nodes={
            "Molecule": [f"M{i}" for i in range(len(smiles))],
            "Gene": [f"G{i}" for i in range(genes)],
            "ExpressionProfile": [f"E{i}" for i in range(n_expr)],
            "MorphologyProfile": [],
        },
        x={"Molecule": None, "Gene": None, "ExpressionProfile": expression, "MorphologyProfile": None},
        edges={k: (np.array(s), np.array(d), np.array(w, dtype=np.float32)) for k, (s, d, w) in edges.items()},
        meta={"fingerprint": "test", "nodes": {}, "relationships": {}, "licences": ["CC0-1.0"]},
        tables={"Molecule": pa.table({"smiles": smiles})},
    )


def test_molecular_graphs_and_gathering() -> None:
    graphs, ok = featurise(["CCO", "c1ccccc1O", "not a molecule", ""])
    assert ok.tolist() == [True, True, False, False] and len(graphs) == 2
    assert graphs.atom_ptr.tolist() == [0, 3, 10] and graphs.bond_ptr.tolist() == [0, 4, 18]
    x, edge_index, _, batch = graphs.gather(np.array([1, 0]))  # phenol first, then ethanol
    assert batch.tolist() == [0] * 7 + [1] * 3
    assert x[7, 0] == 5 and x[9, 0] == 7  # carbon (6 - 1) and oxygen (8 - 1) of ethanol
    assert edge_index[:, -4:].tolist() == [[7, 8, 8, 9], [8, 7, 9, 8]]  # shifted past phenol
    assert x[:6, 7].tolist() == [1] * 6 and x[6, 7] == 0  # aromatic ring, then the OH oxygen


def test_morphology_datasets_get_a_space_each_and_walk_reach_is_counted() -> None:
    # Two plates with different feature sets: a column block each, never mixed, one decoder each.
    x, note, names = vector_blocks([[1.0, 2.0], [3.0, 4.0, 5.0], [0.0, 1.0]], ["b@1", "a.x@2", "b@1"], "features")
    assert x is not None and x.shape == (3, 5) and names[:3] == ["a.x@2:0", "a.x@2:1", "a.x@2:2"]
    assert np.isnan(x[0, :3]).all() and x[0, 3:].tolist() == [1.0, 2.0] and np.isnan(x[1, 3:]).all()
    assert "2 datasets" in note
    assert vector_blocks([[1.0], [1.0, 2.0]], ["a", "a"], "features")[0] is None  # one dataset, two widths
    view = view_of(
        ["CCO", "CCN", "CCC"],
        {
            ("Molecule", "SIMILAR_TO", "Molecule"): ([0], [1], [0.5]),
            ("Molecule", "PERTURBS", "MorphologyProfile"): ([1, 2], [0, 1], [1.0, 1.0]),
        },
    )
    view.nodes["MorphologyProfile"] = ["P0", "P1", "P2"]
    view.x["MorphologyProfile"] = x
    view.meta["feature_names"] = {"MorphologyProfile": names}
    inputs = from_view(view, InfoAlignConfig(holdout_targets=0))
    assert sorted(inputs.features) == ["fingerprint", "morphology:a_x@2", "morphology:b@1"]
    assert inputs.features["morphology:b@1"].shape == (2, 2) and inputs.features["morphology:a_x@2"].shape == (1, 3)
    assert inputs.rows["morphology:b@1"].tolist() == [-1, -1, -1, 0, -1, 1]
    # M0 reaches a profile in two steps (via M1), M1 and M2 in one.
    short = context_share(inputs, ["M0", "M1", "M2", "NOT-IN-GRAPH"], walk_length=1)
    assert (short["in_graph"], short["reach_morphology"], short["reach_gene"]) == (3, 2, 0)
    assert context_share(inputs, ["M0", "M1", "M2"], walk_length=2)["reach_morphology"] == 3


def test_walk_transfer_reaches_genes_only_through_the_graph() -> None:
    # M0 –0.5– M1 –TARGETS– G0 (weight 1); M2 –TARGETS– G1, not linked to M0.
    view = view_of(
        ["CCO", "CCN", "CCC"],
        {
            ("Molecule", "SIMILAR_TO", "Molecule"): ([0], [1], [0.5]),
            ("Molecule", "TARGETS", "Gene"): ([1, 2], [0, 1], [1.0, 1.0]),
        },
        genes=2,
    )
    inputs = from_view(view, InfoAlignConfig(holdout_targets=0))
    genes = np.array([0, 1])
    assert walk_transfer(inputs, np.array([0]), genes, 1).tolist() == [[0.0, 0.0]]
    # Step 1: M1 for sure; step 2: G0 with M1's weight share 1 / (0.5 + 1).
    assert np.allclose(walk_transfer(inputs, np.array([0]), genes, 2), [[1 / 1.5, 0.0]])
    assert np.allclose(walk_transfer(inputs, np.array([2]), genes, 1), [[0.0, 1.0]])


def test_walk_targets_have_the_exact_path_weights_and_masks() -> None:
    # M0 –0.5– M1 (only each other), M2 alone, M3 –0.8– E0: every walk is determined
    view = view_of(
        ["CCO", "CCN", "CCC", "CCCl"],
        {
            ("Molecule", "SIMILAR_TO", "Molecule"): ([0], [1], [0.5]),
            ("Molecule", "PERTURBS", "ExpressionProfile"): ([3], [0], [0.8]),
        },
        expression=np.array([[0.2, np.nan, 1.0]], dtype=np.float32),
    )
    inputs = from_view(view, InfoAlignConfig(holdout_targets=0))
    assert inputs.labels[:3] == ["Molecule", "Gene", "ExpressionProfile"]
    assert inputs.rows["fingerprint"].tolist() == [0, 1, 2, 3, -1]
    assert inputs.rows["expression"].tolist() == [-1, -1, -1, -1, 0] and "gene" not in inputs.rows
    task = InfoAlignTask(InfoAlignConfig(holdout_targets=0), inputs)
    task.to(torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    nodes, weights = walk_targets(task._on["graph"], task._on["weight"], torch.tensor([0, 2, 3]), 4, generator)
    assert nodes.tolist() == [[0, 1, 0, 1, 0], [2, 2, 2, 2, 2], [3, 4, 3, 4, 3]]
    expected = np.array([[1, 0.5, 0.25, 0.125, 0.0625], [1, 0, 0, 0, 0], [1, 0.8, 0.64, 0.512, 0.4096]])
    assert np.allclose(weights.numpy(), expected)
    rows, w, present = space_weights(nodes, weights, task._on["rows"]["fingerprint"])
    assert present.tolist() == [[True] * 5, [True] * 5, [True, False, True, False, True]]
    assert np.allclose(w.numpy(), np.array([expected[0], expected[1], [1, 0, 0.64, 0, 0.4096]]))
    rows_e, w_e, present_e = space_weights(nodes, weights, task._on["rows"]["expression"])
    assert present_e.tolist() == [[False] * 5, [False] * 5, [False, True, False, True, False]]
    assert np.allclose(w_e.numpy(), np.array([[0.0] * 5, [0.0] * 5, [0, 0.8, 0, 0.512, 0]]))
    # the loss: a mean of w · BCE over the known (molecule, position, feature) entries
    logits = torch.randn(3, 3)
    features = torch.tensor([[0.3, float("nan"), 0.9]])
    got = space_loss(logits, features, rows_e, w_e, present_e)
    terms = [
        float(w_e[i, t]) * float(torch.nn.functional.binary_cross_entropy_with_logits(logits[i, d], features[0, d]))
        for i in range(3)
        for t in range(5)
        if present_e[i, t]
        for d in (0, 2)
    ]
    assert len(terms) == 4 and float(got) == pytest.approx(sum(terms) / 4, rel=1e-5)
    fingerprint = task._on["features"]["fingerprint"]
    assert fingerprint.shape == (4, 1024) and bool(
        (fingerprint[0] == torch.from_numpy(morgan_bits(["CCO"], 4, 1024)[0])).all()
    )


def test_min_max_scaling_keeps_missing_values() -> None:
    x = np.array([[0.0, 5.0, np.nan], [2.0, 5.0, np.nan], [1.0, np.nan, np.nan]], dtype=np.float32)
    scaled = min_max(x)
    assert scaled[:, 0].tolist() == [0.0, 1.0, 0.5] and scaled[:2, 1].tolist() == [0.0, 0.0]
    assert np.isnan(scaled[2, 1]) and np.isnan(scaled[:, 2]).all()


def test_targets_are_held_out_by_molecule() -> None:
    pairs = ([0, 0, 1, 2, 3, 4], [0, 1, 1, 2, 0, 1], [1.0] * 6)
    view = view_of(SMILES[:6], {("Molecule", "TARGETS", "Gene"): pairs}, genes=3)
    inputs = from_view(view, InfoAlignConfig(holdout_targets=0.4, seed=1))
    held, kept = inputs.targets_held, inputs.targets_kept
    assert len(np.unique(held[:, 0])) == 2 and not set(held[:, 0]) & set(kept[:, 0])
    assert len(held) + len(kept) == 6 and inputs.edge_index.shape[1] == 2 * len(kept)
    assert InfoAlign(InfoAlignConfig(holdout_targets=0.4)).left_out()
    assert InfoAlign(InfoAlignConfig(holdout_targets=0)).left_out() is None


@pytest.mark.slow
def test_a_short_pretraining_lowers_the_loss() -> None:
    n = len(SMILES)
    sim = (
        [i for i in range(n - 1) if i % 3],
        [i + 1 for i in range(n - 1) if i % 3],
        [0.9] * sum(1 for i in range(n - 1) if i % 3),
    )
    perturbs = (
        list(range(0, n, 4)),
        [i % 6 for i in range(len(range(0, n, 4)))],
        [1.0] * len(range(0, n, 4)),
    )
    expression = np.random.default_rng(0).normal(size=(6, 12)).astype(np.float32)
    view = view_of(
        SMILES,
        {("Molecule", "SIMILAR_TO", "Molecule"): sim, ("Molecule", "PERTURBS", "ExpressionProfile"): perturbs},
        expression,
    )
    config = InfoAlignConfig(hidden=32, layers=2, epochs=12, batch_size=16, lr=2e-3, holdout_targets=0)
    inputs = from_view(view, config)
    fitted = fit(InfoAlignTask(config, inputs), None, device="cpu")
    history = fitted.result["history"]
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    assert history[-1]["fingerprint"] < history[0]["fingerprint"]
    assert {"fingerprint", "expression", "kl"} <= set(history[-1])


def test_the_frozen_encoder_stays_frozen() -> None:
    torch.manual_seed(0)
    net = InfoAlignNet(hidden=16, layers=2, dropout=0.5, decoders={"fingerprint": 8})
    net.train()  # as a trained module may be handed over
    before = {k: v.clone() for k, v in net.state_dict().items()}
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=(len(RINGS), 2)).astype(float)
    labels[::5, 1] = np.nan
    n = len(RINGS)
    split = Split(np.arange(n - 6), np.arange(n - 6, n - 3), np.arange(n - 3, n))
    x = embed(net, featurise(RINGS)[0], "cpu")
    predicted = head("mlp").fit_predict(x, labels, split, np.arange(n), "auc", 0)
    data = Labelled("rings", RINGS, labels, np.arange(n), "auc")
    forest = RandomForest().fit_predict(data, split, 0, ProbeOptions(rf_trees=5))
    after = net.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert not net.training and predicted.shape == forest.shape == (3, 2)
    assert ((predicted >= 0) & (predicted <= 1)).all()  # probabilities of the AUC tasks
    first = embed(net, featurise(SMILES)[0], "cpu")
    assert np.array_equal(first, embed(net, featurise(SMILES)[0], "cpu"))  # eval: deterministic


def test_scaffold_split_and_metrics() -> None:
    split = scaffold_split(SMILES * 3)
    assert sorted(np.concatenate(list(split.values())).tolist()) == list(range(3 * len(SMILES)))
    scaffolds = {k: {murcko_scaffold((SMILES * 3)[i]) for i in v} for k, v in split.items()}
    assert not scaffolds["train"] & scaffolds["test"] and not scaffolds["valid"] & scaffolds["test"]
    assert len(split["test"]) <= 0.25 * 3 * len(SMILES) and len(split["valid"]) <= 0.15 * 3 * len(SMILES)
    groups = scaffold_groups(["c1ccccc1C", "c1ccccc1CC", "CCO", "CCN"])
    assert groups[0] == groups[1] and len(set(groups.tolist())) == 3  # acyclic: groups of their own
    y = np.array([[1, 0, np.nan], [0, 0, 1], [1, np.nan, 0], [0, 0, 1]])
    p = np.array([[0.9, 0.2, 0.5], [0.1, 0.3, 0.6], [0.8, 0.1, 0.7], [0.3, 0.4, 0.1]])
    found = score(y, p, "auc")  # task 0: AUC 1; task 1: one class, not scored; task 2: AUC 0
    assert found["auc"] == pytest.approx(0.5) and found["share_auc_0.80"] == pytest.approx(1 / 3)
    assert score(np.array([[1.0], [np.nan]]), np.array([[0.5], [9.0]]), "mae")["mae"] == 0.5
    rng = np.random.default_rng(0)
    labels, tied = rng.integers(0, 2, 200), rng.integers(0, 5, 200).astype(float)  # many ties
    assert rank_auc(labels, tied) == pytest.approx(roc_auc_score(labels, tied))


def test_config_checks_and_published_settings() -> None:
    published = InfoAlignConfig.load(PUBLISHED, "infoalign")
    assert (published.hidden, published.layers, published.batch_size, published.lr) == (
        300,
        5,
        3072,
        1e-4,
    )
    with pytest.raises(KgctlError, match="holdout_targets"):
        InfoAlignConfig(holdout_targets=1.0)
    args = module_args(published, from_view(view_of(SMILES[:4], {}), published))
    assert args["decoders"] == {"fingerprint": 1024}
    net = InfoAlignNet(**{**args, "decoders": {"fingerprint": 1024, "gene": 1973, "cell": 2749, "expression": 978}})
    encoder = sum(p.numel() for n, p in net.named_parameters() if not n.startswith("decoders"))
    assert 3_000_000 < encoder < 4_000_000  # the method counts 3,520,805 (with OGB's vocabularies)


def test_real_property_sets(shared_data: Path) -> None:
    sizes = {
        "chembl2k": (2355, 41),
        "broad6k": (6567, 32),
        "toxcast": (8576, 617),
        "biogen3k": (3521, 6),
    }
    for name, (folder, metric) in SETS.items():
        data = read_assays(shared_data / "infoalign" / folder, name)
        assert (len(data.smiles) + data.unreadable, len(data.tasks)) == sizes[name] and data.metric == metric
    chembl = read_assays(shared_data / "infoalign" / SETS["chembl2k"][0], "chembl2k")
    split = scaffold_split(chembl.smiles)
    assert {k: len(v) for k, v in split.items()}["test"] == pytest.approx(589, abs=20)
    with pytest.raises(KgctlError, match="0/1"):
        read_assays(shared_data / "infoalign" / SETS["biogen3k"][0], "chembl2k")


class SplitRecorder(PredictorBaseline):
    """A baseline that records the split it is handed and predicts each task's training rate."""

    name = "split_recorder"
    kind = "molecule"
    description = "records its split"
    seen: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def fit_predict(self, data: Labelled, split: Split, seed: int, options: ProbeOptions) -> np.ndarray:
        SplitRecorder.seen.append((split.train, split.valid, split.test))
        rate = np.nan_to_num(np.nanmean(data.labels[split.train], axis=0), nan=0.5)
        return np.tile(rate, (len(split.test), 1))


@pytest.mark.slow
@pytest.mark.neo4j
def test_a_run_on_a_small_real_graph_writes_back_and_answers_the_queries(
    graph: Connection, tmp_path: Path, shared_data: Path
) -> None:
    context_graph(graph, tmp_path)
    config = InfoAlignConfig(hidden=32, layers=2, epochs=3, batch_size=64)
    run = runs.train(graph, tmp_path / "kgctl", "infoalign", config, device="cpu")
    data = run.record["data"]
    assert data["spaces"]["expression"][1] == 978 and data["spaces"]["morphology"][0] == 40 + 1  # consensus, and DMSO
    assert data["targets"]["held_out_molecules"] > 20
    targets = runs.evaluate(graph, tmp_path / "kgctl", run.id, {"rf_trees": 10}, device="cpu")
    assert targets["task"] == "targets"
    assert {"infoalign", "untrained", "tanimoto_knn", "random_forest", "walk_transfer"} == set(targets["methods"])
    assert all(0 <= m["recall_at_10"] <= 1 for m in targets["methods"].values())
    PREDICTORS.register(SplitRecorder)  # every baseline is handed the split the model's head gets
    try:
        chembl = runs.evaluate(
            graph,
            tmp_path / "kgctl",
            run.id,
            {
                "labels": "chembl2k",
                "file": str(shared_data / "infoalign" / SETS["chembl2k"][0]),
                "probe_seeds": "0",
                "rf_trees": 10,
                "split_rule": "official",
            },
            evaluator="probe",
            device="cpu",
        )
    finally:
        del PREDICTORS.entries[SplitRecorder.name]
    official = official_scaffold_split(read_assays(shared_data / "infoalign" / SETS["chembl2k"][0], "chembl2k").smiles)
    assert [sorted(r.tolist()) for r in SplitRecorder.seen[0]] == [
        sorted(official[k].tolist()) for k in ("train", "valid", "test")
    ]
    assert set(chembl["methods"]) == {
        "infoalign",
        "untrained",
        "fingerprint",
        "infoalign+fingerprint",
        "random_forest",
        "tanimoto_knn",
        "dmpnn",
        "split_recorder",
        "fine_tuned",
        "scratch",
    }
    assert chembl["split_rule"].startswith("the official repository's") and chembl["split"]["test"] == 589
    assert {"lr", "best_epoch", "validation"} <= set(chembl["chosen_on_validation"]["fine_tuned"]["1"][0])
    assert 0.5 < chembl["methods"]["random_forest"]["1"]["auc"]["mean"] < 1 and chembl["context"]["molecules"] == 2355
    assert chembl["context"]["reach_morphology"] > 0  # ChEMBL2K molecules among the 40 with profiles
    subsets = chembl["subsets"]
    assert subsets["with_context_edges"]["items"] == chembl["context"]["with_context_edges"]
    assert subsets["with_context_edges"]["items"] + subsets["without_context_edges"]["items"] == 2355
    assert set(subsets["without_context_edges"]["methods"]) == set(chembl["methods"])
    written = runs.predict(
        graph, tmp_path / "kgctl", run.id, {"top_k": 5}, device="cpu", write_back=True, allow_split=True
    )["written"]
    assert written["relationships"]["count"] > 0 and written["embeddings"]["property"] == "embedding_infoalign"
    name = graph.query(
        "MATCH (m:Molecule)-[p:PREDICTED_ASSOCIATION]->() WHERE m.name IS NOT NULL "
        "RETURN m.name AS n ORDER BY p.score DESC LIMIT 1"
    )[0]["n"]
    like = queries.run("molecules-like", graph, molecule=name, k=5)
    assert len(like) == 5 and like["similarity"].is_monotonic_decreasing
    predicted = queries.run("predicted-targets", graph, molecule=name)
    assert len(predicted) >= 1 and predicted["run"].eq(run.id).all() and predicted["rank"].iloc[0] == 1
    assert all(len(v) >= 1 for v in predicted["via_molecules"])  # evidence: a neighbour targets it
    with pytest.raises(KgctlError, match="needs --file"):
        runs.evaluate(graph, tmp_path / "kgctl", run.id, {"labels": "toxcast"}, evaluator="probe", device="cpu")
