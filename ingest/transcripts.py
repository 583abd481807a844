"""Transcripts: FASTA with GENCODE or Ensembl headers, the GTF with their exons and CDS, and
ortholog tables (human–mouse Ensembl gene ids): `Transcript` nodes, `ISOFORM_OF` to the gene,
`ORTHOLOG_OF` between genes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option
from kgctl.graph.records import Edge, Node, Record, Reject, RowDone
from kgctl.ingest.base import GENE_SYMBOL, Adapter, clean_props, gene_id, register
from kgctl.ingest.readers import ByteCounter, open_text

GTF_ATTR = re.compile(r'(\S+) "([^"]*)"')
ENSEMBL_GENE = re.compile(r"^ENS[A-Z]*G\d{11}(\.\d+)?$")
SPECIES_OF_PREFIX = {"ENSG": "9606", "ENSMUSG": "10090"}
VALID_BASES = re.compile(r"^[ACGTUNacgtun]*$")


def base_id(identifier: str) -> str:
    """An Ensembl id without its version suffix."""
    return identifier.split(".")[0]


def species_of(ensembl_gene: str) -> str | None:
    prefix = re.match(r"^(ENS[A-Z]*G)\d", ensembl_gene)
    return SPECIES_OF_PREFIX.get(prefix.group(1)) if prefix else None


def kind_of(path: Path) -> str:
    with open_text(path) as handle:
        for line in handle:
            if line.startswith(">"):
                return "fasta"
            if line.startswith("#") or not line.strip():
                continue
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) == 9 and fields[3].isdigit() and fields[4].isdigit():
                return "gtf"
            if len(fields) >= 2 and all(ENSEMBL_GENE.match(f) for f in fields[:2]):
                return "orthologs"
            if len(fields) >= 2 and "Gene stable ID" in fields[0]:
                return "orthologs"
            if "ensembl_gene_id" in fields and "external_gene_name" in fields:
                return "genemap"
            break
    raise KgctlError(
        f"{path}:1: not a transcript FASTA, a GTF or an ortholog table (human and mouse Ensembl "
        "gene ids in the first two tab-separated columns)"
    )


@dataclass
class Structure:
    """A transcript's exons and CDS in genome coordinates, from the GTF."""

    strand: str = "+"
    exons: list[tuple[int, int]] = field(default_factory=list)
    cds: list[tuple[int, int]] = field(default_factory=list)

    def layout(self) -> tuple[list[int], int | None, int | None]:
        """Exon ends and CDS start/end in transcript coordinates (1-based, inclusive)."""
        reverse = self.strand == "-"
        exons = sorted(self.exons, reverse=reverse)
        ends, offset, cds_start, cds_end = [], 0, None, None
        for lo, hi in exons:
            for c_lo, c_hi in self.cds:
                if c_lo >= lo and c_hi <= hi:
                    a = offset + (hi - c_hi if reverse else c_lo - lo) + 1
                    b = offset + (hi - c_lo if reverse else c_hi - lo) + 1
                    cds_start = a if cds_start is None else min(cds_start, a)
                    cds_end = b if cds_end is None else max(cds_end, b)
            offset += hi - lo + 1
            ends.append(offset)
        return ends, cds_start, cds_end


@register
class TranscriptsAdapter(Adapter):
    name = "transcripts"
    source = "GENCODE"
    licence = "LicenseRef-GENCODE-unrestricted"  # GENCODE/Ensembl: no restrictions on use
    formats = (
        "transcript FASTA (GENCODE/Ensembl headers) with its GTF; human-mouse ortholog tables "
        "(with a BioMart ensembl_gene_id/external_gene_name map)"
    )
    options = (
        Option("source-name", "Provenance source (GENCODE or Ensembl).", str, "GENCODE"),
        Option("source-version", "Release to record (e.g. 44)."),
    )

    @property
    def source_label(self) -> str:
        return str(self.opts["source_name"])

    def validate(self) -> None:
        self.kinds = {path: kind_of(path) for path in self.files}

    def records(self, counter: ByteCounter) -> Iterator[Record]:
        structures: dict[str, Structure] = {}
        for path in (p for p, k in self.kinds.items() if k == "gtf"):
            with open_text(path, counter) as handle:
                yield from self._gtf(path, handle, structures)
        ensembl_to_gene = dict(self.lookup.ids("Gene", "ensembl_gene_id"))
        for path in (p for p, k in self.kinds.items() if k == "genemap"):
            with open_text(path, counter) as handle:
                yield from self._genemap(path, handle, ensembl_to_gene)
        for path in (p for p, k in self.kinds.items() if k == "fasta"):
            with open_text(path, counter) as handle:
                yield from self._fasta(path, handle, structures, ensembl_to_gene)
        for path in (p for p, k in self.kinds.items() if k == "orthologs"):
            with open_text(path, counter) as handle:
                yield from self._orthologs(path, handle, ensembl_to_gene)

    def _gtf(self, path: Path, handle: IO[str], out: dict[str, Structure]) -> Iterator[Record]:
        for number, line in enumerate(handle, 1):
            if line.startswith("#") or not line.strip():
                continue
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != 9:
                yield Reject(
                    path.name,
                    number,
                    "*",
                    f"expected 9 tab-separated GTF fields, found {len(fields)}",
                    line,
                )
                continue
            feature = fields[2]
            if feature not in {"exon", "CDS"}:
                continue
            attrs = dict(GTF_ATTR.findall(fields[8]))
            if "transcript_id" not in attrs:
                yield Reject(path.name, number, "transcript_id", "missing from the attributes", line)
                continue
            if not (fields[3].isdigit() and fields[4].isdigit()) or int(fields[3]) > int(fields[4]):
                yield Reject(path.name, number, "start", f"bad coordinates {fields[3]}-{fields[4]}", line)
                continue
            structure = out.setdefault(base_id(attrs["transcript_id"]), Structure(fields[6]))
            span = (int(fields[3]), int(fields[4]))
            (structure.exons if feature == "exon" else structure.cds).append(span)
            yield RowDone()

    def _fasta(
        self, path: Path, handle: IO[str], structures: dict[str, Structure], ensembl_to_gene: dict[str, str]
    ) -> Iterator[Record]:
        header: str | None = None
        header_line = 0
        chunks: list[str] = []
        for number, line in enumerate(handle, 1):
            if line.startswith(">"):
                if header is not None:
                    yield from self._transcript(path, header_line, header, "".join(chunks), structures, ensembl_to_gene)
                header, header_line, chunks = line[1:].strip(), number, []
            elif header is None:
                if line.strip():
                    yield Reject(path.name, number, "header", "sequence before the first '>' header", line)
            else:
                chunks.append(line.strip())
        if header is not None:
            yield from self._transcript(path, header_line, header, "".join(chunks), structures, ensembl_to_gene)

    def _transcript(
        self,
        path: Path,
        line: int,
        header: str,
        sequence: str,
        structures: dict[str, Structure],
        ensembl_to_gene: dict[str, str],
    ) -> Iterator[Record]:
        parsed = parse_header(header)
        if parsed is None:
            yield Reject(
                path.name,
                line,
                "header",
                "neither a GENCODE (|-separated) nor an Ensembl header",
                header,
            )
            return
        tid, gid, symbol, cds = parsed
        if not sequence or not VALID_BASES.match(sequence):
            yield Reject(path.name, line, "sequence", "empty or not nucleotides", header)
            return
        if symbol is None or not GENE_SYMBOL.match(symbol):
            symbol = ensembl_to_gene.get(base_id(gid))
            if symbol is None:
                yield Reject(
                    path.name,
                    line,
                    "gene_symbol",
                    f"no gene symbol for {gid} in the header or the graph",
                    header,
                )
                return
        structure = structures.get(base_id(tid))
        exon_ends, cds_start, cds_end = structure.layout() if structure else ([], None, None)
        if exon_ends and exon_ends[-1] != len(sequence):
            yield Reject(
                path.name,
                line,
                "sequence",
                f"{len(sequence)} nt, but its GTF exons add up to {exon_ends[-1]}",
                header,
            )
            return
        if cds is not None:
            cds_start, cds_end = cds
        # Human genes are named by symbol; other species' genes by their Ensembl id, as the
        # ortholog tables name them (a mouse symbol upper-cased would merge with the human gene).
        species = species_of(gid)
        human = species in (None, "9606")
        gene = gene_id(symbol) if human else base_id(gid)
        if human:
            ensembl_to_gene[base_id(gid)] = gene  # known to an ortholog table of the same run
        yield Node(
            "Gene",
            gene,
            clean_props({"ensembl_gene_id": base_id(gid), "species": species, "symbol": None if human else symbol}),
        )
        yield Node(
            "Transcript",
            base_id(tid),
            clean_props(
                {
                    "version": tid.split(".")[1] if "." in tid else None,
                    "gene_id": base_id(gid),
                    "gene_symbol": gene,
                    "length": len(sequence),
                    "cds_start": cds_start,
                    "cds_end": cds_end,
                    "exon_ends": exon_ends or None,
                    "sequence": sequence.upper(),
                }
            ),
        )
        yield Edge("ISOFORM_OF", "Transcript", base_id(tid), "Gene", gene)
        yield RowDone()

    def _genemap(self, path: Path, handle: IO[str], out: dict[str, str]) -> Iterator[Record]:
        """A BioMart export with `ensembl_gene_id` and `external_gene_name`: human genes by symbol."""
        header = handle.readline().rstrip("\r\n").split("\t")
        at_id, at_name = header.index("ensembl_gene_id"), header.index("external_gene_name")
        for number, line in enumerate(handle, 2):
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) != len(header):
                yield Reject(
                    path.name,
                    number,
                    "*",
                    f"expected {len(header)} fields, found {len(fields)}",
                    line,
                )
                continue
            ensembl, symbol = base_id(fields[at_id]), fields[at_name]
            if not ENSEMBL_GENE.match(ensembl):
                yield Reject(
                    path.name,
                    number,
                    "ensembl_gene_id",
                    f"not an Ensembl gene id: {ensembl!r}",
                    line,
                )
                continue
            if not GENE_SYMBOL.match(symbol):
                yield Reject(path.name, number, "external_gene_name", f"not a gene symbol: {symbol!r}", line)
                continue
            out[ensembl] = gene_id(symbol)
            yield Node(
                "Gene",
                gene_id(symbol),
                {"ensembl_gene_id": ensembl, "species": species_of(ensembl)},
            )
            yield RowDone()

    def _orthologs(self, path: Path, handle: IO[str], ensembl_to_gene: dict[str, str]) -> Iterator[Record]:
        seen_genes: set[str] = set()
        for number, line in enumerate(handle, 1):
            fields = line.rstrip("\r\n").split("\t")
            if number == 1 and "Gene stable ID" in fields[0]:
                continue
            if len(fields) < 2 or not all(ENSEMBL_GENE.match(f) for f in fields[:2]):
                yield Reject(path.name, number, "gene_id", "expected two Ensembl gene ids", line)
                continue
            human, other = base_id(fields[0]), base_id(fields[1])
            kind = fields[2] if len(fields) > 2 and fields[2] else "ortholog"
            symbol = ensembl_to_gene.get(human)
            if symbol is None:
                yield Reject(
                    path.name,
                    number,
                    "gene_id",
                    f"unknown human gene {human} (no Gene with this ensembl_gene_id)",
                    line,
                )
                continue
            if other not in seen_genes:
                seen_genes.add(other)
                yield Node("Gene", other, {"ensembl_gene_id": other, "species": species_of(other)})
            yield Edge("ORTHOLOG_OF", "Gene", symbol, "Gene", other, {"type": kind})
            yield RowDone()


def parse_header(header: str) -> tuple[str, str, str | None, tuple[int, int] | None] | None:
    """(transcript id, gene id, gene symbol, CDS span) from a GENCODE or Ensembl FASTA header."""
    if "|" in header:
        parts = header.split("|")
        if len(parts) < 6 or not parts[0].startswith("ENS") or not parts[1].startswith("ENS"):
            return None
        cds = next((p[4:] for p in parts if p.startswith("CDS:")), None)
        span = tuple(int(x) for x in cds.split("-")) if cds and re.fullmatch(r"\d+-\d+", cds) else None
        return parts[0], parts[1], parts[5] or None, span  # type: ignore[return-value]
    words = header.split()
    if not words or not words[0].startswith("ENS"):
        return None
    tags = dict(w.split(":", 1) for w in words[1:] if ":" in w)
    if "gene" not in tags:
        return None
    return words[0], tags["gene"], tags.get("gene_symbol"), None
