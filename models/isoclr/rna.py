"""IsoCLR's kind of item ("rna": transcripts packed as six-track inputs) for the shared evaluators:
the label sets of the `probe` (5'UTR ribosome load, 3'UTR stability, mRNA half-life of the run's
genes) with their groups, the one-hot and k-mer baselines, and the `isoforms` retrieval task
(is the nearest other transcript an isoform of the same gene?)."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from kgctl.core.errors import KgctlError
from kgctl.graph.similarity import unit_rows
from kgctl.models.evaluators import Context
from kgctl.models.isoclr.config import IsoCLRConfig
from kgctl.models.isoclr.data import Inputs, pack
from kgctl.models.isoclr.datasets import LabelledSequences, half_life, utr3_mpra, utr5_mrl
from kgctl.models.isoclr.encoding import kmer_counts, one_hot_flat, six_tracks
from kgctl.models.probing.evaluate import ProbeOptions
from kgctl.models.probing.labels import (
    FeatureBaseline,
    Labelled,
    LabelSet,
    register_features,
    register_label_set,
)
from kgctl.models.retrieval import Queries, RetrievalOptions, RetrievalTask, register_retrieval

KIND = "rna"
ONE_HOT_MAX = 2048  # one-hot baseline: the first this many nucleotides
FRACTIONS = "0.005,0.01,0.1,1"


def sequences(items: Inputs) -> list[str]:
    return [items.sequence(i) for i in range(items.n)]


def packed(data: LabelledSequences) -> Inputs:
    """Labelled sequences as inputs (one transcript each, no genes)."""
    arrays = [six_tracks(s) for s in data.sequences]
    return pack([str(i) for i in range(len(arrays))], ["all"], np.zeros(len(arrays)), np.zeros((0, 2)), arrays, {})


def config_of(ctx: Context) -> IsoCLRConfig:
    config = ctx.model.config
    assert isinstance(config, IsoCLRConfig)
    return config


def needs_file(name: str, options: ProbeOptions) -> Path:
    if not options.file:
        raise KgctlError(f"--labels {name} needs --file (see `kgctl evaluate --help`)")
    return Path(options.file)


class SequenceFile(LabelSet):
    """A labelled sequence file of ../shared/data/rna: its sequences (nucleotide tracks only), one
    label column (`--target`) and the groups its reader makes."""

    kind = KIND
    fractions = FRACTIONS
    default_target: ClassVar[str]

    @abstractmethod
    def read(self, file: Path) -> LabelledSequences: ...

    def load(self, options: ProbeOptions, ctx: Context) -> Labelled:
        file = needs_file(self.name, options)
        target = options.target or self.default_target
        data = self.read(file)
        if target not in data.labels:
            raise KgctlError(f"--target {target!r}: {file.name} has {', '.join(data.labels)}")
        name = f"{self.name}:{target} ({file.name})"
        return Labelled(name, packed(data), data.labels[target], data.groups, "pearson_r")


@register_label_set
class MRL(SequenceFile):
    name = "mrl"
    description = "5'UTR mean ribosome load (snv_phenotype_log_diff.csv), variants grouped by gene"
    default_target = "mrl"

    def read(self, file: Path) -> LabelledSequences:
        return utr5_mrl(file)


@register_label_set
class UTR3Stability(SequenceFile):
    name = "utr3-stability"
    description = "3'UTR MPRA stability (siegel_3utr_mpra.txt; --target jurkat or beas2b), fragments grouped by overlap"
    default_target = "jurkat"

    def read(self, file: Path) -> LabelledSequences:
        return utr3_mpra(file)


@register_label_set
class HalfLife(LabelSet):
    """One transcript per labelled gene of the run (its longest within max_length), grouped by
    homology group, so orthologs never sit on both sides of a split."""

    name = "half-life"
    kind = KIND
    description = "mRNA half-life of the run's genes (all_HLs_human_PC1.txt layout), grouped by homology"
    fractions = FRACTIONS

    def load(self, options: ProbeOptions, ctx: Context) -> Labelled:
        file = needs_file(self.name, options)
        inputs: Inputs = ctx.inputs
        if inputs.meta.get("source") != "graph":
            raise KgctlError(
                "--labels half-life reads the run's transcripts; "
                f"this run was pretrained on {inputs.meta.get('corpus')}"
            )
        labels = half_life(file)
        homology = inputs.homology()
        max_length = config_of(ctx).max_length
        chosen: dict[int, int] = {}
        for t in np.flatnonzero(inputs.lengths <= max_length):
            g = int(inputs.gene_of[t])
            if str(inputs.genes[g]) in labels and (g not in chosen or inputs.lengths[t] > inputs.lengths[chosen[g]]):
                chosen[g] = int(t)
        if len(chosen) < 20:
            raise KgctlError(f"{file}: only {len(chosen)} of the run's genes have a label")
        genes = sorted(chosen)
        rows = np.array([chosen[g] for g in genes])
        subset = pack(
            [str(inputs.ids[r]) for r in rows],
            [str(inputs.genes[g]) for g in genes],
            np.arange(len(rows)),
            np.zeros((0, 2)),
            [inputs.track(int(r)) for r in rows],
            {},
        )
        values = np.array([labels[str(inputs.genes[g])] for g in genes])
        return Labelled(f"half-life ({file.name})", subset, values, homology[genes], "pearson_r")


@register_features
class OneHot(FeatureBaseline):
    name = "onehot"
    kind = KIND
    description = f"one-hot nucleotides of the first {ONE_HOT_MAX} (zero-padded)"

    def features(self, items: Any) -> np.ndarray:
        found = sequences(items)
        return one_hot_flat(found, min(ONE_HOT_MAX, max(map(len, found))))


class Kmers(FeatureBaseline):
    kind = KIND
    k: int

    def features(self, items: Any) -> np.ndarray:
        return kmer_counts(sequences(items), self.k)


@register_features
class Kmer3(Kmers):
    name, k, description = "kmer3", 3, "3-mer counts over the length"


@register_features
class Kmer5(Kmers):
    name, k, description = "kmer5", 5, "5-mer counts over the length"


@dataclass
class Anchors(Queries):
    """Transcripts (within max_length) of genes with another one, as rows of the eligible ones."""

    eligible: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    anchors: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


@register_retrieval
class Isoforms(RetrievalTask[Anchors]):
    """For transcripts of genes with another transcript (at most `--limit` of them): is the
    nearest other transcript (cosine) an isoform of the same gene, and the AUC of their
    same-gene pairs against their pairs with every other transcript; no labels are read."""

    name = "isoforms"
    kind = KIND
    description = "the run's transcripts retrieve the other isoforms of their gene (cosine)"

    def queries(self, ctx: Context, options: RetrievalOptions) -> Anchors:
        inputs: Inputs = ctx.inputs
        eligible = np.flatnonzero(inputs.lengths <= config_of(ctx).max_length)
        gene = inputs.gene_of[eligible]
        counts = np.bincount(gene, minlength=len(inputs.genes))
        anchors = np.flatnonzero(counts[gene] >= 2)
        if len(anchors) > options.limit:
            anchors = np.sort(
                np.random.default_rng(ctx.model.config.seed).choice(anchors, options.limit, replace=False)
            )
        truth = [set(np.flatnonzero(gene == gene[a]).tolist()) - {int(a)} for a in anchors]
        facts: dict[str, Any] = {"transcripts": int(len(eligible))}
        if not len(anchors):
            facts["note"] = "no gene has two transcripts"
        return Anchors(truth, np.array([len(t) for t in truth]), len(eligible), facts, eligible, anchors)

    def scores(self, vectors: np.ndarray, asked: Anchors, options: RetrievalOptions) -> np.ndarray:
        v = unit_rows(vectors[asked.eligible])
        similarity = v[asked.anchors] @ v.T
        similarity[np.arange(len(asked.anchors)), asked.anchors] = -np.inf
        return np.asarray(similarity)

    def baselines(self, ctx: Context, asked: Anchors, options: RetrievalOptions) -> dict[str, np.ndarray]:
        return {"kmer5": self.scores(Kmer5().features(ctx.inputs), asked, options)}
