"""A seeded fuzzer for the ingest adapters: small samples of the real files in ../shared/data
(generated files, in the real formats, for the sources that have none there), mutated as careless
users and attackers would, each ingested on a real server. Every case must end loaded, or with a
KgctlError (the one line the CLI prints), never another exception (a traceback), never past its time
bound (a hang), and a rejected `--strict` run must leave every count as it was. A smoke run is in
tests/reliability, the long one in benchmarks/reliability.py."""

from __future__ import annotations

import contextlib
import gzip
import multiprocessing
import os
import random
import shutil
import signal
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import pandas as pd

from kgctl.core.errors import KgctlError
from kgctl.testing import generators

INJECTIONS = [
    "') DETACH DELETE n //",
    '"}) MATCH (n) DETACH DELETE n //',
    "`) DETACH DELETE n //",
    "x'}) CALL dbms.security.listUsers() YIELD username RETURN username //",
    "$id",
    "{id: 1}",
    "\\'; MATCH (n) DELETE n; //",
    "Robert'); DROP DATABASE neo4j;--",
    "ÄÖü😀\u202e",
    "a\\b",
]
ODD_NUMBERS = [
    b"NaN",
    b"nan",
    b"inf",
    b"-inf",
    b"Infinity",
    b"1e999",
    b"-1e999",
    b"",
    b"NA",
    b"0x1F",
]


@dataclass
class Sample:
    """One adapter's input: files in a folder, with the options a clean strict run loads them by."""

    source: str
    files: list[Path]
    options: dict[str, Any] = field(default_factory=dict)


def _head(src: Path, out: Path, keep: Callable[[int, str], bool]) -> Path:
    """The lines of a gzip text file that `keep(line_number, line)` accepts, gzip again."""
    with (
        gzip.open(src, "rt", encoding="utf-8") as fin,
        gzip.open(out, "wt", encoding="utf-8") as fo,
    ):
        fo.writelines(line for i, line in enumerate(fin) if keep(i, line))
    return out


def _columns(src: Path, out: Path, rows: int, columns: int, sep: str = ",") -> Path:
    frame = pd.read_csv(src, sep=sep, nrows=rows, dtype=str, keep_default_na=False)
    frame.iloc[:, :columns].to_csv(out, sep=sep, index=False)
    return out


def _gct(src: Path, out: Path, probes: int, samples: int) -> Path:
    """A GCT with the first probes and samples of a real one (its dimension line rewritten)."""
    with gzip.open(src, "rt", encoding="utf-8") as handle:
        version, dims = handle.readline(), handle.readline().split("\t")
        row_meta, col_meta = int(dims[2]), int(dims[3])
        lines = [handle.readline().rstrip("\n").split("\t") for _ in range(1 + col_meta + probes)]
    width = 1 + row_meta + samples
    with gzip.open(out, "wt", encoding="utf-8") as fo:
        fo.write(version)
        fo.write(f"{probes}\t{samples}\t{row_meta}\t{col_meta}\n")
        fo.writelines("\t".join(cells[:width]) + "\n" for cells in lines)
    return out


def samples(data: Path, folder: Path) -> list[Sample]:
    """Small samples of every adapter's real files (in load order: molecules before the profiles
    that name them), each of which a clean `--strict` ingest loads."""
    folder.mkdir(parents=True, exist_ok=True)
    string = data / "string"
    links = _head(
        string / "9606.protein.links.full.v12.0.subset.txt.gz",
        folder / "9606.protein.links.full.v12.0.subset.txt.gz",
        lambda i, _: i <= 600,
    )
    with gzip.open(links, "rt") as handle:
        proteins = {p for line in list(handle)[1:] for p in line.split()[:2]}
    info = _head(
        string / "9606.protein.info.v12.0.subset.txt.gz",
        folder / "9606.protein.info.v12.0.subset.txt.gz",
        lambda i, line: i == 0 or line.split("\t")[0] in proteins,
    )
    depmap = data / "depmap"
    effect = _columns(depmap / "CRISPRGeneEffect.subset.csv.gz", folder / "CRISPRGeneEffect.csv", 12, 80)
    tpm = _columns(
        depmap / "OmicsExpressionProteinCodingGenesTPMLogp1.subset.csv.gz",
        folder / "OmicsExpressionProteinCodingGenesTPMLogp1.csv",
        12,
        60,
    )
    mols = data / "molecules"
    hub = _head(mols / "repurposing_info.tsv.gz", folder / "repurposing_info.tsv.gz", lambda i, _: i <= 60)
    jump = _head(
        mols / "JUMP-Target-1_compound_metadata.tsv.gz",
        folder / "JUMP-Target-1_compound_metadata.tsv.gz",
        lambda i, _: i <= 40,
    )
    with gzip.open(jump, "rt") as handle:
        keys = [line.split("\t") for line in handle]
    inchikeys = [row[keys[0].index("InChIKey")] for row in keys[1:6]]
    gct = _gct(data / "l1000" / "test_l1000_level4.gct.gz", folder / "test_l1000_level4.gct.gz", 40, 12)
    rna = data / "rna"
    genemap = _head(
        rna / "all_HLs_human_PC1.txt.gz",
        folder / "all_HLs_human_PC1.txt.gz",
        lambda i, line: i <= 80 and (i == 0 or bool(line.split("\t")[1].strip())),
    )
    with gzip.open(genemap, "rt") as handle:
        human = {line.split("\t")[0] for line in list(handle)[1:]}
    orthologs = _head(
        rna / "1to1_orthologs_expression.txt.gz",
        folder / "1to1_orthologs_expression.txt.gz",
        lambda _, line: line.split("\t")[0] in human,
    )
    h5ad = generators.perturbseq_h5ad(
        folder / "K562_essential_normalized_bulk_01.h5ad", n_perturbations=12, n_readout=20, n_controls=2
    )
    profiles = generators.cell_painting_profiles(
        folder / "BR00117010_profiles.csv.gz", compounds=inchikeys, replicates=2, n_dmso=2
    )
    return [
        Sample("string", [info, links]),
        Sample("depmap", [effect], {"source_version": "fuzz"}),
        Sample("expression", [tpm], {"dataset": "fuzz-ccle"}),
        Sample("molecules", [hub], {"source_version": "2020-03-24"}),
        Sample("molecules", [jump], {"source_name": "JUMP-Target"}),
        Sample("l1000", [gct, data / "l1000" / "compounds.tsv.gz"]),
        Sample("transcripts", [genemap, orthologs]),
        Sample("perturbseq", [h5ad]),
        Sample("morphology", [profiles]),
    ]


# --- mutations of a file's (decompressed) bytes ---------------------------------------------------


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def _sep(data: bytes) -> bytes:
    header = data.split(b"\n", 1)[0]
    return next((s for s in (b"\t", b",", b" ") if s in header), b"\t")


def _cell(data: bytes, rng: random.Random, value: Callable[[bytes], bytes], header: bool = False) -> bytes:
    """Replace one or a few random cells (not the header unless asked) by `value(old)`."""
    lines, sep = _lines(data), _sep(data)
    for _ in range(rng.randint(1, 3)):
        i = 0 if header else rng.randrange(1, max(2, len(lines)))
        if i >= len(lines):
            continue
        cells = lines[i].split(sep)
        j = rng.randrange(len(cells))
        cells[j] = value(cells[j])
        lines[i] = sep.join(cells)
    return b"\n".join(lines)


def _column(data: bytes, rng: random.Random, how: str) -> bytes:
    lines, sep = _lines(data), _sep(data)
    width = len(lines[0].split(sep))
    j = rng.randrange(width)
    out = []
    for line in lines:
        cells = line.split(sep)
        if how == "drop" and j < len(cells):
            del cells[j]
        elif how == "add":
            cells.insert(min(j, len(cells)), b"extra" if line is lines[0] else b"1")
        out.append(sep.join(cells))
    return b"\n".join(out)


def _duplicate_rows(data: bytes, rng: random.Random) -> bytes:
    lines = _lines(data)
    return b"\n".join(lines + [lines[rng.randrange(len(lines))] for _ in range(3)])


def _short_row(data: bytes, rng: random.Random) -> bytes:
    lines, sep = _lines(data), _sep(data)
    i = rng.randrange(len(lines))
    lines[i] = lines[i].rsplit(sep, rng.randint(1, 3))[0]
    return b"\n".join(lines)


def _flip(data: bytes, rng: random.Random, values: bytes | None = None) -> bytes:
    buffer = bytearray(data)
    for _ in range(rng.randint(1, 12)):
        if buffer:
            buffer[rng.randrange(len(buffer))] = rng.choice(values) if values else rng.randrange(256)
    return bytes(buffer)


def _insert(data: bytes, rng: random.Random, piece: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + piece + data[at:]


MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "truncate": lambda d, r: d[: r.randrange(len(d) + 1)],
    "byte_flips": _flip,
    "non_utf8": lambda d, r: _insert(d, r, r.choice([b"\xff", b"\xc3", b"\xfe\xff", b"\xed\xa0\x80"])),
    "nul_bytes": lambda d, r: _flip(d, r, b"\x00"),
    "drop_column": lambda d, r: _column(d, r, "drop"),
    "add_column": lambda d, r: _column(d, r, "add"),
    "rename_column": lambda d, r: _cell(d, r, lambda c: c[::-1] + b"_x", header=True),
    "wrong_delimiter": lambda d, r: d.replace(_sep(d), r.choice([b",", b";", b"|", b" ", b"\t"])),
    "huge_field": lambda d, r: _cell(d, r, lambda _: b"A" * 10_000_000),
    "odd_numbers": lambda d, r: _cell(d, r, lambda _: r.choice(ODD_NUMBERS)),
    "injection": lambda d, r: _cell(d, r, lambda _: r.choice(INJECTIONS).encode()),
    "injection_header": lambda d, r: _cell(d, r, lambda _: r.choice(INJECTIONS).encode(), header=True),
    "duplicate_rows": _duplicate_rows,
    "short_row": _short_row,
    "shuffled_lines": lambda d, r: b"\n".join(r.sample(_lines(d), len(_lines(d)))),
    "blank_lines": lambda d, r: d.replace(b"\n", b"\n\n", r.randint(1, 5)),
    "crlf": lambda d, r: d.replace(b"\n", b"\r\n"),
    "bom": lambda d, r: b"\xef\xbb\xbf" + d,
}
FILE_CASES = [
    "empty",
    "directory",
    "fifo",
    "dangling_symlink",
    "unreadable",
    "wrong_file",
    "plain_under_gz_name",
    "gzip_truncated",
]
BINARY_MUTATIONS = ["truncate", "byte_flips", "nul_bytes"]


@dataclass
class Case:
    """One mutated input: which sample, which of its files, what was done to it."""

    number: int
    sample: int  # index into the samples
    source: str
    target: str  # the file's name
    mutation: str
    strict: bool
    files: list[Path]
    options: dict[str, Any]


def _binary(path: Path) -> bool:
    return path.suffix in (".h5ad", ".gctx", ".parquet")


def make_case(number: int, sample_list: list[Sample], folder: Path, rng: random.Random) -> Case:
    """One mutated copy of one sample file (the sample's other files as they are), in `folder`."""
    index = rng.randrange(len(sample_list))
    sample = sample_list[index]
    which = rng.randrange(len(sample.files))
    src = sample.files[which]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / src.name
    gz = src.suffix == ".gz"
    if rng.random() < 0.15:
        mutation = rng.choice(FILE_CASES)
    else:
        mutation = rng.choice(BINARY_MUTATIONS if _binary(src) else list(MUTATIONS))
    raw = src.read_bytes()
    content = gzip.decompress(raw) if gz else raw
    if mutation == "empty":
        path.write_bytes(b"")
    elif mutation == "directory":
        path.mkdir()
    elif mutation == "fifo":
        os.mkfifo(path)
    elif mutation == "dangling_symlink":
        path.symlink_to(folder / "missing")
    elif mutation == "unreadable":  # as root it stays readable: then it is an ordinary copy
        path.write_bytes(raw)
        path.chmod(0)
    elif mutation == "wrong_file":
        other = rng.choice([f for s in sample_list for f in s.files if f.name != src.name])
        path.write_bytes(other.read_bytes())
    elif mutation == "plain_under_gz_name":
        path.write_bytes(content)
    elif mutation == "gzip_truncated":
        path.write_bytes(raw[: rng.randrange(len(raw))])
    else:
        mutated = MUTATIONS[mutation](content, rng)
        path.write_bytes(gzip.compress(mutated, mtime=0) if gz else mutated)
    files = [path if i == which else f for i, f in enumerate(sample.files)]
    return Case(number, index, sample.source, src.name, mutation, rng.random() < 0.75, files, sample.options)


def cases(sample_list: list[Sample], folder: Path, count: int, seed: int) -> Iterator[Case]:
    rng = random.Random(seed)
    for number in range(count):
        yield make_case(number, sample_list, folder / f"case-{number:06d}", rng)


# --- running cases in a worker that can be killed when it hangs ------------------------------------


def _serve(server_base: str, rejects: str, pipe: Pipe) -> None:
    """The worker: ingest each case sent, answer with its outcome. It leads its own process
    group, so that a hang is ended with everything it started (RDKit workers)."""
    os.setpgrp()
    from kgctl.ingest.pipeline import ingest
    from kgctl.testing.fixtures import graph_counts, test_server_at

    def counts() -> dict[str, int]:  # the data, not the runs' own records
        return {k: v for k, v in graph_counts(conn).items() if k != "IngestRun"}

    with test_server_at(Path(server_base)).connect() as conn:
        while (case := pipe.recv()) is not None:
            before = counts()
            outcome: dict[str, Any] = {"number": case.number}
            try:
                result = ingest(
                    conn,
                    case.source,
                    case.files,
                    case.options,
                    strict=case.strict,
                    force=True,
                    rejects_dir=Path(rejects),
                )
                outcome |= {
                    "outcome": "loaded",
                    **{k: result.get(k) for k in ("rows_read", "rows_loaded", "rows_rejected")},
                }
            except KgctlError as exc:
                outcome |= {
                    "outcome": "error",
                    "message": exc.message,
                    "one_line": "\n" not in exc.message and bool(exc.message.strip()),
                }
            except Exception as exc:  # what the CLI would show as a traceback
                outcome |= {
                    "outcome": "traceback",
                    "message": f"{type(exc).__name__}: {exc}"[:500],
                    "where": traceback.format_exc(limit=-3)[-1500:],
                }
            after = counts()
            lost = {k: after.get(k, 0) - v for k, v in before.items() if after.get(k, 0) < v}
            changed = case.strict and outcome["outcome"] != "loaded" and after != before
            outcome["count_change"] = bool(lost) or changed
            if outcome["count_change"]:
                outcome["counts"] = {"lost": lost, "changed_by_rejected_strict_run": changed}
            pipe.send(outcome)


class Runner:
    """A worker process on one server; a case past `timeout` seconds is a hang: the worker (and
    its children) is killed and a fresh one takes the next case."""

    def __init__(self, server_base: Path, rejects: Path, timeout: float) -> None:
        self.server_base, self.rejects, self.timeout = server_base, rejects, timeout
        self.context = multiprocessing.get_context("spawn")
        self.worker: Any = None
        self.pipe: Pipe | None = None

    def _start(self) -> None:
        parent, child = self.context.Pipe()
        self.worker = self.context.Process(target=_serve, args=(str(self.server_base), str(self.rejects), child))
        self.worker.start()
        self.pipe = parent

    def run(self, case: Case) -> dict[str, Any]:
        if self.worker is None or not self.worker.is_alive():
            self._start()
        assert self.pipe is not None
        started = time.perf_counter()
        self.pipe.send(case)
        if self.pipe.poll(self.timeout):
            try:
                outcome: dict[str, Any] = self.pipe.recv()
            except (EOFError, OSError):  # the worker died (a crash of the interpreter)
                outcome = {
                    "number": case.number,
                    "outcome": "traceback",
                    "message": "the worker died",
                    "count_change": False,
                }
                self.worker = None
        else:
            outcome = {"number": case.number, "outcome": "hang", "count_change": False}
            self.close(kill=True)
        return {
            **outcome,
            "source": case.source,
            "file": case.target,
            "mutation": case.mutation,
            "strict": case.strict,
            "seconds": round(time.perf_counter() - started, 3),
        }

    def close(self, kill: bool = False) -> None:
        if self.worker is None:
            return
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.worker.pid, signal.SIGKILL)
        elif self.pipe is not None:
            with contextlib.suppress(OSError):  # it is gone already
                self.pipe.send(None)
        self.worker.join(timeout=60)
        self.worker, self.pipe = None, None


def fuzz(
    server_base: Path,
    data: Path,
    folder: Path,
    count: int,
    seed: int = 0,
    timeout: float = 120,
    on_case: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Load every sample cleanly (strict), then run `count` mutated cases; the tally and the cases
    that failed (a traceback, a hang, a count change or a multi-line error)."""
    sample_list = samples(data, folder / "samples")
    runner = Runner(server_base, folder / "rejects", timeout)
    found: list[dict[str, Any]] = []
    try:
        for i, sample in enumerate(sample_list):
            clean = Case(-1 - i, i, sample.source, "", "none", True, sample.files, sample.options)
            outcome = runner.run(clean)
            if outcome["outcome"] != "loaded":
                raise KgctlError(f"the clean {sample.source} sample does not load strictly: {outcome}")
        for case in cases(sample_list, folder / "cases", count, seed):
            outcome = runner.run(case)
            found.append(outcome)
            if on_case:
                on_case(outcome)
            shutil.rmtree(folder / "cases" / f"case-{case.number:06d}", ignore_errors=True)
    finally:
        runner.close()
    tally = Counter(o["outcome"] for o in found)
    bad = [
        o
        for o in found
        if o["outcome"] in ("traceback", "hang") or o["count_change"] or (o["outcome"] == "error" and not o["one_line"])
    ]
    return {
        "tried": len(found),
        "loaded": tally["loaded"],
        "clear_errors": tally["error"],
        "tracebacks": tally["traceback"],
        "hangs": tally["hang"],
        "count_changes": sum(o["count_change"] for o in found),
        "multi_line_errors": sum(o["outcome"] == "error" and not o["one_line"] for o in found),
        "by_mutation": dict(Counter(o["mutation"] for o in found)),
        "by_source": dict(Counter(o["source"] for o in found)),
        "seconds_per_case": round(sum(o["seconds"] for o in found) / max(1, len(found)), 3),
        "timeout_s": timeout,
        "seed": seed,
        "failures": bad,
    }
