"""CAL's inputs from a `gene-association` view: gene features (missing values filled), every
known pair at any score, the positive pairs; seeded edge and node splits; the exact, deterministic
PCA embedding fit on training genes only; negatives that exclude every known pair."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection
from kgctl.graph.export import View, export_view, node_index, relationship_chunks
from kgctl.graph.views import EdgeSpec
from kgctl.models.association.config import AssociationConfig
from kgctl.models.base import ArrayInputs

NEGATIVE_RATIO = 5  # negatives per held-out positive


def task_data(
    inputs: Inputs, config: AssociationConfig
) -> tuple[Split, np.ndarray, dict[str, Any], tuple[np.ndarray, np.ndarray]]:
    """The config's split, the PCA embedding fit on its training genes, and the validation
    pairs with their negatives (seeded by the split's seed; empty without validation)."""
    split = make_split(inputs, config, config.split, config.seed)
    emb, info = embed(inputs.features, split.fit, config.pca_dim)
    rng = np.random.default_rng([config.seed, 1])
    return (
        split,
        emb,
        info,
        (split.validation, validation_negatives(inputs, split, NEGATIVE_RATIO, rng)),
    )


def pair_keys(pairs: np.ndarray, n: int) -> np.ndarray:
    """One int64 per unordered pair (i < j)."""
    lo, hi = np.minimum(pairs[:, 0], pairs[:, 1]), np.maximum(pairs[:, 0], pairs[:, 1])
    return np.asarray(lo.astype(np.int64) * n + hi)


def unordered(pairs: np.ndarray, n: int) -> np.ndarray:
    """Distinct unordered pairs of distinct genes, as [P, 2] with i < j, in key order."""
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    keys = np.unique(pair_keys(pairs, n))
    return np.column_stack([keys // n, keys % n]).astype(np.int64)


@dataclass
class Inputs(ArrayInputs):
    """What CAL trains and is evaluated on; saved in the run folder, so that workers and
    `kgctl evaluate` need no Neo4j."""

    genes: np.ndarray  # str [N]: genes with features
    features: np.ndarray  # float32 [N, F]
    known: np.ndarray  # int64 [K, 2]: every pair the graph relates, at any score
    positives: np.ndarray  # int64 [P, 2]: the pairs that pass the config's rule
    meta: dict[str, Any]

    @property
    def n(self) -> int:
        return len(self.genes)

    @cached_property
    def known_keys(self) -> np.ndarray:
        """Sorted keys of every known pair: what a negative must not be."""
        return np.sort(pair_keys(self.known, self.n))


def datasets_of(config: AssociationConfig) -> list[str]:
    """The config's feature datasets, in order (the first decides which genes are kept)."""
    return [d.strip() for d in config.dataset.split(",") if d.strip()]


def collect_inputs(conn: Connection, config: AssociationConfig, view_dir: Path) -> Inputs:
    """Export the view once per feature dataset (each cached by graph fingerprint) and apply
    the config's rules."""
    datasets = datasets_of(config)
    if not datasets:
        raise KgctlError(
            "CAL needs a feature dataset: set `dataset` in the config or pass --dataset "
            "(`MATCH (d:Dataset) RETURN d.id` lists them; several, comma-separated, are combined)"
        )
    views = []
    for i, dataset in enumerate(datasets):
        out = view_dir if len(datasets) == 1 else view_dir / f"features-{i}"
        view = export_view(conn, "gene-association", out, dataset=dataset, relationships=(config.relationship,))
        assert isinstance(view, View)
        views.append(view)
    channel_pairs = None
    if config.channel is not None:
        internal, _ = node_index(conn, "Gene")
        edge = EdgeSpec("Gene", config.relationship, "Gene", f"r.{config.channel}")
        batches = list(relationship_chunks(conn, edge, internal, internal, config.min_channel))
        channel_pairs = np.concatenate(
            [np.column_stack([b.column(0).to_numpy(), b.column(1).to_numpy()]) for b in batches]
            or [np.zeros((0, 2), dtype=np.int64)]
        )
    return build_inputs(views, config, channel_pairs)


def filled(x: np.ndarray) -> np.ndarray:
    """Missing values replaced by their column's mean (0 where a column has none)."""
    with np.errstate(all="ignore"):
        column_mean = np.nanmean(x, axis=0)
    return np.where(np.isnan(x), np.nan_to_num(column_mean)[None, :], x)


def feature_blocks(
    blocks: list[np.ndarray], keep: np.ndarray, covered: list[np.ndarray]
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The kept genes' features from several datasets, one block each: missing cells filled with
    the column mean of the genes the dataset covers; each column standardised over those genes;
    each block divided by √(its columns), so that every dataset weighs the same in the PCA
    whatever its width; a gene the dataset does not cover gets zeros (its mean) in that block."""
    parts, spans, start = [], [], 0
    for x, has in zip(blocks, covered, strict=True):
        part = np.zeros((len(keep), x.shape[1]))
        inside = has[keep]
        if inside.any():
            values = filled(x[keep][inside].astype(np.float64))
            sd = values.std(axis=0)
            part[inside] = (values - values.mean(axis=0)) / np.where(sd > 0, sd, 1.0) / np.sqrt(x.shape[1])
        parts.append(part)
        spans.append((start, start + x.shape[1]))
        start += x.shape[1]
    return np.concatenate(parts, axis=1).astype(np.float32), spans


def build_inputs(views: list[View], config: AssociationConfig, channel_pairs: np.ndarray | None = None) -> Inputs:
    """Keep the genes the first dataset covers (at most `max_missing` missing features); known
    pairs at any score; positives by score threshold or channel filter. One dataset: its values,
    missing ones filled with the column mean. Several: one standardised block per dataset
    (`feature_blocks`); a further dataset covers a gene when at most `max_missing` of its
    features are missing there."""
    datasets = datasets_of(config) or [config.dataset]
    view = views[0]
    if any(other.node_ids != view.node_ids for other in views[1:]):
        raise KgctlError("the feature datasets' views list different genes; export them from one graph")
    matrices = [v.x for v in views]
    if any(x is None for x in matrices):
        raise KgctlError("the view has no gene features; export it with a dataset")
    xs = [x for x in matrices if x is not None]
    covered = [np.isnan(x).mean(axis=1) <= config.max_missing for x in xs]
    keep = np.flatnonzero(covered[0])
    if len(keep) < 10:
        raise KgctlError(f"only {len(keep)} genes have features in {datasets[0]!r}; CAL needs more")
    blocks: list[dict[str, Any]] = []
    if len(xs) == 1:
        x = filled(xs[0][keep].astype(np.float64)).astype(np.float32)
    else:
        x, spans = feature_blocks(xs, keep, covered)
        blocks = [
            {"dataset": d, "features": b - a, "columns": [a, b], "genes_covered": int(has[keep].sum())}
            for d, (a, b), has in zip(datasets, spans, covered, strict=True)
        ]
    position = np.full(len(view.node_ids), -1)
    position[keep] = np.arange(len(keep))
    src, dst, score = view.edges[config.relationship]
    a, b = position[src], position[dst]
    inside = (a >= 0) & (b >= 0)
    n = len(keep)
    known = unordered(np.column_stack([a[inside], b[inside]]), n)
    if channel_pairs is not None:
        ca, cb = position[channel_pairs[:, 0]], position[channel_pairs[:, 1]]
        chosen = np.column_stack([ca, cb])[(ca >= 0) & (cb >= 0)]
        rule = f"{config.channel} >= {config.min_channel:g}"
    else:
        threshold = config.threshold
        passing = inside & (score >= (threshold if threshold is not None else -np.inf))
        chosen = np.column_stack([a[passing], b[passing]])
        rule = f"score >= {threshold:g}" if threshold is not None else "any score"
    positives = unordered(chosen, n)
    if len(positives) < 20:
        raise KgctlError(
            f"only {len(positives)} {config.relationship} pairs among genes with features pass {rule}; CAL needs more"
        )
    fingerprints = [v.meta.get("fingerprint") for v in views]
    joined = None if None in fingerprints else hashlib.sha256("|".join(map(str, fingerprints)).encode()).hexdigest()
    meta = {
        "view_fingerprint": fingerprints[0] if len(views) == 1 else joined,
        "licences": sorted({licence for v in views for licence in v.meta.get("licences", [])}),
        "dataset": config.dataset,
        "relationship": config.relationship,
        "rule": rule,
        "genes_in_view": len(view.node_ids),
        "genes": n,
        "features": int(x.shape[1]),
        **({"feature_blocks": blocks} if blocks else {}),
        "known_pairs": len(known),
        "positive_pairs": len(positives),
        "genes_in_positives": int(len(np.unique(positives))),
    }
    return Inputs(np.asarray([view.node_ids[i] for i in keep]), x, known, positives, meta)


def without(inputs: Inputs, datasets: set[str]) -> Inputs:
    """The same genes and pairs with the blocks of `datasets` zeroed, as if they covered no
    gene: what a modality adds is the difference on the same splits (several datasets only)."""
    blocks = inputs.meta.get("feature_blocks") or []
    unknown = datasets - {b["dataset"] for b in blocks}
    if unknown:
        raise KgctlError(f"no feature block of {', '.join(sorted(unknown))} in these inputs")
    x = inputs.features.copy()
    for block in blocks:
        if block["dataset"] in datasets:
            x[:, block["columns"][0] : block["columns"][1]] = 0
    meta = {**inputs.meta, "without": sorted(datasets)}
    return Inputs(inputs.genes, x, inputs.known, inputs.positives, meta)


@dataclass
class Split:
    """Training, validation and test pairs; `unseen` marks the test genes held out of training
    (node split), `held` the validation genes (node split: held out of training too, so that
    validation mirrors the test); `fit` marks the genes the PCA is fit on."""

    kind: str
    seed: int
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    unseen: np.ndarray  # bool [N]
    held: np.ndarray | None = None  # bool [N]; None: no validation genes (edge split)

    @property
    def fit(self) -> np.ndarray:
        return ~self.unseen if self.held is None else ~(self.unseen | self.held)

    def counts(self) -> dict[str, int]:
        return {
            "train": len(self.train),
            "validation": len(self.validation),
            "test": len(self.test),
            "unseen_genes": int(self.unseen.sum()),
            **({"validation_genes": int(self.held.sum())} if self.held is not None else {}),
        }


def make_split(inputs: Inputs, config: AssociationConfig, kind: str, seed: int) -> Split:
    """Seeded split of the positives. Edge: pairs shuffled into test / validation / train.
    Node: `unseen_fraction` of the genes in positives held out for test, the next
    `validation_fraction` of them for validation; test pairs touch a test gene, validation pairs
    a validation gene (and no test gene), training pairs neither, so that settings and epochs are
    chosen on genes no training pair touches, as the test genes are."""
    rng = np.random.default_rng(seed)
    pos = inputs.positives
    unseen = np.zeros(inputs.n, dtype=bool)
    if kind == "none":
        empty = pos[:0]
        return Split(kind, seed, pos, empty, empty, unseen)
    if kind == "edge":
        order = rng.permutation(len(pos))
        n_test = round(config.test_fraction * len(pos))
        n_val = round(config.validation_fraction * len(pos))
        test, val, train = np.split(pos[order], [n_test, n_test + n_val])
        return Split(kind, seed, train, val, test, unseen)
    genes = rng.permutation(np.unique(pos))
    n_test = round(config.unseen_fraction * len(genes))
    unseen[genes[:n_test]] = True
    held = np.zeros(inputs.n, dtype=bool)
    held[genes[n_test : n_test + round(config.validation_fraction * len(genes))]] = True
    touches = unseen[pos[:, 0]] | unseen[pos[:, 1]]
    validates = ~touches & (held[pos[:, 0]] | held[pos[:, 1]])
    return Split(kind, seed, pos[~touches & ~validates], pos[validates], pos[touches], unseen, held)


def embed(features: np.ndarray, fit: np.ndarray, dim: int) -> tuple[np.ndarray, dict[str, Any]]:
    """PCA by exact SVD of the `fit` rows (centred on their mean), signs fixed so each
    component's largest loading is positive; every row projected, then L2-normalised. The same
    input gives the same bytes; the checksum goes in the run record."""
    x = features.astype(np.float64)
    mean = x[fit].mean(axis=0)
    _, s, vt = np.linalg.svd(x[fit] - mean, full_matrices=False)
    k = min(dim, int((s > 1e-10 * s[0]).sum()))
    components = vt[:k]
    flip = np.sign(components[np.arange(k), np.abs(components).argmax(axis=1)])
    components = components * flip[:, None]
    scores = (x - mean) @ components.T
    emb = (scores / np.maximum(np.linalg.norm(scores, axis=1, keepdims=True), 1e-8)).astype(np.float32)
    variance = s**2
    info = {
        "dim": k,
        "explained_variance": float(variance[:k].sum() / variance.sum()),
        "fit_genes": int(fit.sum()),
        "sha256": hashlib.sha256(emb.tobytes()).hexdigest(),
    }
    return emb, info


def degrees(n: int, pairs: np.ndarray) -> np.ndarray:
    """Unique partners of each gene in an unordered pair list."""
    return np.bincount(pairs.ravel(), minlength=n).astype(np.float64)


def sample_pairs(
    pool_a: np.ndarray,
    pool_b: np.ndarray,
    count: int,
    exclude: np.ndarray,
    n: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Up to `count` distinct unordered pairs (a from pool_a, b from pool_b, a ≠ b) whose key is
    not in the sorted array `exclude`."""
    chosen = np.zeros(0, dtype=np.int64)
    for _ in range(50):
        need = count - len(chosen)
        if need <= 0 or len(pool_a) == 0 or len(pool_b) == 0:
            break
        a = rng.choice(pool_a, size=2 * need + 16)
        b = rng.choice(pool_b, size=2 * need + 16)
        keys = pair_keys(np.column_stack([a, b]), n)[a != b]
        keys = keys[~np.isin(keys, exclude)]
        keys = keys[~np.isin(keys, chosen)]
        _, first = np.unique(keys, return_index=True)
        chosen = np.concatenate([chosen, keys[np.sort(first)][:need]])
    return np.column_stack([chosen // n, chosen % n]).astype(np.int64)


def negatives(inputs: Inputs, split: Split, ratio: int, rng: np.random.Generator, cap: int = 50_000) -> np.ndarray:
    """`ratio` negatives per test positive (at most `cap`), excluding every known pair at any
    score. Node split: the same shares of pairs with one and with two unseen genes as the test
    positives, so recognising training genes earns nothing."""
    exclude = inputs.known_keys
    everyone = np.arange(inputs.n)
    total = min(ratio * len(split.test), cap)
    if split.kind != "node":
        return sample_pairs(everyone, everyone, total, exclude, inputs.n, rng)
    unseen, seen = np.flatnonzero(split.unseen), np.flatnonzero(~split.unseen)
    both = split.unseen[split.test[:, 0]] & split.unseen[split.test[:, 1]]
    n_both = round(total * both.mean())
    return np.concatenate(
        [
            sample_pairs(unseen, unseen, n_both, exclude, inputs.n, rng),
            sample_pairs(unseen, seen, total - n_both, exclude, inputs.n, rng),
        ]
    )


def degree_matched_negatives(
    inputs: Inputs,
    positives: np.ndarray,
    status: np.ndarray,
    degree: np.ndarray,
    ratio: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """For each positive (a, b), `ratio` pairs (u, v) with u in a's and v in b's training-degree
    bin (powers of two) and the same `status` (e.g. seen or unseen in a node split); no known pair."""
    exclude = inputs.known_keys
    group = np.floor(np.log2(degree + 1)).astype(np.int64) * 3 + status
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], group, side="left")
    sizes = np.searchsorted(group[order], group, side="right") - starts
    a = np.repeat(positives[:, 0], ratio)
    b = np.repeat(positives[:, 1], ratio)
    chosen = np.zeros(0, dtype=np.int64)
    for _ in range(20):
        u = order[starts[a] + (rng.random(len(a)) * sizes[a]).astype(np.int64)]
        v = order[starts[b] + (rng.random(len(b)) * sizes[b]).astype(np.int64)]
        keys = pair_keys(np.column_stack([u, v]), inputs.n)
        ok = (u != v) & ~np.isin(keys, exclude) & ~np.isin(keys, chosen)
        _, first = np.unique(keys[ok], return_index=True)
        chosen = np.concatenate([chosen, keys[ok][np.sort(first)]])
        a, b = a[~ok], b[~ok]
        if len(a) == 0:
            break
    return np.column_stack([chosen // inputs.n, chosen % inputs.n]).astype(np.int64)


def both_unseen(inputs: Inputs, split: Split, ratio: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Node split: the test positives whose genes are both unseen, and `ratio` negatives per one
    among unseen genes only (no known pair). Neither gene has a training degree, so no degree
    prior helps here: the features must carry the association."""
    both = split.test[split.unseen[split.test[:, 0]] & split.unseen[split.test[:, 1]]]
    unseen = np.flatnonzero(split.unseen)
    return both, sample_pairs(unseen, unseen, min(ratio * len(both), 50_000), inputs.known_keys, inputs.n, rng)


def validation_negatives(inputs: Inputs, split: Split, ratio: int, rng: np.random.Generator) -> np.ndarray:
    """`ratio` negatives per validation pair, no known pair among them. Edge split: pairs of any
    two genes. Node split: degree-matched to the validation pairs (training-degree bins and
    validation-gene status) among genes no test pair needs, as the headline's test negatives are."""
    exclude = inputs.known_keys
    if split.held is None:
        everyone = np.arange(inputs.n)
        return sample_pairs(everyone, everyone, min(ratio * len(split.validation), 50_000), exclude, inputs.n, rng)
    status = split.held + 2 * split.unseen  # test genes form groups of their own: never drawn
    return degree_matched_negatives(inputs, split.validation, status, degrees(inputs.n, split.train), ratio, rng)


def ambiguous_pairs(inputs: Inputs, split: Split) -> np.ndarray:
    """Known pairs below the positives' rule (e.g. STRING 400–699 for a 700 threshold): reported
    as a band of their own, never used as negatives. In a node split, those touching an unseen
    gene, like the test positives."""
    band = inputs.known[~np.isin(pair_keys(inputs.known, inputs.n), pair_keys(inputs.positives, inputs.n))]
    if split.kind == "node":
        band = band[split.unseen[band[:, 0]] | split.unseen[band[:, 1]]]
    return band


def reference_negatives(inputs: Inputs, positives: np.ndarray, seed: int = 42) -> np.ndarray:
    """The reference protocol's negatives (methods/cal.md §6.1): `RandomState(seed)` pairs over
    all genes, rejected only when i = j or the pair is a positive; min(5·P, 50,000); not
    deduplicated. Kept only to compare with the paper."""
    rs = np.random.RandomState(seed)
    positive = set(pair_keys(positives, inputs.n).tolist())
    target = min(5 * len(positives), 50_000)
    found: list[tuple[int, int]] = []
    while len(found) < target:
        i, j = int(rs.randint(inputs.n)), int(rs.randint(inputs.n))
        if i != j and min(i, j) * inputs.n + max(i, j) not in positive:
            found.append((i, j))
    return np.asarray(found, dtype=np.int64)
