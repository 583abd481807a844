"""Sequences as model inputs (methods/isoclr.md §1): the six tracks of a spliced transcript, and
the k-mer and one-hot features of the baselines."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BASES = "ACGT"
_CODE = np.full(256, 255, dtype=np.uint8)
for _i, _b in enumerate(BASES):
    _CODE[ord(_b)] = _CODE[ord(_b.lower())] = _i
_CODE[ord("U")] = _CODE[ord("u")] = 3


def base_codes(sequence: str) -> np.ndarray:
    """0-3 for A, C, G, T/U; 255 for anything else."""
    return _CODE[np.frombuffer(sequence.encode("ascii", "replace"), dtype=np.uint8)]


def six_tracks(
    sequence: str, cds_start: int | None = None, cds_end: int | None = None, exon_ends: Sequence[int] | None = None
) -> np.ndarray:
    """uint8 [L, 6]: one-hot A, C, G, T (unknown bases all zero); 1 at the first nucleotide of
    every codon from `cds_start` to `cds_end` (1-based, inclusive); 1 at the last nucleotide of
    every exon (`exon_ends`, 1-based transcript coordinates, the last exon included)."""
    codes = base_codes(sequence)
    out = np.zeros((len(codes), 6), dtype=np.uint8)
    known = codes < 4
    out[np.flatnonzero(known), codes[known]] = 1
    if cds_start is not None and cds_end is not None and 1 <= cds_start <= cds_end:
        out[cds_start - 1 : min(cds_end, len(codes)) : 3, 4] = 1
    ends = np.asarray([e for e in (exon_ends or ()) if 1 <= e <= len(codes)], dtype=np.int64)
    out[ends - 1, 5] = 1
    return out


def kmer_counts(sequences: Sequence[str], k: int) -> np.ndarray:
    """float32 [N, 4^k]: each sequence's k-mer counts over its length (k-mers with an unknown
    base are skipped)."""
    out = np.zeros((len(sequences), 4**k), dtype=np.float32)
    for row, sequence in enumerate(sequences):
        codes = base_codes(sequence).astype(np.int64)
        if len(codes) < k:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(codes, k)
        valid = (windows < 4).all(axis=1)
        index = (windows[valid] * (4 ** np.arange(k - 1, -1, -1))).sum(axis=1)
        np.add.at(out[row], index, 1.0)
        out[row] /= max(len(codes), 1)
    return out


def one_hot_flat(sequences: Sequence[str], length: int | None = None) -> np.ndarray:
    """float32 [N, 4·length]: the one-hot nucleotides, zero-padded (or cut) to one length."""
    length = length or max((len(s) for s in sequences), default=0)
    out = np.zeros((len(sequences), length, 4), dtype=np.float32)
    for row, sequence in enumerate(sequences):
        codes = base_codes(sequence[:length])
        known = np.flatnonzero(codes < 4)
        out[row, known, codes[known]] = 1.0
    return out.reshape(len(sequences), -1)
