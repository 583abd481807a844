"""CAL's parts on small inputs: the model and its losses, the PCA, splits and negatives, the
blockwise top-k, training determinism and resume, metrics, baselines, config and queries."""

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from kgctl import queries
from kgctl.core.errors import KgctlError
from kgctl.models import metrics
from kgctl.models.association.baselines import cosine_scores, walk_embedding
from kgctl.models.association.config import AssociationConfig
from kgctl.models.association.data import (
    Inputs,
    ambiguous_pairs,
    both_unseen,
    degree_matched_negatives,
    degrees,
    embed,
    make_split,
    negatives,
    pair_keys,
    reference_negatives,
    validation_negatives,
)
from kgctl.models.association.evaluate import sweep_test_pairs, threshold_sweep
from kgctl.models.association.losses import in_batch_loss, is_known
from kgctl.models.association.rows import ranked
from kgctl.models.cal import CAL
from kgctl.models.cal.bilinear import bilinear_scores, fit_bilinear
from kgctl.models.cal.config import CALConfig
from kgctl.models.cal.model import CALModel, cal_rows, random_negative_loss
from kgctl.models.cal.task import CALTask
from kgctl.models.trainer import fit
from kgctl.testing.fixtures import planted_inputs as planted


def train(emb: np.ndarray, pairs: np.ndarray, config: CALConfig, out: Path, **options: Any) -> dict[str, Any]:
    return fit(CALTask(config, emb, pairs), out, device="cpu", **options).result


pytestmark = pytest.mark.model("cal")


CONFIG = CALConfig(dataset="d", pca_dim=8, hidden_dim=32, layers=2, epochs=4, batch_size=32, checkpoint_every=1)


def test_model_matches_the_reference_shape() -> None:
    model = CALModel(50)  # d = 50, hidden 1024, 3 blocks: 2,208,919 parameters (methods/cal.md §2)
    assert sum(p.numel() for p in model.parameters()) == 2_208_919
    assert model.alpha == 0.5
    out = model(torch.randn(7, 50))
    assert torch.allclose(out.norm(dim=1), torch.ones(7), atol=1e-5)


def test_in_batch_loss_masks_known_partners_and_self() -> None:
    n = 10
    a, b = torch.tensor([0, 0, 3]), torch.tensor([1, 2, 4])
    z = torch.nn.functional.normalize(torch.randn(3, 4), dim=1)
    both = torch.tensor([[0, 1], [0, 2], [3, 4], [1, 0], [2, 0], [4, 3]])
    keys = torch.sort(both[:, 0] * n + both[:, 1]).values
    assert is_known(torch.tensor([0, 1, 5]), torch.tensor([2, 0, 6]), keys, n).tolist() == [
        True,
        True,
        False,
    ]
    # Row 0 (0→1): column 1 pairs gene 0 with its known partner 2, so it is masked; column 2 stays.
    loss, _ = in_batch_loss(z, z, a, b, keys, n, 0.05)
    logits = (z @ z.T) / 0.05
    masked = logits.clone()
    masked[0, 1] = masked[1, 0] = float("-inf")  # rows and columns of the hub 0
    target = torch.arange(3)
    expected = 0.5 * (
        torch.nn.functional.cross_entropy(masked, target) + torch.nn.functional.cross_entropy(masked.T, target)
    )
    assert torch.allclose(loss, expected)
    # With every off-diagonal entry a known pair, nothing is left to contrast: loss 0.
    full = torch.sort(torch.tensor([i * n + j for i in range(n) for j in range(n)])).values
    assert float(in_batch_loss(z, z, a, b, full, n, 0.05)[0]) == pytest.approx(0.0, abs=1e-6)


def test_random_negative_loss_masks_the_pair_itself() -> None:
    # Fixed unit vectors (a random draw at τ = 0.05 can underflow the loss to exactly 0).
    z = torch.eye(2, 4)
    a, b = torch.tensor([0, 1]), torch.tensor([1, 0])
    pool = torch.cat([torch.eye(4), torch.tensor([[0.6, 0.8, 0.0, 0.0]])])
    only_self = torch.tensor([[0, 1, 1], [1, 0, 0]])
    loss, accuracy = random_negative_loss(z, z, a, b, pool, only_self, 0.05)
    assert float(loss) == pytest.approx(0.0, abs=1e-6) and float(accuracy) == 1.0
    # Unmasked negatives e2, e3 (similarity 0) and (0.6, 0.8) (0.6 to e0, 0.8 to e1); pos = 1.
    loss, _ = random_negative_loss(z, z, a, b, pool, torch.tensor([[2, 3, 4], [2, 3, 4]]), 0.05)
    ce = [math.log(1 + 2 * math.exp(-1 / 0.05) + math.exp((s - 1) / 0.05)) for s in (0.6, 0.8)]
    assert float(loss) == pytest.approx(sum(ce) / 2, rel=1e-4) and float(loss) > 0


def test_embedding_is_exact_deterministic_and_fit_on_training_genes() -> None:
    inputs = planted()
    fit = np.ones(inputs.n, dtype=bool)
    fit[:30] = False
    emb, info = embed(inputs.features, fit, 8)
    again, info2 = embed(inputs.features.copy(), fit, 8)
    assert info["sha256"] == info2["sha256"] and np.array_equal(emb, again)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5) and info["dim"] == 8
    changed = inputs.features.copy()
    changed[:30] += 100.0  # held-out genes do not move the components
    moved, _ = embed(changed, fit, 8)
    assert np.allclose(moved[30:], emb[30:], atol=1e-5)
    assert not np.allclose(moved[:30], emb[:30], atol=1e-2)


def test_node_split_holds_genes_out() -> None:
    """Test genes and validation genes are both held out of training: validation pairs touch a
    validation gene (never a test gene), as test pairs touch a test gene; the PCA sees neither,
    and validation negatives are degree-matched among genes no test pair needs."""
    inputs = planted()
    config = CONFIG.replace(unseen_fraction=0.3)
    split = make_split(inputs, config, "node", 7)
    assert make_split(inputs, config, "node", 7).test.tolist() == split.test.tolist()
    u, held = split.unseen, split.held
    assert held is not None and not (u & held).any()
    assert not (u[split.train].any() or u[split.validation].any() or held[split.train].any())
    assert (u[split.test[:, 0]] | u[split.test[:, 1]]).all()
    assert (held[split.validation[:, 0]] | held[split.validation[:, 1]]).all()
    assert int(u.sum()) == round(0.3 * len(np.unique(inputs.positives)))
    assert int(held.sum()) == round(0.1 * len(np.unique(inputs.positives))) == split.counts()["validation_genes"]
    assert not split.fit[u | held].any() and split.fit[~(u | held)].all()
    negative = validation_negatives(inputs, split, 5, np.random.default_rng(0))
    assert len(negative) > 3 * len(split.validation) and not u[negative].any()
    assert held[negative].any(axis=1).all()  # every negative has a validation gene, as every pair does
    assert not np.isin(pair_keys(negative, inputs.n), inputs.known_keys).any()
    together = np.concatenate([split.train, split.validation, split.test])
    assert sorted(pair_keys(together, inputs.n).tolist()) == sorted(pair_keys(inputs.positives, inputs.n).tolist())
    edge = make_split(inputs, config, "edge", 7)
    assert len(edge.test) == round(0.2 * len(inputs.positives)) and not edge.unseen.any()


def test_negatives_exclude_every_known_pair_and_match_the_test_composition() -> None:
    inputs = planted(n=300, modules=10)
    split = make_split(inputs, CONFIG, "node", 3)
    neg = negatives(inputs, split, 5, np.random.default_rng(0))
    keys = pair_keys(neg, inputs.n)
    assert len(np.unique(keys)) == len(neg) == min(5 * len(split.test), 50_000)
    assert not np.isin(keys, pair_keys(inputs.known, inputs.n)).any()
    assert (neg[:, 0] != neg[:, 1]).all()
    u = split.unseen
    assert (u[neg[:, 0]] | u[neg[:, 1]]).all()  # like every test positive
    both_pos = (u[split.test[:, 0]] & u[split.test[:, 1]]).mean()
    assert (u[neg[:, 0]] & u[neg[:, 1]]).mean() == pytest.approx(both_pos, abs=0.01)
    band = ambiguous_pairs(inputs, split)
    assert len(band) and not np.isin(pair_keys(band, inputs.n), pair_keys(inputs.positives, inputs.n)).any()
    assert np.isin(pair_keys(band, inputs.n), pair_keys(inputs.known, inputs.n)).all()
    assert (u[band[:, 0]] | u[band[:, 1]]).all()
    reference = reference_negatives(inputs, inputs.positives)
    assert len(reference) == min(5 * len(inputs.positives), 50_000)
    assert not np.isin(pair_keys(reference, inputs.n), pair_keys(inputs.positives, inputs.n)).any()


def test_degree_matched_negatives_follow_the_positives_degrees() -> None:
    inputs = planted(n=200, modules=4)
    split = make_split(inputs, CONFIG, "edge", 1)
    degree = degrees(inputs.n, split.train)
    neg = degree_matched_negatives(inputs, split.test, split.unseen, degree, 3, np.random.default_rng(0))
    assert len(neg) > 2 * len(split.test)
    assert not np.isin(pair_keys(neg, inputs.n), pair_keys(inputs.known, inputs.n)).any()

    def bins(p: np.ndarray) -> np.ndarray:
        return np.sort(np.floor(np.log2(degree[p] + 1)), axis=1)

    assert np.isin(bins(neg)[:, 0], bins(split.test)[:, 0]).all()
    assert degree[neg].mean() == pytest.approx(degree[split.test].mean(), rel=0.15)


def test_node_split_negatives_match_degrees_and_both_unseen_pairs_have_none() -> None:
    """Degree-matched negatives of a node split: the seen gene's degree-bin distribution equals
    the positives' within 0.05 total variation, and the seen/unseen make-up is the same. Pairs of
    two unseen genes carry no degree at all, so the degree prior scores them 0.5."""
    inputs = planted(n=400, modules=40)
    split = make_split(inputs, CONFIG, "node", 5)
    degree = degrees(inputs.n, split.train)
    neg = degree_matched_negatives(inputs, split.test, split.unseen, degree, 5, np.random.default_rng(0))
    assert len(neg) > 4 * len(split.test)

    def histogram(p: np.ndarray) -> np.ndarray:
        top = np.floor(np.log2(degree[p].max(axis=1) + 1)).astype(int)
        return np.bincount(top, minlength=12) / len(p)

    assert 0.5 * np.abs(histogram(neg) - histogram(split.test)).sum() < 0.05
    u = split.unseen
    assert (u[neg].sum(axis=1).mean()) == pytest.approx(u[split.test].sum(axis=1).mean(), abs=0.02)
    pos, negs = both_unseen(inputs, split, 5, np.random.default_rng(1))
    assert len(pos) and u[pos].all() and u[negs].all() and len(negs) == 5 * len(pos)
    assert not np.isin(pair_keys(negs, inputs.n), inputs.known_keys).any()
    assert degree[pos].sum() == degree[negs].sum() == 0


def test_degree_scorers_read_the_training_degrees_and_choose_on_validation() -> None:
    from kgctl.models.association.baselines import Degree, DegreeCosine, DegreeLogistic
    from kgctl.models.association.scorers import SplitData, fit_chosen

    inputs = planted(n=400, modules=40)
    split = make_split(inputs, CONFIG, "node", 5)
    emb, _ = embed(inputs.features, split.fit, 8)
    degree = degrees(inputs.n, split.train)
    validation = (split.validation, validation_negatives(inputs, split, 5, np.random.default_rng(0)))
    data = SplitData(inputs, split, emb, CONFIG, validation=validation)
    pairs = np.concatenate([split.test, split.validation])
    summed = degree[pairs].sum(axis=1)
    assert np.array_equal(Degree().fit(data).pairs(pairs), summed)
    lexicographic = DegreeCosine().fit(data).pairs(pairs)
    assert np.array_equal(np.floor(lexicographic), summed)  # degree decides, cosine only breaks ties
    assert np.allclose(lexicographic - summed, (cosine_scores(emb, pairs) + 1) / 4)
    scores, record = fit_chosen(DegreeLogistic, data)
    assert [c["settings"]["c"] for c in record["candidates"]] == list(DegreeLogistic.grid["c"])
    assert record["value"] == pytest.approx(max(c["validation_auc"] for c in record["candidates"]), abs=1e-4)
    assert record["value"] > 0.7  # degree-matched validation negatives: the features must tell
    pos, negs = both_unseen(inputs, split, 5, np.random.default_rng(1))
    unseen = metrics.auc(scores.pairs(pos), scores.pairs(negs))
    assert unseen == pytest.approx(metrics.auc(cosine_scores(emb, pos), cosine_scores(emb, negs)), abs=1e-9)


@pytest.mark.parametrize("transform", ["both", "half"])
def test_blockwise_top_k_equals_the_full_matrix(transform: str) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(53, 6, generator=g), dim=1)
    fx = torch.nn.functional.normalize(torch.randn(53, 6, generator=g), dim=1)
    got = ranked(cal_rows(fx, x, transform), len(fx), 5, "none", block=7)
    full = fx @ fx.T if transform == "both" else 0.5 * (fx @ x.T + x @ fx.T)
    full.fill_diagonal_(float("-inf"))
    values, index = torch.topk(full, 5, dim=1)
    assert np.array_equal(got.partner, index.numpy())
    assert np.allclose(got.score, values.numpy(), atol=1e-6)
    assert got.pairs_scored == 53 * 52


def test_random_negatives_variant_trains(tmp_path: Path) -> None:
    inputs = planted()
    split = make_split(inputs, CONFIG, "edge", 0)
    emb, _ = embed(inputs.features, split.fit, CONFIG.pca_dim)
    config = CONFIG.replace(loss="random-negatives", transform="both", negatives=16)
    result = train(emb, split.train, config, tmp_path)
    assert result["complete"] and np.isfinite(result["final_loss"])


def test_walk_embedding_separates_communities() -> None:
    a, b = np.triu_indices(10, 1)
    pairs = np.concatenate([np.column_stack([a, b]), np.column_stack([a, b]) + 10, [[0, 10]]])
    emb = walk_embedding(21, pairs, dim=4, seed=0)
    within = cosine_scores(emb, np.array([[1, 2], [11, 12]]))
    across = cosine_scores(emb, np.array([[1, 12], [2, 11]]))
    assert within.min() > across.max()
    assert not emb[20].any()  # no edges, no embedding


def test_bilinear_baseline_learns_a_map_cosine_cannot_see() -> None:
    # Gene 2i+1 is gene 2i with its two coordinate halves swapped: cosine ≈ 0 for every positive,
    # a symmetric W with the swap blocks scores them 1. Held-out pairs follow the same rule.
    rng = np.random.default_rng(0)
    base = rng.normal(size=(100, 8))
    emb = np.empty((200, 8))
    emb[0::2], emb[1::2] = base, np.concatenate([base[:, 4:], base[:, :4]], axis=1)
    pairs = np.column_stack([np.arange(0, 200, 2), np.arange(1, 200, 2)])
    train_pairs, test_pairs = pairs[:70], pairs[70:]
    config = CONFIG.replace(epochs=30, batch_size=16, lr=3e-2, weight_decay=0.0)
    w = fit_bilinear(emb, train_pairs, config)
    assert np.allclose(w, w.T) and np.array_equal(w, fit_bilinear(emb, train_pairs, config))
    negative = np.column_stack([np.arange(0, 120, 2), np.arange(3, 123, 2)])
    assert metrics.auc(bilinear_scores(emb, w, test_pairs), bilinear_scores(emb, w, negative)) > 0.95
    assert metrics.auc(cosine_scores(emb, test_pairs), cosine_scores(emb, negative)) < 0.75
    assert np.allclose(bilinear_scores(emb, np.eye(8), pairs), cosine_scores(emb, pairs))


def test_threshold_sweep_scores_every_threshold_on_one_held_out_set(tmp_path: Path) -> None:
    strict = planted()
    loose = Inputs(strict.genes, strict.features, strict.known, strict.known, {})  # every known pair
    result = threshold_sweep(
        CAL(CONFIG.replace(epochs=2)), {900.0: strict, 400.0: loose}, tmp_path, seeds=(1, 2), device="cpu"
    )
    assert result["thresholds"] == [400.0, 900.0]
    for seed in ("1", "2"):
        run = result["per_seed"][seed]
        assert run["test"] == round(0.2 * len(strict.positives))
        rows = run["thresholds"]
        # Only the test pairs leave training: all of them are positives at both thresholds.
        assert rows["900"]["train_pairs"] == len(strict.positives) - run["test"]
        assert rows["400"]["train_pairs"] == len(strict.known) - run["test"]
        # Threshold-free methods score the same pairs identically under both thresholds.
        assert rows["400"]["methods"]["cosine"] == rows["900"]["methods"]["cosine"]
    assert result["summary"]["900"]["cal"]["auc"]["n"] == 2
    # The pairs the swept settings were chosen on are never test pairs (methods/cal.md §8.6).
    validation = make_split(strict, CONFIG, "edge", 42).validation
    chosen = threshold_sweep(
        CAL(CONFIG.replace(epochs=1)),
        {900.0: strict},
        tmp_path / "chosen",
        seeds=(1,),
        chosen_on=(strict.genes, validation),
    )
    assert chosen["validation_pairs_excluded"] == len(validation) > 0
    for draw in range(20):
        test = sweep_test_pairs(strict, pair_keys(validation, strict.n), 0.2, np.random.default_rng(draw))
        assert len(test) == round(0.2 * len(strict.positives))
        assert not np.isin(pair_keys(test, strict.n), pair_keys(validation, strict.n)).any()
    with pytest.raises(KgctlError, match="different gene sets"):
        threshold_sweep(CAL(CONFIG), {900.0: strict}, tmp_path, seeds=(1,), chosen_on=(strict.genes[::-1], validation))
    shuffled = Inputs(strict.genes[::-1], strict.features, strict.known, strict.known, {})
    with pytest.raises(KgctlError, match="threshold 400"):
        threshold_sweep(CAL(CONFIG), {900.0: strict, 400.0: shuffled}, tmp_path, seeds=(1,))


def test_metrics() -> None:
    pos, neg = np.array([0.9, 0.8, 0.7]), np.array([0.1, 0.75, 0.2, 0.3])
    assert metrics.auc(pos, neg) == pytest.approx(11 / 12)
    assert metrics.precision_at(pos, neg, 2) == 1.0
    few = metrics.cross_boundary_auc(pos, neg, np.zeros(3), np.zeros(4), 0.2)
    assert few["auc"] is None and few["positives"] == 3
    assert metrics.mean_sd([1.0, 2.0, None]) == {
        "mean": 1.5,
        "sd": pytest.approx(0.7071, abs=1e-4),
        "n": 2,
    }
    assert metrics.spearman(np.arange(5.0), -np.arange(5.0)) == pytest.approx(-1.0)


def test_config_file_errors_name_the_file_and_key(tmp_path: Path) -> None:
    good = tmp_path / "cal.toml"
    good.write_text('[cal]\ndataset = "K562@1"\nepochs = 3\nlr = 1\n')
    config = CALConfig.load(good, "cal", seed=7)
    assert (config.dataset, config.epochs, config.lr, config.seed) == ("K562@1", 3, 1.0, 7)
    bad = tmp_path / "bad.toml"
    bad.write_text("epoch = 3\n")
    with pytest.raises(KgctlError, match=r"bad.toml: unknown key 'epoch'"):
        CALConfig.load(bad, "cal")
    bad.write_text('epochs = "many"\n')
    with pytest.raises(KgctlError, match=r"bad.toml: epochs must be int"):
        CALConfig.load(bad, "cal")
    with pytest.raises(KgctlError, match="channel must be one of"):
        CALConfig(channel="telepathy")


def test_query_headers_and_parameters() -> None:
    found = queries.available()
    assert {"novel-candidates", "cross-boundary", "understudied", "nearest"} <= set(found)
    q = found["novel-candidates"]
    assert q.bind({"gene": "KIF3", "limit": "5"}) == {"gene": "KIF3", "model": "cal", "run": None, "limit": 5}
    with pytest.raises(KgctlError, match="gene=… is required"):
        q.bind({})
    with pytest.raises(KgctlError, match="unknown parameter genes"):
        q.bind({"genes": "x"})
    with pytest.raises(KgctlError, match="'many' is not int"):
        q.bind({"gene": "KIF3", "limit": "many"})
    assert found["cross-boundary"].bind({"novel": "true"})["novel"] is True


def test_several_feature_datasets_combine_as_equal_standardised_blocks() -> None:
    """The first dataset decides the genes; each dataset is one block, standardised over the genes
    it covers and scaled by 1/√width (equal weight); a gene a dataset misses gets zeros there;
    `without` zeroes a block on the same genes and pairs."""
    from kgctl.graph.export import View
    from kgctl.models.association.data import build_inputs, without

    rng = np.random.default_rng(0)
    n = 60
    ids = [f"G{i}" for i in range(n)]
    a, b = np.triu_indices(n, 1)
    near = np.abs(a - b) == 1
    edges = {"INTERACTS_WITH": (a[near], b[near], np.full(near.sum(), 900.0))}
    first = rng.normal(3.0, 2.0, (n, 5)).astype(np.float32)
    first[:4] = np.nan  # four genes the first dataset lacks: left out
    first[10, 0] = np.nan  # one missing cell: filled with the column mean
    second = rng.normal(-1.0, 10.0, (n, 20)).astype(np.float32)
    second[20:] = np.nan  # covers genes 0–19 only
    views = [View(ids, first, edges, {"fingerprint": "f1", "licences": ["CC-BY-4.0"]})]
    views.append(View(ids, second, edges, {"fingerprint": "f2", "licences": ["CC0-1.0"]}))
    config = AssociationConfig(dataset="effect, expression")
    inputs = build_inputs(views, config)
    assert inputs.genes.tolist() == ids[4:] and inputs.features.shape == (56, 25)
    blocks = inputs.meta["feature_blocks"]
    assert [(b["dataset"], b["columns"], b["genes_covered"]) for b in blocks] == [
        ("effect", [0, 5], 56),
        ("expression", [5, 25], 16),
    ]
    assert inputs.meta["licences"] == ["CC-BY-4.0", "CC0-1.0"] and len(inputs.meta["view_fingerprint"]) == 64
    block = inputs.features[:, :5].astype(np.float64)
    assert np.allclose(block.mean(axis=0), 0, atol=1e-6) and np.allclose(block.std(axis=0), 1 / np.sqrt(5))
    covered = inputs.features[:16, 5:].astype(np.float64)
    assert np.allclose(covered.std(axis=0), 1 / np.sqrt(20)) and not inputs.features[16:, 5:].any()
    # Each block's total variance is 1 whatever its width: equal weight in the joint PCA.
    assert block.var(axis=0).sum() == pytest.approx(1.0) and covered.var(axis=0).sum() == pytest.approx(1.0)
    one = build_inputs(views[:1], AssociationConfig(dataset="effect"))
    assert np.isnan(first[10, 0]) and one.features[6, 0] == pytest.approx(np.nanmean(first[4:, 0]))
    assert np.array_equal(one.positives, inputs.positives) and "feature_blocks" not in one.meta
    ablated = without(inputs, {"expression"})
    assert not ablated.features[:, 5:].any() and np.array_equal(ablated.features[:, :5], inputs.features[:, :5])
    assert np.array_equal(ablated.positives, inputs.positives) and ablated.meta["without"] == ["expression"]
    with pytest.raises(KgctlError, match="no feature block of morphology"):
        without(inputs, {"morphology"})
    with pytest.raises(KgctlError, match="list different genes"):
        build_inputs([views[0], View(ids[::-1], second, edges)], config)
