"""What makes association predictions worth writing back: CSLS hubness correction of per-gene
rankings (raw score kept), the evidence check on generated pair lists and gene sets, and
GraphSAGE learning the planted structure on the shared trainer."""

from pathlib import Path

import numpy as np
import pytest
import torch

from kgctl.core.errors import KgctlError
from kgctl.models import metrics
from kgctl.models.association.data import Inputs, make_split, negatives, pair_keys
from kgctl.models.association.evidence import evidence_check, read_evidence, top_novel
from kgctl.models.association.rows import most_listed, partner_hits, ranked
from kgctl.models.graphsage.task import GraphSAGEConfig, embed_nodes, graphsage_task
from kgctl.models.trainer import fit
from kgctl.testing.fixtures import planted_inputs


def hub_scores(n: int = 40, seed: int = 0) -> torch.Tensor:
    """Symmetric scores in which gene 0 is close to everyone (a hub) and genes pair up 2i, 2i+1."""
    rng = np.random.default_rng(seed)
    s = rng.normal(0, 0.1, (n, n))
    s = (s + s.T) / 2
    s[0, :] += 0.6
    s[:, 0] += 0.6
    for i in range(0, n, 2):
        s[i, i + 1] = s[i + 1, i] = 0.5
    return torch.from_numpy(s).float()


@pytest.mark.parametrize("hubness", ["zscore", "csls"])
def test_hubness_correction_stops_a_hub_heading_every_list_and_keeps_the_raw_score(
    hubness: str,
) -> None:
    s = hub_scores()

    def rows(lo: int, hi: int) -> torch.Tensor:
        return s[lo:hi].clone()

    raw = ranked(rows, len(s), 3, "none", block=7)
    fixed = ranked(rows, len(s), 3, hubness, block=7)
    assert most_listed(raw.partner, 1)["max_lists"] >= len(s) - 5  # the hub tops nearly every list
    assert most_listed(fixed.partner, 1)["max_lists"] < 5
    mates = np.arange(len(s)) ^ 1
    assert (fixed.partner[1:, 0] == mates[1:]).mean() > (raw.partner[1:, 0] == mates[1:]).mean()
    at = fixed.partner
    assert np.allclose(fixed.raw, s.numpy()[np.arange(len(s))[:, None], at], atol=1e-6)
    pairs = np.array([[i, i + 1] for i in range(2, len(s), 2)])
    train = np.zeros((0, 2), dtype=np.int64)
    corrected = partner_hits(rows, len(s), pairs, train, hubness, k=1)
    raw_hits = partner_hits(rows, len(s), pairs, train, "none", k=1)
    assert corrected is not None and raw_hits is not None and corrected > raw_hits


def small_inputs() -> Inputs:
    genes = np.array([f"G{i}" for i in range(12)])
    known = np.array([[0, 1], [2, 3]])
    return Inputs(genes, np.zeros((12, 2), np.float32), known, known, {})


def test_evidence_check_reads_pair_lists_and_gene_sets(tmp_path: Path) -> None:
    inputs = small_inputs()
    index = {g: i for i, g in enumerate(inputs.genes)}
    pairs = tmp_path / "interactions.tsv"
    pairs.write_text("# a database the model never saw\ng4\tG5\nG6\tG7\nG4\tUNKNOWN\n")
    sets = tmp_path / "annotations.gmt"
    sets.write_text("SET_A\tdesc\tG8\tG9\tG10\nSET_B\tdesc\tG11\n")
    kind, keys, groups = read_evidence(pairs, index, 12)
    assert kind == "pairs" and len(keys) == 2 and not groups  # unknown genes are skipped
    kind, keys, groups = read_evidence(sets, index, 12)
    assert kind == "gene sets" and len(groups) == 1  # a one-gene set supports no pair

    score = np.zeros((12, 12), np.float32)
    for a, b in ((4, 5), (6, 7), (8, 9), (0, 1)):  # (0, 1) is known: never novel
        score[a, b] = score[b, a] = 1.0
    model = torch.from_numpy(score)
    found = top_novel(lambda lo, hi: model[lo:hi].clone(), inputs, 3)
    assert {tuple(p) for p in found.tolist()} == {(4, 5), (6, 7), (8, 9)}
    result = evidence_check(inputs, {"cal": lambda lo, hi: model[lo:hi].clone()}, [pairs, sets], 3)
    assert result["all"]["cal"] == 1.0 and result["files"][str(pairs)]["supported"]["cal"] == pytest.approx(
        2 / 3, abs=1e-4
    )
    assert 0 <= result["all"]["random"] < 1 and result["top"] == 3

    bad = tmp_path / "broken.tsv"
    bad.write_text("G1\tG2\nG3\n")
    with pytest.raises(KgctlError, match=r"broken.tsv:2: a pair line needs two gene columns"):
        read_evidence(bad, index, 12)


@pytest.mark.model("graphsage")
def test_graphsage_learns_the_planted_modules_for_unseen_genes() -> None:
    inputs = planted_inputs(seed=3)
    config = GraphSAGEConfig(dataset="planted", split="node", pca_dim=16, hidden_dim=32, epochs=60, patience=0, seed=1)
    task = graphsage_task(inputs, config)
    fitted = fit(task, None, device="cpu")
    assert fitted.module is not None and fitted.result["selection"]["epoch"] >= 1
    h = embed_nodes(fitted.module, task.x, task.graph).numpy()
    split = make_split(inputs, config, "node", 1)
    neg = negatives(inputs, split, 5, np.random.default_rng(1))

    def score(p: np.ndarray) -> np.ndarray:
        return np.asarray(np.einsum("ij,ij->i", h[p[:, 0]], h[p[:, 1]]))

    assert metrics.auc(score(split.test), score(neg)) > 0.75
    assert not np.isin(pair_keys(split.test, inputs.n), pair_keys(task.pairs, inputs.n)).any()


@pytest.mark.model("cal")
def test_pair_baselines_are_registered_and_choose_their_settings_on_validation() -> None:
    from kgctl.models.association.baselines import WalkEmbedding
    from kgctl.models.association.config import AssociationConfig
    from kgctl.models.association.data import embed, validation_negatives
    from kgctl.models.association.scorers import SplitData, fit_chosen, scorers

    assert {"cosine", "degree_product", "walk_embedding", "bilinear"} <= set(scorers())
    inputs = planted_inputs()
    config = AssociationConfig(dataset="planted", split="edge")
    split = make_split(inputs, config, "edge", 1)
    emb, _ = embed(inputs.features, split.fit, 8)
    validation = (split.validation, validation_negatives(inputs, split, 5, np.random.default_rng(0)))
    scores, record = fit_chosen(WalkEmbedding, SplitData(inputs, split, emb, config, validation=validation))
    grid = [dict(zip(WalkEmbedding.grid, v, strict=True)) for v in [(5, 64), (5, 128), (10, 64), (10, 128)]]
    assert [c["settings"] for c in record["candidates"]] == grid
    best = max(record["candidates"], key=lambda c: c["validation_auc"])
    assert record["settings"] == best["settings"] and record["value"] == pytest.approx(best["validation_auc"], abs=1e-4)
    assert len(scores.pairs(split.test)) == len(split.test)
    _, default = fit_chosen(WalkEmbedding, SplitData(inputs, split, emb, config))  # no validation pairs
    assert default == {"settings": {"window": 5, "dim": 64}}
