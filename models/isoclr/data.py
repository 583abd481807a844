"""IsoCLR's inputs: transcripts as six-track arrays (concatenated, with offsets), their gene and
the orthologs between genes, from the `transcripts` view or from a sequence corpus file. Saved
in the run folder, so training workers, evaluation and prediction need no Neo4j."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection
from kgctl.graph.export import HeteroView, export_view
from kgctl.models.base import ArrayInputs
from kgctl.models.isoclr.config import IsoCLRConfig
from kgctl.models.isoclr.datasets import corpus_of, union_find
from kgctl.models.isoclr.encoding import six_tracks

# The corpus files' terms (../shared/data/README.md): Saluki paper repository, Apache-2.0; Sample
# et al.'s human_5utr_modeling repository, GPL-3.0.
CORPUS_LICENCES = {"utr3-stability": "Apache-2.0", "mrl": "GPL-3.0"}


@dataclass
class Inputs(ArrayInputs):
    ids: np.ndarray  # str [N]: transcript ids
    genes: np.ndarray  # str [G]: gene ids (or corpus groups)
    gene_of: np.ndarray  # int64 [N]: each transcript's gene
    orthologs: np.ndarray  # int64 [E, 2]: gene pairs
    tracks: np.ndarray  # uint8 [sum of lengths, 6]
    offsets: np.ndarray  # int64 [N + 1]
    meta: dict[str, Any]

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def track(self, i: int) -> np.ndarray:
        return self.tracks[self.offsets[i] : self.offsets[i + 1]]

    def sequence(self, i: int) -> str:
        codes = self.track(i)[:, :4]
        letters = np.array(list("ACGTN"))
        return "".join(letters[np.where(codes.any(1), codes.argmax(1), 4)])

    def homology(self) -> np.ndarray:
        """int64 [G]: each gene's homology group (the gene and its orthologs, transitively)."""
        return union_find(len(self.genes), map(tuple, self.orthologs.tolist()))

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for array in (self.gene_of, self.orthologs, self.offsets, self.tracks):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def pack(
    ids: list[str],
    genes: list[str],
    gene_of: np.ndarray,
    orthologs: np.ndarray,
    arrays: list[np.ndarray],
    meta: dict[str, Any],
) -> Inputs:
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(a) for a in arrays])
    tracks = np.concatenate(arrays) if arrays else np.zeros((0, 6), dtype=np.uint8)
    return Inputs(
        np.array(ids, dtype=str),
        np.array(genes, dtype=str),
        gene_of.astype(np.int64),
        orthologs.reshape(-1, 2).astype(np.int64),
        tracks,
        offsets,
        meta,
    )


def _pairs(view: HeteroView, key: tuple[str, str, str]) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) node indices of one relationship of the view (none: empty)."""
    if key not in view.edges:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    src, dst, _ = view.edges[key]
    return src.astype(np.int64), dst.astype(np.int64)


def from_view(view: HeteroView) -> Inputs:
    """Transcripts with their structure, the gene each is an isoform of, and orthologs between
    genes. A gene node named by an Ensembl id (an ortholog's end) is the same gene as the
    transcripts whose `gene_id` it is, so mouse transcripts join their human orthologs."""
    ids = view.nodes["Transcript"]
    if not ids:
        raise KgctlError(
            "the transcripts view has no Transcript nodes: ingest a transcript FASTA "
            "and GTF first (`kgctl ingest transcripts`), or set --corpus"
        )
    table = view.tables["Transcript"].to_pydict()
    gene_nodes = view.nodes["Gene"]
    src, dst = _pairs(view, ("Transcript", "ISOFORM_OF", "Gene"))
    gene_of = np.full(len(ids), -1, dtype=np.int64)
    gene_of[src] = dst
    keep = np.flatnonzero(gene_of >= 0)
    by_id = {g: i for i, g in enumerate(gene_nodes)}
    pairs = list(zip(*_pairs(view, ("Gene", "ORTHOLOG_OF", "Gene")), strict=True))
    for t in keep:  # the Ensembl-named node of a transcript's gene, if the graph has one
        alias = by_id.get(str(table["gene_id"][t] or ""))
        if alias is not None and alias != gene_of[t]:
            pairs.append((gene_of[t], alias))
    arrays = [
        six_tracks(table["sequence"][t], table["cds_start"][t], table["cds_end"][t], table["exon_ends"][t])
        for t in keep
    ]
    meta = {
        "source": "graph",
        **{k: view.meta[k] for k in ("fingerprint", "nodes", "relationships", "licences")},
        "transcripts": len(keep),
        "without_gene": int(len(ids) - len(keep)),
    }
    return pack([ids[t] for t in keep], list(gene_nodes), gene_of[keep], np.array(pairs, dtype=np.int64), arrays, meta)


def from_corpus(path: Path) -> Inputs:
    """A file's sequences (labels never read), one group per overlapping-fragment set (3'UTR)
    or gene (5'UTR): the positives of a pair are two different members of one group."""
    data = corpus_of(path)
    arrays = [six_tracks(s) for s in data.sequences]
    names = [f"g{g}" for g in range(int(data.groups.max()) + 1)]
    meta = {
        "source": "corpus",
        "corpus": str(path),
        "corpus_kind": data.name,
        "transcripts": len(arrays),
        "licences": [CORPUS_LICENCES[data.name]],
        "fingerprint": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
    return pack(
        [f"{data.name}:{i}" for i in range(len(arrays))],
        names,
        data.groups,
        np.zeros((0, 2), dtype=np.int64),
        arrays,
        meta,
    )


def collect_inputs(conn: Connection, config: IsoCLRConfig, views: Path) -> Inputs:
    if config.corpus:
        return from_corpus(Path(config.corpus))
    view = export_view(conn, "transcripts", views / "transcripts")
    assert isinstance(view, HeteroView)
    return from_view(view)
