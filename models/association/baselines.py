"""The registered pair baselines, scored on the same splits as the models: input cosine; the
degree prior (summed training degree, alone, with cosine to break ties, and a logistic model on
degrees and cosine); degree product (preferential attachment on the training graph) and a
random-walk embedding (DeepWalk as matrix factorisation: PPMI of walk co-occurrences, truncated
SVD; Qiu et al. 2018).
The SVD is sklearn's seeded randomized solver: ARPACK (scipy's svds) returned different vectors
in different processes for the same matrix and start vector, which moved held-out AUCs."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.utils.extmath import randomized_svd

from kgctl.graph.walks import DEAD_END, CSRGraph, random_walks
from kgctl.models.association.data import degrees, sample_pairs
from kgctl.models.association.scorers import PairScorer, Scores, SplitData, register_scorer


def cosine_scores(emb: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """Row-wise dot products of L2-normalised embeddings (zero rows score 0)."""
    norm = np.linalg.norm(emb, axis=1, keepdims=True)
    unit = np.divide(emb, norm, out=np.zeros_like(emb), where=norm > 0)
    return np.asarray(np.einsum("ij,ij->i", unit[pairs[:, 0]], unit[pairs[:, 1]]))


def degree_product(degree: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    return np.asarray(degree[pairs[:, 0]] * degree[pairs[:, 1]])


def walk_embedding(
    n: int,
    pairs: np.ndarray,
    *,
    dim: int = 64,
    walks_per_node: int = 10,
    length: int = 40,
    window: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """[n, dim] embedding from uniform random walks over the training pairs: co-occurrence
    within `window` steps, shifted PPMI (one negative), rank-`dim` SVD scaled by √σ (seeded:
    the same input gives the same bytes). Genes without a training edge get a zero row."""
    edge_index = torch.from_numpy(pairs.T.copy()).long()
    graph = CSRGraph.from_edge_index(edge_index, n, undirected=True)
    start = torch.arange(n)
    walks = random_walks(graph, start, length, walks_per_node=walks_per_node, seed=seed)
    walk = walks.nodes.contiguous().numpy().astype(np.int64)
    walk[:, 1:][walks.edges.numpy() == DEAD_END] = -1  # a stuck walker stays put: not a visit
    rows, cols = [], []
    for offset in range(1, window + 1):
        a, b = walk[:, :-offset].ravel(), walk[:, offset:].ravel()
        ok = (a >= 0) & (b >= 0)
        rows += [a[ok], b[ok]]
        cols += [b[ok], a[ok]]
    r, c = np.concatenate(rows), np.concatenate(cols)
    counts = sp.coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)).tocsr()
    counts.sum_duplicates()
    total = counts.sum()
    if total == 0:
        return np.zeros((n, dim))
    row = np.asarray(counts.sum(axis=1)).ravel()
    coo = counts.tocoo()
    pmi = np.log(coo.data * total / (row[coo.row] * row[coo.col]))
    keep = pmi > 0
    ppmi = sp.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=(n, n))
    u, s, _ = randomized_svd(ppmi, min(dim, n - 1), n_iter=10, random_state=seed)
    emb = np.asarray(u * np.sqrt(s))
    emb[row == 0] = 0
    return emb


@register_scorer
class Cosine(PairScorer):
    name = "cosine"
    description = "Cosine of the two genes' input embeddings (expression similarity): nothing learned."

    def fit(self, data: SplitData) -> Scores:
        emb = data.emb
        return Scores(lambda pairs: cosine_scores(emb, pairs))


@register_scorer
class DegreeProduct(PairScorer):
    name = "degree_product"
    description = "Preferential attachment: the product of the genes' training degrees."

    def fit(self, data: SplitData) -> Scores:
        degree = degrees(data.inputs.n, data.split.train)
        return Scores(lambda pairs: degree_product(degree, pairs))


def degree_sum(degree: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    return np.asarray(degree[pairs[:, 0]] + degree[pairs[:, 1]])


def degree_features(degree: np.ndarray, emb: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """[P, 3]: log(1 + the larger training degree), log(1 + the smaller), input cosine."""
    d = np.log1p(np.sort(degree[pairs], axis=1))
    return np.column_stack([d[:, 1], d[:, 0], cosine_scores(emb, pairs)])


@register_scorer
class Degree(PairScorer):
    name = "degree"
    description = "The degree prior: the pair's summed training degree (in a node split, the seen gene's)."

    def fit(self, data: SplitData) -> Scores:
        degree = degrees(data.inputs.n, data.split.train)
        return Scores(lambda pairs: degree_sum(degree, pairs))


@register_scorer
class DegreeCosine(PairScorer):
    name = "degree_cosine"
    description = "Summed training degree first, input cosine to break its ties."

    def fit(self, data: SplitData) -> Scores:
        degree, emb = degrees(data.inputs.n, data.split.train), data.emb
        # Degrees are whole numbers and (cosine + 1) / 4 lies in [0, 0.5]: degree decides, cosine breaks ties.
        return Scores(lambda pairs: degree_sum(degree, pairs) + (cosine_scores(emb, pairs) + 1) / 4)


@register_scorer
class DegreeLogistic(PairScorer):
    name = "degree_logistic"
    description = (
        "Logistic regression on both genes' log training degrees and input cosine, fit on the "
        "training pairs (each with its own edge left out of the degrees) against random pairs of training genes."
    )
    grid = {"c": (1.0, 0.01, 0.1, 10.0)}  # inverse L2 penalty, chosen on validation

    def fit(self, data: SplitData) -> Scores:
        n, train = data.inputs.n, data.split.train
        degree = degrees(n, train)
        seen = np.unique(train)
        rng = np.random.default_rng([data.split.seed, 3])
        negative = sample_pairs(seen, seen, 5 * len(train), data.inputs.known_keys, n, rng)
        held_out = degree_features(degree, data.emb, train)
        held_out[:, :2] = np.log1p(np.sort(degree[train] - 1, axis=1))[:, ::-1]  # as if the pair were not known
        x = np.concatenate([held_out, degree_features(degree, data.emb, negative)])
        y = np.concatenate([np.ones(len(train)), np.zeros(len(negative))])
        scaler = StandardScaler().fit(x)
        model = LogisticRegression(C=self.settings["c"], max_iter=1000).fit(scaler.transform(x), y)
        emb = data.emb
        return Scores(lambda pairs: model.decision_function(scaler.transform(degree_features(degree, emb, pairs))))


@register_scorer
class WalkEmbedding(PairScorer):
    name = "walk_embedding"
    description = "Cosine of DeepWalk embeddings (PPMI of walk co-occurrences, SVD) of the training graph."
    grid = {"window": (5, 10), "dim": (64, 128)}  # DeepWalk's window and width, chosen on validation

    def fit(self, data: SplitData) -> Scores:
        walk = walk_embedding(
            data.inputs.n,
            data.split.train,
            dim=self.settings["dim"],
            window=self.settings["window"],
            seed=data.split.seed,
        )
        return Scores(lambda pairs: cosine_scores(walk, pairs), vectors=walk)
