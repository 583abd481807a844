"""The real RNA sets of `../shared/data/rna` in their own formats, with the groups their splits
and pretraining pairs respect: 3'UTR MPRA fragments grouped by overlap (tiles and variants of one
UTR share long k-mers), 5'UTR variants grouped by gene, half-life labels by Ensembl gene."""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kgctl.core.errors import KgctlError

OVERLAP_K = 40  # fragments sharing a 40-mer come from one UTR (random 40-mers do not repeat)


@dataclass
class LabelledSequences:
    """Sequences with one or more label columns (NaN: not measured) and a group per sequence."""

    name: str
    sequences: list[str]
    labels: dict[str, np.ndarray]
    groups: np.ndarray  # int64 [N]
    source: str


def union_find(n: int, pairs: Iterable[tuple[int, int]]) -> np.ndarray:
    """Connected components of `pairs` over n items, numbered 0.. by first appearance."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = [root(i) for i in range(n)]
    _, numbered = np.unique(roots, return_inverse=True)
    return numbered.astype(np.int64)


def overlap_groups(sequences: Sequence[str], k: int = OVERLAP_K) -> np.ndarray:
    """Groups of sequences linked by a shared k-mer (low-complexity k-mers, e.g. poly-A, are
    skipped: they join unrelated UTRs)."""
    first: dict[str, int] = {}
    pairs: list[tuple[int, int]] = []
    for i, s in enumerate(sequences):
        for j in range(0, len(s) - k + 1):
            kmer = s[j : j + k]
            if len({kmer[x : x + 3] for x in range(0, k - 2, 3)}) < 6:
                continue
            seen = first.setdefault(kmer, i)
            if seen != i:
                pairs.append((seen, i))
    return union_find(len(sequences), pairs)


def _read(path: Path, **kwargs: object) -> pd.DataFrame:
    try:
        frame: pd.DataFrame = pd.read_csv(path, **kwargs)
        return frame
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise KgctlError(f"{path}: {exc}") from exc


def utr3_mpra(path: Path) -> LabelledSequences:
    """Siegel et al. 2022 3'UTR reporter stability (no header: sequence, Jurkat, Beas2B)."""
    frame = _read(path, sep="\t", header=None, na_values=["NA"])
    if frame.shape[1] != 3 or not frame[0].astype(str).str.fullmatch(r"[ACGTN]+").all():
        raise KgctlError(
            f"{path}: expected 3 tab-separated columns (3'UTR sequence, Jurkat, "
            "Beas2B stability) and DNA sequences in the first"
        )
    sequences = frame[0].astype(str).tolist()
    labels = {"jurkat": frame[1].to_numpy(np.float64), "beas2b": frame[2].to_numpy(np.float64)}
    return LabelledSequences("utr3-stability", sequences, labels, overlap_groups(sequences), str(path))


def utr5_mrl(path: Path) -> LabelledSequences:
    """Sample et al. 2019 human 5'UTR variants: the 50-nt `utr` and its mean ribosome load
    (`hrl`), grouped by gene (and by reference UTR, which joins a gene's variants)."""
    frame = _read(path)
    missing = {"utr", "hrl", "gene_symbol", "mother"} - set(frame.columns)
    if missing:
        raise KgctlError(f"{path}: missing columns {sorted(missing)} (a 5'UTR variant table)")
    genes = frame["gene_symbol"].fillna(frame["mother"]).astype(str)
    keys = {key: i for i, key in enumerate(pd.unique(pd.concat([genes, frame["mother"].astype(str)])))}
    pairs = [(keys[g], keys[m]) for g, m in zip(genes, frame["mother"].astype(str), strict=True)]
    by_key = union_find(len(keys), pairs)
    groups = np.array([by_key[keys[g]] for g in genes], dtype=np.int64)
    _, groups = np.unique(groups, return_inverse=True)
    return LabelledSequences(
        "mrl",
        frame["utr"].astype(str).tolist(),
        {"mrl": frame["hrl"].to_numpy(np.float64)},
        groups.astype(np.int64),
        str(path),
    )


def corpus_of(path: Path) -> LabelledSequences:
    """A pretraining corpus file: the 5'UTR CSV (a header with `utr`) or the 3'UTR MPRA table."""
    try:
        with path.open("rb") as handle:
            zipped = handle.read(2) == b"\x1f\x8b"
        with gzip.open(path, "rt") if zipped else path.open() as text:
            first = text.readline()
    except OSError as exc:
        raise KgctlError(f"{path}: {exc}") from exc
    if "utr" in first.split(","):
        return utr5_mrl(path)
    return utr3_mpra(path)


def half_life(path: Path) -> dict[str, float]:
    """Half-life labels by Ensembl gene id and by gene symbol (Agarwal & Kelley's
    `all_HLs_human_PC1.txt` layout: ensembl_gene_id, external_gene_name, value)."""
    frame = _read(path, sep="\t")
    if frame.shape[1] < 3 or "ensembl_gene_id" not in frame.columns:
        raise KgctlError(f"{path}: expected columns ensembl_gene_id, external_gene_name, half-life")
    value = frame.columns[2]
    out: dict[str, float] = {}
    for ensembl, name, v in zip(frame["ensembl_gene_id"], frame.iloc[:, 1], frame[value], strict=True):
        if pd.notna(v):
            out[str(ensembl)] = float(v)
            if isinstance(name, str) and name:
                out.setdefault(name, float(v))
    return out
