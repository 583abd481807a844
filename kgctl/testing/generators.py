"""Generators for inputs that `../shared/data` lacks, written in the exact real formats so the
same adapters read them: Replogle-style Perturb-seq pseudo-bulk `.h5ad`, JUMP / Cell Painting
profiles, GENCODE transcript FASTA + GTF, and STRING files of any size (for benchmarks).

Every generator is deterministic for a seed. `python -m kgctl.testing.generators KIND OUT [--…]` writes one;
`planted_modules` writes the demo's data set (`kgctl demo`).
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import pandas as pd

CHANNELS_FULL = (
    "neighborhood",
    "neighborhood_transferred",
    "fusion",
    "cooccurence",
    "homology",
    "coexpression",
    "coexpression_transferred",
    "experiments",
    "experiments_transferred",
    "database",
    "database_transferred",
    "textmining",
    "textmining_transferred",
)
CELL_PAINTING_COMPARTMENTS = ("Cells", "Cytoplasm", "Nuclei")
CELL_PAINTING_MEASURES = (
    "AreaShape_Area",
    "AreaShape_Eccentricity",
    "Intensity_MeanIntensity_DNA",
    "Intensity_MeanIntensity_ER",
    "Intensity_MeanIntensity_Mito",
    "Texture_Contrast_RNA_3_00_256",
    "Granularity_1_AGP",
    "Correlation_Correlation_DNA_ER",
)


@contextmanager
def gzip_text(path: Path, level: int = 9) -> Iterator[TextIO]:
    """A text handle writing gzip without a stored name or timestamp: the same content gives the
    same bytes (and the same sha256, so a re-ingest is recognised)."""
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=level) as packed,
        io.TextIOWrapper(packed, encoding="utf-8") as text,
    ):
        yield text


def gene_symbols(n: int) -> list[str]:
    """Plausible, unique HGNC-style symbols."""
    stems = ("KIF", "RPL", "MAPK", "SLC", "ZNF", "CDK", "POLR", "NDUF", "PSM", "ATP")
    return [f"{stems[i % len(stems)]}{i // len(stems) + 1}" for i in range(n)]


def ensembl_ids(n: int, prefix: str = "ENSG", start: int = 100_000) -> list[str]:
    return [f"{prefix}{start + i:011d}" for i in range(n)]


def perturbseq_h5ad(
    path: Path,
    *,
    n_perturbations: int = 40,
    n_readout: int = 60,
    n_controls: int = 3,
    seed: int = 0,
    targets: Sequence[str] | None = None,
    readout: Sequence[str] | None = None,
    profiles: np.ndarray | None = None,
) -> Path:
    """A pseudo-bulk Perturb-seq AnnData as Replogle et al. 2022 publish it (e.g.
    `K562_essential_normalized_bulk_01.h5ad`): perturbations × read-out genes, z-normalised,
    obs index `<id>_<GENE>_<sgRNA pair>_<ENSG>`, non-targeting controls, var indexed by Ensembl id
    with a `gene_name` column. `profiles` (targets × read-out) replaces the random responses."""
    import anndata as ad

    rng = np.random.default_rng(seed)
    readout = list(readout) if readout is not None else gene_symbols(n_readout)
    n_readout = len(readout)
    readout_ids = ensembl_ids(n_readout)
    targets = list(targets) if targets is not None else readout[:n_perturbations]
    readout_index = {g: j for j, g in enumerate(readout)}
    target_ids = [
        readout_ids[readout_index[t]] if t in readout_index else ensembl_ids(1, start=900_000 + i)[0]
        for i, t in enumerate(targets)
    ]
    names, obs_rows = [], []
    for i, (gene, gid) in enumerate(zip(targets, target_ids, strict=True)):
        names.append(f"{1000 + i}_{gene}_P1P2_{gid}")
        obs_rows.append(
            {
                "gene": gene,
                "gene_id": gid,
                "transcript": "P1P2",
                "gene_transcript": f"{1000 + i}_{gene}_P1P2_{gid}",
                "UMI_count_unfiltered": int(rng.integers(5_000, 20_000)),
                "num_cells_unfiltered": int(rng.integers(50, 300)),
                "num_cells_filtered": int(rng.integers(40, 250)),
            }
        )
    for j in range(n_controls):
        name = f"{9000 + j}_non-targeting_non-targeting_non-targeting"
        names.append(name)
        obs_rows.append(
            {
                "gene": "non-targeting",
                "gene_id": "non-targeting",
                "transcript": "non-targeting",
                "gene_transcript": name,
                "UMI_count_unfiltered": int(rng.integers(5_000, 20_000)),
                "num_cells_unfiltered": int(rng.integers(500, 3000)),
                "num_cells_filtered": int(rng.integers(400, 2500)),
            }
        )
    x = rng.normal(0, 1, size=(len(names), n_readout)).astype(np.float32)
    if profiles is not None:
        x[: len(targets)] = profiles
    for i, gene in enumerate(targets):  # knockdown of the target itself
        if gene in readout_index:
            x[i, readout_index[gene]] -= 4.0
    x[len(targets) :] *= 0.1
    obs = pd.DataFrame(obs_rows, index=pd.Index(names, name="gene_transcript_id"))
    var = pd.DataFrame(
        {"gene_name": readout, "mean": rng.random(n_readout), "std": rng.random(n_readout) + 0.5, "in_matrix": True},
        index=pd.Index(readout_ids, name="gene_id"),
    )
    adata = ad.AnnData(X=x, obs=obs, var=var)
    path.parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(path)
    return path


def cell_painting_profiles(
    path: Path,
    *,
    compounds: Sequence[str],
    genes: Sequence[str] = (),
    replicates: int = 2,
    n_dmso: int = 4,
    seed: int = 0,
    plate: str = "BR00117010",
    source: str = "source_4",
) -> Path:
    """Well-level JUMP / Cell Painting profiles (`Metadata_*` columns, then CellProfiler features
    `<Compartment>_<Measure>`), one row per well: compound wells by InChIKey, ORF/CRISPR wells by
    gene symbol, DMSO negative controls. Parquet or CSV(.gz) by the file name."""
    rng = np.random.default_rng(seed)
    features = [f"{c}_{m}" for c in CELL_PAINTING_COMPARTMENTS for m in CELL_PAINTING_MEASURES]
    rows = []
    wells = (f"{r}{c:02d}" for r in "ABCDEFGHIJKLMNOP" for c in range(1, 25))
    perts = [("compound", k) for k in compounds] + [("orf", g) for g in genes]
    for kind, ident in [*(p for p in perts for _ in range(replicates)), *[("negcon", "")] * n_dmso]:
        row = {
            "Metadata_Source": source,
            "Metadata_Plate": plate,
            "Metadata_Well": next(wells),
            "Metadata_pert_type": {"compound": "trt", "orf": "trt", "negcon": "control"}[kind],
            "Metadata_InChIKey": ident
            if kind == "compound"
            else ("IAZDPXIOMUYVGZ-UHFFFAOYSA-N" if kind == "negcon" else ""),
            "Metadata_Symbol": ident if kind == "orf" else "",
            "Metadata_control_type": "negcon" if kind == "negcon" else "",
            "Metadata_mmoles_per_liter": 10.0 if kind == "compound" else 0.0,
        }
        row.update({f: float(v) for f, v in zip(features, rng.normal(0, 1, len(features)), strict=True)})
        rows.append(row)
    frame = pd.DataFrame(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


@dataclass
class TranscriptModel:
    """One spliced transcript: its ids, exons in genome coordinates (+ strand, in order), the
    spliced sequence and the CDS in transcript coordinates (1-based, inclusive)."""

    tid: str
    gid: str
    symbol: str
    name: str
    chrom: str
    exons: list[tuple[int, int]]
    sequence: str
    cds: tuple[int, int]


def write_gencode(
    fasta: Path, gtf: Path, models: Sequence[TranscriptModel], release: str = "44", genome: str = "GRCh38"
) -> tuple[Path, Path]:
    """GENCODE `pc_transcripts.fa` (header `>ENST…|ENSG…|OTTHUMG…|OTTHUMT…|NAME-201|NAME|len|
    UTR5:a-b|CDS:c-d|UTR3:e-f|`) and the matching GTF (gene, transcript, exon, CDS lines); gzip
    when the name ends in .gz."""
    fa_lines: list[str] = []
    gtf_lines = [
        f"##description: evidence-based annotation of the genome ({genome}), version {release}",
        "##provider: GENCODE",
        "##format: gtf",
    ]
    seen_genes: set[str] = set()
    for serial, m in enumerate(models):
        length, (c0, c1) = len(m.sequence), m.cds
        gene_attr = f'gene_id "{m.gid}.1"; gene_type "protein_coding"; gene_name "{m.symbol}";'
        if m.gid not in seen_genes:
            seen_genes.add(m.gid)
            span = [(e[0], e[1]) for x in models if x.gid == m.gid for e in x.exons]
            gtf_lines.append(
                f"{m.chrom}\tHAVANA\tgene\t{min(a for a, _ in span)}\t"
                f"{max(b for _, b in span)}\t.\t+\t.\t{gene_attr} level 2;"
            )
        fa_lines.append(
            f">{m.tid}.1|{m.gid}.1|OTTHUMG{serial:011d}.1|OTTHUMT{serial:011d}.1|{m.name}|"
            f"{m.symbol}|{length}|UTR5:1-{c0 - 1}|CDS:{c0}-{c1}|UTR3:{c1 + 1}-{length}|"
        )
        fa_lines += [m.sequence[i : i + 60] for i in range(0, length, 60)]
        tx_attr = (
            f'{gene_attr[:-1]}; transcript_id "{m.tid}.1"; transcript_type "protein_coding"; '
            f'transcript_name "{m.name}";'
        )
        gtf_lines.append(
            f"{m.chrom}\tHAVANA\ttranscript\t{m.exons[0][0]}\t{m.exons[-1][1]}\t.\t+\t.\t{tx_attr} level 2;"
        )
        tpos = 0
        for number, (lo_g, hi_g) in enumerate(m.exons, 1):
            exon_len = hi_g - lo_g + 1
            gtf_lines.append(f"{m.chrom}\tHAVANA\texon\t{lo_g}\t{hi_g}\t.\t+\t.\t{tx_attr} exon_number {number};")
            lo, hi = max(tpos + 1, c0), min(tpos + exon_len, c1)
            if lo <= hi:
                gtf_lines.append(
                    f"{m.chrom}\tHAVANA\tCDS\t{lo_g + lo - tpos - 1}\t{lo_g + hi - tpos - 1}"
                    f"\t.\t+\t0\t{tx_attr} exon_number {number};"
                )
            tpos += exon_len
    for path, lines in ((fasta, fa_lines), (gtf, gtf_lines)):
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".gz":
            with gzip_text(path) as handle:
                handle.write("\n".join(lines) + "\n")
        else:
            path.write_text("\n".join(lines) + "\n")
    return fasta, gtf


def transcripts(fasta: Path, gtf: Path, *, genes: Sequence[str], isoforms: int = 2, seed: int = 0) -> tuple[Path, Path]:
    """A small GENCODE FASTA + GTF: `isoforms` random transcripts per gene."""
    rng = np.random.default_rng(seed)
    models: list[TranscriptModel] = []
    for g, (symbol, gid) in enumerate(zip(genes, ensembl_ids(len(genes)), strict=True)):
        base = 1_000_000 + g * 100_000
        for k in range(isoforms):
            lengths = [int(x) for x in rng.integers(80, 400, size=int(rng.integers(2, 6)))]
            length = sum(lengths)
            utr5 = int(rng.integers(20, 60))
            cds_len = ((length - utr5 - 20) // 3) * 3
            seq = "".join(rng.choice(list("ACGT"), size=length))
            seq = seq[:utr5] + "ATG" + seq[utr5 + 3 :]
            exons, pos = [], base + k * 1000
            for exon_len in lengths:
                exons.append((pos, pos + exon_len - 1))
                pos += exon_len - 1 + 2000
            models.append(
                TranscriptModel(
                    f"ENST{500_000 + len(models) + 1:011d}",
                    gid,
                    symbol,
                    f"{symbol}-{201 + k}",
                    f"chr{g % 22 + 1}",
                    exons,
                    seq,
                    (utr5 + 1, utr5 + cds_len),
                )
            )
    return write_gencode(fasta, gtf, models)


# Codons split into an "optimal" and a "non-optimal" half: a gene's share of optimal codons is one
# planted determinant of its half-life (codon optimality stabilises mRNA).
SENSE = [a + b + c for a in "ACGT" for b in "ACGT" for c in "ACGT" if a + b + c not in ("TAA", "TAG", "TGA")]
OPTIMAL = [c for c in SENSE if c[2] in "GC"]
NONOPTIMAL = [c for c in SENSE if c[2] in "AT"]


@dataclass
class Transcriptome:
    """The files of `transcriptome` and the planted half-life of each human gene."""

    human_fasta: Path
    human_gtf: Path
    mouse_fasta: Path
    mouse_gtf: Path
    orthologs: Path
    half_life: Path
    genes: list[str]

    @property
    def transcript_files(self) -> list[Path]:
        """What `kgctl ingest transcripts` reads in one run (the half-life labels are not)."""
        return [self.human_fasta, self.human_gtf, self.mouse_fasta, self.mouse_gtf, self.orthologs]


def _random_seq(rng: np.random.Generator, n: int, at: float = 0.5) -> str:
    p = [at / 2, (1 - at) / 2, (1 - at) / 2, at / 2]  # A, C, G, T
    return "".join(rng.choice(list("ACGT"), size=n, p=p))


def transcriptome(
    out: Path, *, genes: int = 300, ortholog_share: float = 0.5, cds_codons: tuple[int, int] = (100, 300), seed: int = 0
) -> Transcriptome:
    """A GENCODE-style human and mouse transcriptome with splice isoforms (exon skipping within
    the CDS, in frame), 1:1 orthologs (mouse copies with 8 % substitutions) in Saluki's ortholog
    table layout, and a half-life per human gene (`all_HLs_human_PC1.txt` layout) planted in the
    sequence: more optimal codons lengthen it, AU-rich elements (ATTTA) in the 3'UTR and a
    longer 3'UTR shorten it."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    symbols = gene_symbols(genes)
    human_ids, mouse_ids = ensembl_ids(genes), ensembl_ids(genes, "ENSMUSG")
    human: list[TranscriptModel] = []
    mouse: list[TranscriptModel] = []
    traits: list[tuple[float, int, int]] = []
    ortholog_rows: list[str] = []
    for g, symbol in enumerate(symbols):
        optimality, are_rate = float(rng.uniform(0.1, 0.9)), float(rng.uniform(0, 5))
        utr5 = _random_seq(rng, int(rng.integers(40, 120)))
        codons = (
            ["ATG"]
            + [
                str(rng.choice(OPTIMAL if rng.random() < optimality else NONOPTIMAL))
                for _ in range(int(rng.integers(*cds_codons)))
            ]
            + ["TAA"]
        )
        utr3 = list(_random_seq(rng, int(rng.integers(150, 600)), at=float(rng.uniform(0.45, 0.65))))
        ares = int(rng.poisson(are_rate))
        for at in rng.choice(max(len(utr3) - 5, 1), size=ares, replace=False):
            utr3[at : at + 5] = list("ATTTA")
        utr3_seq = "".join(utr3)
        traits.append((optimality, utr3_seq.count("ATTTA"), len(utr3_seq)))
        cuts = np.sort(rng.choice(np.arange(10, len(codons) - 10), size=int(rng.integers(2, 7)), replace=False))
        chunks = ["".join(codons[a:b]) for a, b in zip([0, *cuts], [*cuts, len(codons)], strict=True)]
        exon_seqs = [utr5 + chunks[0], *chunks[1:-1], chunks[-1] + utr3_seq]
        kept_sets = [list(range(len(exon_seqs)))]
        inner = list(range(1, len(exon_seqs) - 1))
        for _ in range(int(rng.integers(0, 4))):
            drop = set(rng.choice(inner, size=int(rng.integers(1, max(2, len(inner)))), replace=False).tolist())
            kept = [e for e in range(len(exon_seqs)) if e not in drop]
            if kept not in kept_sets:
                kept_sets.append(kept)
        starts, pos = [], 1_000_000 + g * 200_000
        for s in exon_seqs:
            starts.append(pos)
            pos += len(s) + int(rng.integers(500, 3000))
        chrom = f"chr{g % 22 + 1}"
        cds_len = 3 * len(codons)
        for k, kept in enumerate(kept_sets):
            seq = "".join(exon_seqs[e] for e in kept)
            exons = [(starts[e], starts[e] + len(exon_seqs[e]) - 1) for e in kept]
            skipped = sum(len(exon_seqs[e]) for e in range(len(exon_seqs)) if e not in kept)
            cds = (len(utr5) + 1, len(utr5) + cds_len - skipped)
            tid = f"ENST{500_000 + len(human) + 1:011d}"
            human.append(TranscriptModel(tid, human_ids[g], symbol, f"{symbol}-{201 + k}", chrom, exons, seq, cds))
            if g < ortholog_share * genes:
                mutated = np.array(list(seq))
                hits = rng.random(len(seq)) < 0.08
                mutated[hits] = rng.choice(list("ACGT"), size=int(hits.sum()))
                mouse_symbol = symbol.capitalize()
                mouse.append(
                    TranscriptModel(
                        f"ENSMUST{500_000 + len(mouse) + 1:011d}",
                        mouse_ids[g],
                        mouse_symbol,
                        f"{mouse_symbol}-{201 + k}",
                        chrom,
                        exons,
                        "".join(mutated),
                        cds,
                    )
                )
        if g < ortholog_share * genes:
            ortholog_rows.append(
                f"{human_ids[g]}\t{mouse_ids[g]}\tortholog_one2one\t{rng.uniform(0, 10):.3f}\t{rng.uniform(0, 10):.3f}"
            )
    opt, are, utr_len = (np.array(v, dtype=float) for v in zip(*traits, strict=True))

    def z(v: np.ndarray) -> np.ndarray:
        return np.asarray((v - v.mean()) / (v.std() or 1.0))

    life = 2.0 * z(opt) - 1.0 * z(are) - 0.6 * z(np.log(utr_len)) + rng.normal(0, 0.5, genes)
    paths = write_gencode(out / "gencode.v44.pc_transcripts.fa.gz", out / "gencode.v44.annotation.gtf.gz", human)
    mouse_paths = write_gencode(
        out / "gencode.vM33.pc_transcripts.fa.gz", out / "gencode.vM33.annotation.gtf.gz", mouse, "M33", "GRCm39"
    )
    orthologs = out / "1to1_orthologs_expression.txt"
    orthologs.write_text("\n".join(ortholog_rows) + "\n")
    half = out / "all_HLs_human_PC1.txt"
    pd.DataFrame({"ensembl_gene_id": human_ids, "external_gene_name": symbols, "human_PC1": np.round(life, 4)}).to_csv(
        half, sep="\t", index=False
    )
    return Transcriptome(*paths, *mouse_paths, orthologs, half, symbols)


def string_files(
    directory: Path, *, n_proteins: int, n_lines: int, seed: int = 0, taxon: str = "9606"
) -> tuple[Path, Path]:
    """STRING v12 `protein.links.full` (both directions of every pair, sorted by protein1) and
    `protein.info`, gzip-compressed, with `n_lines` link lines in all (streamed to disk)."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    proteins = [f"{taxon}.ENSP{i:011d}" for i in range(n_proteins)]
    symbols = gene_symbols(n_proteins)
    info = directory / f"{taxon}.protein.info.v12.0.txt.gz"
    with gzip_text(info) as handle:
        handle.write("#string_protein_id\tpreferred_name\tprotein_size\tannotation\n")
        for p, s in zip(proteins, symbols, strict=True):
            handle.write(f"{p}\t{s}\t{int(rng.integers(50, 3000))}\tannotation of {s}\n")
    per_protein = max(1, n_lines // (2 * n_proteins))
    links = directory / f"{taxon}.protein.links.full.v12.0.txt.gz"
    # Protein i links to i±1 … i±per_protein (mod n): every pair once, written in both directions
    # and sorted by protein1, as STRING does; scores depend only on the pair, so both agree.
    offsets = np.arange(1, per_protein + 1)
    channel_keys = np.arange(1, len(CHANNELS_FULL) + 2, dtype=np.int64) * 7919
    with gzip_text(links, level=1) as handle:
        handle.write("protein1 protein2 " + " ".join(CHANNELS_FULL) + " combined_score\n")
        for i in range(n_proteins):
            partners = np.unique(np.concatenate([(i + offsets) % n_proteins, (i - offsets) % n_proteins]))
            partners = partners[partners != i]
            lo, hi = np.minimum(i, partners), np.maximum(i, partners)
            mixed = (lo[:, None] * 1_000_003 + hi[:, None] * 999_983 + channel_keys) % 1_000_033
            scores = mixed % 1001
            scores[:, :-1] = np.where(mixed[:, :-1] % 3 == 0, scores[:, :-1], 0)  # sparse channels
            scores[:, -1] = 150 + scores[:, -1] % 850
            handle.write(
                "".join(
                    f"{proteins[i]} {proteins[p]} {' '.join(map(str, row))}\n"
                    for p, row in zip(partners.tolist(), scores.tolist(), strict=True)
                )
            )
    return info, links


def write_string(
    directory: Path,
    symbols: Sequence[str],
    pairs: np.ndarray,
    channels: np.ndarray,
    *,
    seed: int = 0,
    taxon: str = "9606",
) -> tuple[Path, Path]:
    """STRING v12 `protein.info` and `protein.links.full` for given unordered pairs [P, 2] (indices
    into `symbols`) and their channel scores [P, len(CHANNELS_FULL)]. The combined score follows
    STRING's rule (prior 0.041, channels combined as independent evidence); every pair is written
    in both directions, sorted by protein1."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    proteins = [f"{taxon}.ENSP{i:011d}" for i in range(len(symbols))]
    info = directory / f"{taxon}.protein.info.v12.0.txt.gz"
    with gzip_text(info) as handle:
        handle.write("#string_protein_id\tpreferred_name\tprotein_size\tannotation\n")
        for protein, symbol in zip(proteins, symbols, strict=True):
            handle.write(f"{protein}\t{symbol}\t{int(rng.integers(50, 3000))}\tannotation of {symbol}\n")
    prior = 0.041
    evidence = np.clip((channels / 1000 - prior) / (1 - prior), 0, 1)
    combined = 1 - np.prod(1 - evidence, axis=1)
    combined = np.round(1000 * (combined + prior * (1 - combined))).astype(np.int64)
    both = np.concatenate([pairs, pairs[:, ::-1]])
    rows = np.concatenate([np.column_stack([channels, combined])] * 2)
    order = np.lexsort((both[:, 1], both[:, 0]))
    links = directory / f"{taxon}.protein.links.full.v12.0.txt.gz"
    with gzip_text(links) as handle:
        handle.write("protein1 protein2 " + " ".join(CHANNELS_FULL) + " combined_score\n")
        handle.write(
            "".join(
                f"{proteins[a]} {proteins[b]} {' '.join(map(str, row))}\n"
                for (a, b), row in zip(both[order].tolist(), rows[order].tolist(), strict=True)
            )
        )
    return info, links


DEMO_SMILES = (
    ("aspirin", "CC(=O)Oc1ccccc1C(=O)O"),
    ("caffeine", "Cn1cnc2c1c(=O)n(C)c(=O)n2C"),
    ("ibuprofen", "CC(C)Cc1ccc(cc1)C(C)C(=O)O"),
    ("paracetamol", "CC(=O)Nc1ccc(O)cc1"),
    ("imatinib", "Cc1ccc(NC(=O)c2ccc(CN3CCN(C)CC3)cc2)cc1Nc1nccc(-c2cccnc2)n1"),
    ("gefitinib", "COc1cc2ncnc(Nc3ccc(F)c(Cl)c3)c2cc1OCCCN1CCOCC1"),
    ("erlotinib", "COCCOc1cc2ncnc(Nc3cccc(c3)C#C)c2cc1OCCOC"),
    ("bortezomib", "CC(C)C[C@H](NC(=O)[C@H](Cc1ccccc1)NC(=O)c1cnccn1)B(O)O"),
    ("metformin", "CN(C)C(=N)N=C(N)N"),
    ("tamoxifen", "CC/C(=C(\\c1ccccc1)c1ccc(OCCN(C)C)cc1)c1ccccc1"),
    (
        "doxorubicin",
        "COc1cccc2C(=O)c3c(O)c4C[C@](O)(C[C@H](O[C@H]5C[C@H](N)[C@H](O)[C@H](C)O5)c4c(O)c3C(=O)c12)C(=O)CO",
    ),
    ("vorinostat", "ONC(=O)CCCCCCC(=O)Nc1ccccc1"),
    ("sirolimus-core", "OC1CCC(CC1)C=O"),
    ("olaparib", "O=C(c1cc(Cc2n[nH]c(=O)c3ccccc23)ccc1F)N1CCN(CC1)C(=O)C1CC1"),
    ("nutlin-core", "COc1ccc(cc1)C1N=C(N(C1)C(=O)N1CCNC(=O)C1)c1ccc(Cl)cc1"),
    ("dasatinib", "Cc1nc(Nc2ncc(s2)C(=O)Nc2c(C)cccc2Cl)cc(n1)N1CCN(CCO)CC1"),
)


@dataclass(frozen=True)
class PlantedModules:
    """The demo's files and the truth behind them (module of each gene, -1 for none)."""

    string_info: Path
    string_links: Path
    perturbseq: Path
    molecules: Path
    genes: list[str]
    module: np.ndarray


def planted_modules(
    directory: Path,
    *,
    n_genes: int = 3000,
    n_perturbed: int = 2000,
    n_modules: int = 60,
    module_size: tuple[int, int] = (8, 18),
    subprograms: int = 2,
    n_readout: int = 1000,
    n_confounders: int = 4,
    link_probability: float = 0.6,
    seed: int = 0,
) -> PlantedModules:
    """A data set in the real formats with functional modules that expression similarity hides.

    Genes of a module interact in STRING (scores 700–999, experiments/database evidence) but
    respond to knockdown through one of `subprograms` independent programs, on top of a strong
    cell-state confounder (one of `n_confounders`, shared across modules) and a gene-specific
    response. Cosine on the responses sees only same-subprogram module partners and is misled by
    the confounders; a map learned from the interactions can join the subprograms of a module and
    carries over to genes it never saw. Background links (mostly below 700, degree-skewed) and
    genes without a perturbation make the graph realistic; molecules target module genes."""
    rng = np.random.default_rng(seed)
    genes = gene_symbols(n_genes)
    module = np.full(n_genes, -1)
    perturbed = rng.permutation(n_perturbed)
    at = 0
    for k in range(n_modules):
        size = int(rng.integers(module_size[0], module_size[1] + 1))
        module[perturbed[at : at + size]] = k
        at += size
    # STRING: module links, then degree-skewed background links (mostly below 700).
    pairs, kinds = [], []
    for k in range(n_modules):
        members = np.flatnonzero(module == k)
        a, b = np.triu_indices(len(members), 1)
        keep = rng.random(len(a)) < link_probability
        pairs.append(np.column_stack([members[a[keep]], members[b[keep]]]))
        kinds.append(np.ones(int(keep.sum()), dtype=bool))
    weight = 1.0 / np.arange(1, n_genes + 1) ** 0.7
    weight = weight[rng.permutation(n_genes)] / weight.sum()
    background = rng.choice(n_genes, size=(4 * n_genes, 2), p=weight)
    pairs.append(background)
    kinds.append(np.zeros(len(background), dtype=bool))
    all_pairs = np.sort(np.concatenate(pairs), axis=1)
    is_module = np.concatenate(kinds)
    _, first = np.unique(all_pairs[:, 0] * n_genes + all_pairs[:, 1], return_index=True)
    first = first[all_pairs[first, 0] != all_pairs[first, 1]]
    all_pairs, is_module = all_pairs[first], is_module[first]
    channels = np.zeros((len(all_pairs), len(CHANNELS_FULL)), dtype=np.int64)
    column = {c: i for i, c in enumerate(CHANNELS_FULL)}
    n_mod = int(is_module.sum())
    channels[is_module, column["experiments"]] = rng.integers(500, 990, n_mod)
    channels[is_module, column["database"]] = np.where(rng.random(n_mod) < 0.6, 900, 0)
    noise_links = ~is_module
    high = noise_links & (rng.random(len(all_pairs)) < 0.08)  # a few strong links across modules
    channels[noise_links, column["coexpression"]] = rng.integers(150, 560, int(noise_links.sum()))
    channels[high, column["experiments"]] = rng.integers(650, 900, int(high.sum()))
    info, links = write_string(directory / "string", genes, all_pairs, channels, seed=seed)

    # Perturb-seq responses of the perturbed genes over `n_readout` read-out genes.
    def unit(n: int) -> np.ndarray:
        v = rng.normal(size=(n, n_readout))
        return np.asarray(v / np.linalg.norm(v, axis=1, keepdims=True))

    programs = unit(n_modules * subprograms).reshape(n_modules, subprograms, n_readout)
    confounders = unit(n_confounders)
    own = unit(n_perturbed)
    x = 1.6 * confounders[rng.integers(0, n_confounders, n_perturbed)] + 0.8 * own
    sub = rng.integers(0, subprograms, n_perturbed)
    in_module = module[:n_perturbed] >= 0
    x[in_module] += 1.4 * programs[module[:n_perturbed][in_module], sub[in_module]]
    x += rng.normal(0, 0.3 / np.sqrt(n_readout), x.shape)
    x *= np.sqrt(n_readout) / 2  # z-scores of a strong knockdown: a few units per read-out gene
    readout = genes[:n_readout] if n_readout <= n_genes else gene_symbols(n_readout)
    h5ad = perturbseq_h5ad(
        directory / "K562_demo_normalized_bulk_01.h5ad",
        targets=genes[:n_perturbed],
        readout=readout,
        profiles=x.astype(np.float32),
        n_controls=4,
        seed=seed,
    )
    # Molecules targeting genes of one module each.
    rows = []
    for i, (name, smiles) in enumerate(DEMO_SMILES):
        members = np.flatnonzero(module == i % n_modules)
        targets = rng.choice(members, size=min(3, len(members)), replace=False)
        rows.append(
            {
                "pert_iname": name,
                "moa": f"module {i % n_modules} inhibitor",
                "target": "|".join(genes[t] for t in sorted(targets)),
                "smiles": smiles,
            }
        )
    molecules = directory / "molecules.tsv"
    pd.DataFrame(rows).to_csv(molecules, sep="\t", index=False)
    return PlantedModules(info, links, h5ad, molecules, genes, module)


def main() -> None:
    """`python -m kgctl.testing.generators perturbseq|string|transcriptome|demo OUT [options]`."""
    import click

    @click.group()
    def cli() -> None:
        """Write generated inputs in the real formats."""

    @cli.command()
    @click.argument("out", type=click.Path(path_type=Path))
    @click.option("--perturbations", default=40)
    @click.option("--readout", default=60)
    @click.option("--seed", default=0)
    def perturbseq(out: Path, perturbations: int, readout: int, seed: int) -> None:
        click.echo(perturbseq_h5ad(out, n_perturbations=perturbations, n_readout=readout, seed=seed))

    @cli.command()
    @click.argument("out", type=click.Path(path_type=Path))
    @click.option("--proteins", default=20_000)
    @click.option("--lines", default=5_000_000)
    @click.option("--seed", default=0)
    def string(out: Path, proteins: int, lines: int, seed: int) -> None:
        for path in string_files(out, n_proteins=proteins, n_lines=lines, seed=seed):
            click.echo(path)

    @cli.command(name="transcriptome")
    @click.argument("out", type=click.Path(path_type=Path))
    @click.option("--genes", default=300)
    @click.option("--seed", default=0)
    def transcriptome_command(out: Path, genes: int, seed: int) -> None:
        made = transcriptome(out, genes=genes, seed=seed)
        for path in (*made.transcript_files, made.half_life):
            click.echo(path)

    @cli.command()
    @click.argument("out", type=click.Path(path_type=Path))
    @click.option("--seed", default=0)
    def demo(out: Path, seed: int) -> None:
        data = planted_modules(out, seed=seed)
        for path in (data.string_info, data.string_links, data.perturbseq, data.molecules):
            click.echo(path)

    cli()


if __name__ == "__main__":
    main()
