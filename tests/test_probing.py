"""The shared probe and retrieval parts on hand-made data: ranking figures, the heads, the splits
and the per-kind registries (the evaluators themselves run in each model's slow tests)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from kgctl.core.errors import KgctlError
from kgctl.graph.similarity import tanimoto
from kgctl.models.evaluators import KindRegistry
from kgctl.models.probing.evaluate import ProbeOptions, splits
from kgctl.models.probing.heads import Split, head, score
from kgctl.models.probing.labels import Labelled
from kgctl.models.probing.molecules import TanimotoKNN, fingerprints
from kgctl.models.retrieval import Queries, ranking

pytestmark = [pytest.mark.model("infoalign"), pytest.mark.model("isoclr")]


def test_ranking_figures_of_a_hand_made_score_matrix() -> None:
    scores = np.array(
        [
            [-np.inf, 0.9, 0.1, 0.5],  # query 0 is candidate 0: left out; relevant 1 and 2
            [0.2, 0.3, 0.8, -np.inf],  # relevant 0 only; one more relevant item no candidate reaches
        ]
    )
    asked = Queries([{1, 2}, {0}], np.array([2, 2]), 4)
    found = ranking(scores, asked, k=2)
    assert found["nearest_hit"] == 0.5  # query 0's best (1) is relevant; query 1's best (2) is not
    assert found["recall_at_2"] == pytest.approx((1 / 2 + 0 / 2) / 2)  # top 2: {1, 3} and {2, 1}
    assert found["auc"] == pytest.approx((0.5 + 0.0) / 2) and found["queries_with_auc"] == 2
    pooled = roc_auc_score([1, 1, 0, 1, 0, 0], [0.9, 0.1, 0.5, 0.2, 0.3, 0.8])
    assert found["pooled_auc"] == pytest.approx(round(pooled, 4))


def test_heads_recover_a_linear_signal_and_score_it() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 6))
    y = (x @ np.array([1.0, -2.0, 0.0, 0.5, 0.0, 0.0]) + 0.05 * rng.normal(size=300))[:, None]
    groups = np.arange(300) // 3
    with_valid = Split(np.arange(200), np.arange(200, 250), np.arange(250, 300))
    by_cv = Split(np.arange(250), np.zeros(0, dtype=np.int64), np.arange(250, 300))
    for split in (with_valid, by_cv):
        predicted = head("ridge").fit_predict(x, y, split, groups, "pearson_r", 0)
        assert score(y[split.test], predicted, "pearson_r")["pearson_r"] > 0.99
    mlp = head("mlp").fit_predict(x, y, by_cv, groups, "pearson_r", 0)  # validation carved from train
    assert mlp.shape == (50, 1) and score(y[by_cv.test], mlp, "pearson_r")["pearson_r"] > 0.8
    binary = (y > np.median(y)).astype(float)
    logistic = head("logistic").fit_predict(x, binary, with_valid, groups, "auc", 0)
    assert score(binary[with_valid.test], logistic, "auc")["auc"] > 0.95
    with pytest.raises(KgctlError, match="the logistic head fits binary labels"):
        head("logistic").fit_predict(x, y, with_valid, groups, "pearson_r", 0)
    with pytest.raises(KgctlError, match="unknown probe head 'svm'"):
        head("svm")


def test_splits_keep_groups_whole_or_the_published_split() -> None:
    groups = np.repeat(np.arange(40), 5)
    labels = np.arange(200.0)
    labels[:5] = np.nan  # group 0 has no label: never in a split
    data = Labelled("toy", list(range(200)), labels, groups, "pearson_r")
    for seed in range(3):
        split, shuffled = splits(data, seed)
        assert not set(groups[split.train]) & set(groups[split.test]) and 0 not in set(groups[split.test])
        assert sorted(shuffled.tolist()) == sorted(split.train.tolist()) and not len(split.valid)
        assert 0 not in set(groups[split.train])
    published = Split(np.arange(100), np.arange(100, 150), np.arange(150, 200))
    fixed = Labelled("toy", list(range(200)), np.arange(200.0), groups, "auc", published)
    assert all(splits(fixed, seed)[0] is published for seed in range(3))
    with pytest.raises(KgctlError, match="metric 'r2'"):
        Labelled("toy", [], np.zeros(0), np.zeros(0), "r2")


def test_kind_registries_name_components_by_kind() -> None:
    registry = KindRegistry["Part"]("part")

    class Part:
        name: ClassVar[str] = "a"
        kind: ClassVar[str] = "rna"
        description: ClassVar[str] = "first"

    class Other(Part):
        name = "b"

    registry.register(Part)
    registry.register(Other)
    assert registry.named("", "rna").name == "a" and registry.named("b", "rna").name == "b"
    with pytest.raises(KgctlError, match="no molecule part 'a'; registered: none"):
        registry.named("a", "molecule")

    class Clash(Part):
        description = "another a"

    with pytest.raises(KgctlError, match="a part named 'a' is already registered"):
        registry.register(Clash)


def test_tanimoto_neighbours_choose_k_on_validation_and_separate_two_families() -> None:
    aromatic = [f"c1ccc(cc1){'C' * i}O" for i in range(1, 21)]
    aliphatic = [f"{'C' * i}C(=O)N" for i in range(1, 21)]
    smiles = [s for pair in zip(aromatic, aliphatic, strict=True) for s in pair]  # alternate families
    labels = np.array([[1.0, np.nan] if i % 2 == 0 else [0.0, 1.0] for i in range(40)])
    data = Labelled("toy", smiles, labels, np.arange(40), "auc")
    split = Split(np.arange(24), np.arange(24, 32), np.arange(32, 40))
    knn = TanimotoKNN()
    predicted = knn.fit_predict(data, split, 0, ProbeOptions())
    assert predicted.shape == (8, 2) and knn.chosen["k"] in TanimotoKNN.grid
    assert knn.chosen["power"] in TanimotoKNN.powers
    assert score(labels[split.test, :1], predicted[:, :1], "auc")["auc"] == 1.0
    assert np.allclose(predicted[:, 1], 1.0)  # task 1 knows only label 1
    # Uniform weights (p = 0) give the plain mean of the k nearest labels; p = 3 leans on the nearest.
    bits = fingerprints(tuple(smiles))
    references, query = np.arange(1, 40), np.array([0])
    found = knn.predict(bits, labels, references, query, ((0.0, 5), (3.0, 5)))
    similarity = tanimoto(bits[query], bits[references])[0]
    nearest = np.argsort(-similarity, kind="stable")[:5]
    assert found[(0.0, 5)][0, 0] == pytest.approx(labels[references[nearest], 0].mean())
    weights = (similarity[nearest] + 1e-6) ** 3
    assert found[(3.0, 5)][0, 0] == pytest.approx((weights * labels[references[nearest], 0]).sum() / weights.sum())
    wide = knn.predict(bits, labels, references, query, ((0.0, 30), (1.0, 30), (3.0, 30)))  # both families
    assert wide[(0.0, 30)][0, 0] < wide[(1.0, 30)][0, 0] < wide[(3.0, 30)][0, 0] < 1.0
