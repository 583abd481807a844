"""Bad input: a clear message naming file, line and field; rows quarantined (default) or the
whole run rejected (--strict); the graph never changes for a rejected run."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import kgctl.ingest.pipeline as pipeline
from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection
from kgctl.graph.writer import write_batch
from kgctl.ingest.base import Lookup
from kgctl.testing import generators
from kgctl.testing.fixtures import TestServer, graph_counts, ingest_files

INFO = "#string_protein_id\tpreferred_name\tprotein_size\tannotation\n" + "".join(
    f"9606.ENSP0000000000{i}\tGENE{i}\t\t\n" for i in range(5)
)
HEADER = (
    "protein1 protein2 neighborhood fusion cooccurence coexpression experimental database textmining combined_score\n"
)


def link(a: int, b: int, score: str = "800") -> str:
    return f"9606.ENSP0000000000{a} 9606.ENSP0000000000{b} 0 0 0 100 200 0 0 {score}\n"


def write(path: Path, text: str, compress: bool = False) -> Path:
    if compress:
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


@pytest.fixture
def info(tmp_path: Path) -> Path:
    return write(tmp_path / "9606.protein.info.v12.0.txt", INFO)


def test_malformed_and_unknown_rows_are_quarantined(graph: Connection, tmp_path: Path, info: Path) -> None:
    links = write(
        tmp_path / "links.txt",
        HEADER
        + link(0, 1)
        + link(1, 2, "high")
        + "9606.ENSP00000000001 only\n"
        + link(0, 9)
        + link(1, 0)
        + link(3, 3)
        + link(2, 3, "1200"),
    )
    result = ingest_files(graph, "string", [info, links], tmp_path)
    assert result["rows_rejected"] == 5 and result["relationships_written"] == 1
    assert graph_counts(graph)["INTERACTS_WITH"] == 1
    rejects = Path(result["rejects_file"]).read_text().splitlines()
    assert rejects[0] == "file\tline\tfield\tmessage\traw"
    reasons = {tuple(r.split("\t")[:3]): r.split("\t")[3] for r in rejects[1:]}
    assert reasons[("links.txt", "3", "combined_score")] == "not an integer score"
    assert reasons[("links.txt", "4", "*")] == "expected 10 space-separated fields, found 2"
    assert "unknown STRING protein '9606.ENSP00000000009'" in reasons[("links.txt", "5", "protein2")]
    assert "same gene" in reasons[("links.txt", "7", "protein2")]
    assert reasons[("links.txt", "8", "combined_score")] == "score outside 0-1000"
    assert result["first_rejects"][0].startswith("links.txt:3: field 'combined_score'")


def test_strict_rejects_the_whole_run(graph: Connection, tmp_path: Path, info: Path) -> None:
    links = write(tmp_path / "links.txt", HEADER + link(0, 1) + link(1, 2, "x"))
    before = graph_counts(graph)
    with pytest.raises(
        KgctlError,
        match=r"--strict: 1 of 7 rows are invalid, so nothing was written; "
        r"first: links.txt:3: field 'combined_score': not an integer score",
    ):
        ingest_files(graph, "string", [info, links], tmp_path, strict=True)
    assert graph_counts(graph) == before
    with pytest.raises(KgctlError, match="--min-score 1001: STRING scores run 0-1000"):
        ingest_files(graph, "string", [info, links], tmp_path, {"min_score": 1001})
    # A non-strict run of the same files completes (the bad row quarantined); --strict after it
    # is still a gate, not "nothing to do".
    assert ingest_files(graph, "string", [info, links], tmp_path)["rows_rejected"] == 1
    with pytest.raises(KgctlError, match=r"--strict: 1 of 7 rows are invalid"):
        ingest_files(graph, "string", [info, links], tmp_path, strict=True)


def test_invalid_smiles(graph: Connection, tmp_path: Path) -> None:
    table = write(tmp_path / "mols.csv", "name,smiles\naspirin,CC(=O)Oc1ccccc1C(=O)O\nbroken,C1CC(\nempty,\n")
    result = ingest_files(graph, "molecules", [table], tmp_path)
    assert result["rows_rejected"] == 2 and graph_counts(graph)["Molecule"] == 1
    assert result["first_rejects"] == [
        "mols.csv:3: field 'smiles': invalid SMILES 'C1CC('",
        "mols.csv:4: field 'smiles': empty SMILES",
    ]
    before = graph_counts(graph)
    with pytest.raises(KgctlError, match="mols.csv:3: field 'smiles': invalid SMILES"):
        ingest_files(graph, "molecules", [table], tmp_path, strict=True)
    assert graph_counts(graph) == before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: write(d / "empty.txt", ""), r"empty.txt: the file is empty"),
        (
            lambda d: write(d / "empty.txt.gz", "", compress=True),
            r"empty.txt.gz: the file is empty \(gzip",
        ),
        (lambda d: d / "missing.txt", r"missing.txt: no such file"),
        (
            lambda d: write(d / "mols.csv", "name,smiles\nx,CCO\n"),
            r"mols.csv:1: not a STRING protein.links or protein.info file: the header is 'name,smiles'",
        ),
    ],
)
def test_file_level_errors_change_nothing(
    graph: Connection, tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    before = graph_counts(graph)
    with pytest.raises(KgctlError, match=message):
        ingest_files(graph, "string", [make(tmp_path)], tmp_path)
    assert graph_counts(graph) == before


def test_truncated_gzip_is_refused_before_any_write(graph: Connection, tmp_path: Path, info: Path) -> None:
    full = write(tmp_path / "links.txt.gz", HEADER + link(0, 1) * 20_000, compress=True)
    data = full.read_bytes()
    truncated = tmp_path / "truncated.txt.gz"
    truncated.write_bytes(data[: len(data) // 2])
    before = graph_counts(graph)
    with pytest.raises(
        KgctlError,
        match=r"truncated.txt.gz: truncated gzip file \(ends after [\d,]+ "
        r"decompressed bytes, about line [\d,]+\)",
    ):
        ingest_files(graph, "string", [info, truncated], tmp_path)
    assert graph_counts(graph) == before


def test_wrong_shapes(graph: Connection, tmp_path: Path, shared_data: Path) -> None:
    gct = write(tmp_path / "bad.gct", "#1.3\n2\t3\t1\t0\nid\tpr_gene_symbol\tS1\tS2\nP1\tA\t1.0\t2.0\n")
    compounds = shared_data / "l1000" / "compounds.tsv.gz"
    before = graph_counts(graph)
    with pytest.raises(KgctlError, match=r"bad.gct:3: the header names 2 samples; line 2 says 3"):
        ingest_files(graph, "l1000", [gct, compounds], tmp_path)
    short = write(tmp_path / "short.gct", "#1.3\n3\t2\t1\t0\nid\tpr_gene_symbol\tS1\tS2\nP1\tA\t1.0\t2.0\n")
    with pytest.raises(KgctlError, match=r"short.gct:5: the file ends after 1 of 3 data rows"):
        ingest_files(graph, "l1000", [short, compounds], tmp_path)
    long = write(
        tmp_path / "long.gct", "#1.3\n1\t2\t1\t0\nid\tpr_gene_symbol\tS1\tS2\nP1\tA\t1.0\t2.0\nP2\tB\t3.0\t4.0\n"
    )
    with pytest.raises(KgctlError, match=r"long.gct:5: more data rows than the 1 line 2 declares"):
        ingest_files(graph, "l1000", [long, compounds], tmp_path)
    for dims, error in (
        ("-1\t2\t1\t0", "2: field 'dimensions'"),  # 137 TiB were allocated:
        ("99999999999999\t2\t1\t0", "4: the file ends after 0 of"),
    ):
        odd = write(tmp_path / "dims.gct", f"#1.3\n{dims}\nid\tpr_gene_symbol\tS1\tS2\n")
        with pytest.raises(KgctlError, match=f"dims.gct:{error}"):
            ingest_files(graph, "l1000", [odd, compounds], tmp_path)
    assert graph_counts(graph) == before


def test_a_quote_in_a_compound_table_is_data(graph: Connection, tmp_path: Path) -> None:
    """A `"` opening a header cell once made the reader join the rest of the file into one field
    (a traceback, found by the fuzzer); the table is plain tab-separated."""
    gct = write(tmp_path / "one.gct", "#1.3\n1\t1\t1\t0\nid\tpr_gene_symbol\tBRD-K00000001\nP1\tA\t1.0\n")
    compounds = write(
        tmp_path / "compounds.tsv",
        'pert_id\t"}) MATCH (n) DETACH DELETE n //\tcanonical_smiles\nBRD-K00000001\t"aspirin\tCC(=O)Oc1ccccc1C(=O)O\n',
    )
    result = ingest_files(graph, "l1000", [gct, compounds], tmp_path)
    assert result["status"] == "completed", result
    assert not any("compounds.tsv" in r for r in result["first_rejects"]), result["first_rejects"]
    assert graph.query("MATCH (m:Molecule) RETURN count(m) AS n") == [{"n": 1}]


@pytest.mark.parametrize("writers", [1, 2])
def test_interrupted_run_resumes(
    graph: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, writers: int
) -> None:
    info = write(
        tmp_path / "9606.protein.info.v12.0.txt",
        "#string_protein_id\tpreferred_name\n" + "".join(f"9606.P{i}\tG{i}\n" for i in range(100)),
    )
    links = write(
        tmp_path / "links.txt",
        HEADER + "".join(f"9606.P{i} 9606.P{j} 0 0 0 0 0 0 0 500\n" for i in range(100) for j in range(i + 1, 100)),
    )
    # One pair already in the graph: its type is present, so relationship batches may go
    # concurrently (a first load of a type is written one batch at a time).
    seed = write(tmp_path / "seed.txt", HEADER + "9606.P0 9606.P1 0 0 0 0 0 0 0 500\n")
    ingest_files(graph, "string", [info, seed], tmp_path)
    real = write_batch
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> tuple[int, int]:
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pipeline, "write_batch", flaky)
    with pytest.raises(KeyboardInterrupt):
        ingest_files(graph, "string", [info, links], tmp_path, batch_size=1000, writers=writers)
    state = graph.query(
        "MATCH (r:IngestRun {status: 'interrupted'}) "
        "RETURN r.status AS s, r.batches_done AS b, r.batches_committed AS c"
    )[0]
    # the 4th write (batch 3) failed; with 2 writers, batch 4 may have committed beside it
    assert state["s"] == "interrupted" and 3 not in state["c"]
    assert state["c"] == [0, 1, 2] if writers == 1 else set(state["c"]) in ({0, 1, 2}, {0, 1, 2, 4})
    written = graph_counts(graph)["INTERACTS_WITH"]
    assert written < 4950
    monkeypatch.setattr(pipeline, "write_batch", real)
    result = ingest_files(graph, "string", [info, links], tmp_path, batch_size=1000, writers=writers)
    assert result["batches_resumed"] == state["b"] and result["status"] == "completed"
    assert (result["batches_concurrent"] > 0) == (writers == 2)
    assert result["relationships_written"] == 4950
    assert graph_counts(graph)["INTERACTS_WITH"] == 4950 and graph_counts(graph)["IngestRun"] == 2


@pytest.mark.slow
def test_cli_reports_one_line_without_traceback(neo4j_server: TestServer, tmp_path: Path, info: Path) -> None:
    links = write(tmp_path / "links.txt", HEADER + link(0, 1) + link(1, 2, "x"))
    cmd = [
        sys.executable,
        "-m",
        "kgctl.cli",
        "ingest",
        "string",
        str(info),
        str(links),
        "--strict",
        "--json",
        "--rejects-dir",
        str(tmp_path / "rej"),
    ]
    proc = subprocess.run(cmd, env=neo4j_server.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "error: --strict: 1 of 7 rows are invalid" in proc.stderr
    assert json.loads(proc.stdout)["ok"] is False
    proc = subprocess.run(
        cmd[:-4] + ["--json", "--rejects-dir", str(tmp_path / "rej")],
        env=neo4j_server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = json.loads(proc.stdout)
    assert proc.returncode == 0 and out["rows_rejected"] == 1 and out["relationships_written"] == 1


def test_unparseable_table_is_one_error(graph: Connection, tmp_path: Path) -> None:
    bad = tmp_path / "matrix.csv"
    bad.write_bytes(b"gene,s1,s2\nTP53,1.0,2.0\nEGFR,\xff\xfe,3.0\n")
    before = graph_counts(graph)
    with pytest.raises(KgctlError, match=r"matrix.csv:3: not UTF-8 text \(byte 0xff at column 6\)"):
        ingest_files(graph, "expression", [bad], tmp_path)
    assert graph_counts(graph) == before


def test_one_ingest_of_a_run_at_a_time(graph: Connection, tmp_path: Path, info: Path) -> None:
    """A second ingest of the same files and options while one runs is refused (they would share
    the rejects file and the run's counters); a rejects folder that is a file is one line."""
    import fcntl

    links = write(tmp_path / "links.txt", HEADER + link(0, 1))
    run_id = pipeline.prepare("string", [info, links], {}, Lookup(graph.query)).run_id
    (tmp_path / "rejects").mkdir()
    with open(tmp_path / "rejects" / f"{run_id}.lock", "w") as held:  # the first ingest
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(KgctlError, match=f"is running \\(run {run_id}, lock "):
            ingest_files(graph, "string", [info, links], tmp_path)
    assert "IngestRun" not in graph_counts(graph)
    assert ingest_files(graph, "string", [info, links], tmp_path)["relationships_written"] == 1
    with pytest.raises(KgctlError, match="--rejects-dir .*links.txt: not a folder"):
        pipeline.ingest(graph, "string", [info, links], {}, rejects_dir=links, force=True)


def test_a_byte_order_mark_is_read_past(graph: Connection, tmp_path: Path) -> None:
    """Spreadsheet exports start with a UTF-8 BOM; the header is still recognised (plain and gzip)."""
    bom = "\ufeff"
    info = write(tmp_path / "info.txt", bom + INFO)
    links = write(tmp_path / "links.txt.gz", bom + HEADER + link(0, 1) + link(1, 2), compress=True)
    result = ingest_files(graph, "string", [info, links], tmp_path)
    assert result["rows_rejected"] == 0 and result["relationships_written"] == 2
    assert {r["id"] for r in graph.query("MATCH (g:Gene) RETURN g.id AS id")} == {f"GENE{i}" for i in range(5)}


@pytest.mark.parametrize("compress", [False, True])
def test_a_non_utf8_byte_is_named_by_line_before_anything_is_written(
    graph: Connection, tmp_path: Path, info: Path, compress: bool
) -> None:
    """One 0xFF byte deep in a links file: refused up front with its line and column (it used
    to fail mid-run with an offset inside a parser block, after batches were committed)."""
    body = (HEADER + link(0, 1) * 3 + link(1, 2)).encode()
    bad = body.replace(b"9606.ENSP00000000002", b"9606.ENSP0000000\xff002")
    path = tmp_path / ("links.txt.gz" if compress else "links.txt")
    path.write_bytes(gzip.compress(bad) if compress else bad)
    before = graph_counts(graph)
    with pytest.raises(KgctlError, match=r"links.txt(.gz)?:5: not UTF-8 text \(byte 0xff at column 38\)"):
        ingest_files(graph, "string", [info, path], tmp_path)
    assert graph_counts(graph) == before


def test_cell_painting_odd_metadata_and_a_truncated_parquet(graph: Connection, tmp_path: Path) -> None:
    """A numeric Metadata_Source and a dose that is not a number are data, not tracebacks: the
    first is used as text, the second row is quarantined; a truncated parquet is one line."""
    import pandas as pd

    from kgctl.testing import generators

    made = generators.cell_painting_profiles(
        tmp_path / "made.parquet", compounds=[], genes=["TP53", "KRAS"], replicates=2, n_dmso=1
    )
    frame = pd.read_parquet(made)
    frame["Metadata_Source"] = 4  # an integer column
    frame["Metadata_mmoles_per_liter"] = ["10"] * (len(frame) - 1) + ["high"]  # text dose
    profiles = tmp_path / "odd.parquet"
    frame.to_parquet(profiles)
    result = ingest_files(graph, "morphology", [profiles], tmp_path, {"level": "well"})
    assert result["rows_rejected"] == 1 and result["rows_loaded"] == len(frame) - 1
    assert result["first_rejects"][0].endswith("field 'Metadata_mmoles_per_liter': dose is not a number: 'high'")
    ids = [r["id"] for r in graph.query("MATCH (p:MorphologyProfile) RETURN p.id AS id")]
    assert ids and all(":4:" in i for i in ids)
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(profiles.read_bytes()[: profiles.stat().st_size // 2])
    before = graph_counts(graph)
    with pytest.raises(KgctlError, match="truncated.parquet: not a readable parquet file"):
        ingest_files(graph, "morphology", [truncated], tmp_path)
    # A quote opening a header cell that never closes (found by the fuzzer): one line.
    unclosed = tmp_path / "unclosed.csv"
    header, rows = frame.to_csv(index=False).split("\n", 1)
    unclosed.write_text(header + ',"}) MATCH (n) DETACH DELETE n //\n' + rows)
    with pytest.raises(KgctlError, match="unclosed.csv: not a readable ','-separated table"):
        ingest_files(graph, "morphology", [unclosed], tmp_path, strict=True)
    # A row wider than the header (fuzzer cases 6352, 9803): pandas' message ends with "\n".
    first_row, later = rows.split("\n", 1)
    unclosed.write_text(header + "\n" + first_row + "\n" + later.replace("\n", ",1,2,3\n", 1))
    with pytest.raises(KgctlError, match=r"Expected \d+ fields in line 3, saw \d+$") as wide:
        ingest_files(graph, "morphology", [unclosed], tmp_path, strict=True)
    assert "\n" not in wide.value.message
    # One that closes in the last row: pandas' columns are not the header's (was a KeyError).
    first = next(c for c in frame.columns if not c.startswith("Metadata_"))
    unclosed.write_text(header.replace(first, '"}) MATCH (n) //,' + first, 1) + "\n" + rows + '"\n')
    with pytest.raises(KgctlError, match="unclosed.csv:1: the header cannot be read"):
        ingest_files(graph, "morphology", [unclosed], tmp_path, strict=True)
    assert graph_counts(graph) == before


def test_header_only_files_are_an_error_not_an_empty_success(graph: Connection, tmp_path: Path) -> None:
    info = write(tmp_path / "info.txt", INFO.splitlines(keepends=True)[0])
    links = write(tmp_path / "links.txt", HEADER)
    with pytest.raises(KgctlError, match="info.txt, links.txt: no data rows"):
        ingest_files(graph, "string", [info, links], tmp_path)
    run = graph.query("MATCH (r:IngestRun) RETURN r.status AS s")
    assert run in ([], [{"s": "failed"}])  # never "completed"
    assert set(graph_counts(graph)) <= {"IngestRun", "SchemaVersion"}  # no data written


@pytest.mark.adapter("expression")
@pytest.mark.parametrize("orientation", ["genes-by-samples", "samples-by-genes"])
def test_expression_short_rows_and_repeated_genes_are_quarantined(
    graph: Connection, tmp_path: Path, orientation: str
) -> None:
    """A short row is not padded with missing values, and a repeated gene never misaligns the
    vectors with Dataset.features: both are rejects, so --strict refuses the file."""
    if orientation == "genes-by-samples":  # line 3 is short, line 5 repeats TP53
        text = "gene\ts1\ts2\nTP53\t1\t2\nEGFR\t3\nKRAS\t5\t6\nTP53\t7\t8\n"
        expected = {"s1": [1.0, 5.0], "s2": [2.0, 6.0]}
    else:  # line 3 (s2) is short; the TP53 column comes twice
        text = "sample\tTP53\tKRAS\tTP53\ns1\t1\t5\t7\ns2\t2\t6\ns3\t3\t4\t9\n"
        expected = {"s1": [1.0, 5.0], "s3": [3.0, 4.0]}
    path = write(tmp_path / "matrix.tsv", text)
    before = graph_counts(graph)
    with pytest.raises(
        KgctlError,
        match=r"--strict: 2 of \d+ rows are invalid, so nothing was written; first: matrix.tsv",
    ):
        ingest_files(graph, "expression", [path], tmp_path, {"dataset": "m"}, strict=True)
    assert graph_counts(graph) == before
    result = ingest_files(graph, "expression", [path], tmp_path, {"dataset": "m"})
    assert result["rows_rejected"] == 2
    rejects = Path(result["rejects_file"]).read_text()
    assert "appears more than once (the first is kept)" in rejects
    assert f"matrix.tsv\t3\t{'EGFR' if orientation == 'genes-by-samples' else 's2'}\tshort row" in rejects
    assert graph.query("MATCH (d:Dataset {name: 'm'}) RETURN d.features AS f")[0]["f"] == [
        "TP53",
        "KRAS",
    ]
    found = graph.query("MATCH (p:ExpressionProfile) RETURN p.sample AS s, p.features AS f")
    assert {r["s"]: r["f"] for r in found} == expected


@pytest.mark.adapter("perturbseq")
def test_perturbseq_repeated_observations_are_rejected_not_counted_as_loaded(graph: Connection, tmp_path: Path) -> None:
    import anndata

    path = generators.perturbseq_h5ad(tmp_path / "K562_dup.h5ad", n_perturbations=6, n_readout=10, n_controls=2)
    adata = anndata.read_h5ad(path)
    names = list(adata.obs_names)
    names[3] = names[1]  # the fourth row repeats the second's id
    adata.obs_names = names
    adata.write_h5ad(path)
    before = graph_counts(graph)
    with pytest.raises(
        KgctlError,
        match=r"K562_dup.h5ad:4: field 'obs_names': .* appears more than once \(row 2 is kept\)",
    ):
        ingest_files(graph, "perturbseq", [path], tmp_path, strict=True)
    assert graph_counts(graph) == before
    result = ingest_files(graph, "perturbseq", [path], tmp_path)
    assert (result["rows_read"], result["rows_loaded"], result["rows_rejected"]) == (8, 7, 1)
    assert graph_counts(graph)["ExpressionProfile"] == 7


def command_lines() -> list[str]:
    """Every process's command line (Linux's /proc; a process may end while it is read)."""
    lines = []
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            lines.append(entry.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    return lines


@pytest.mark.adapter("perturbseq")
@pytest.mark.adapter("expression")
def test_an_h5ad_on_which_libhdf5_loops_forever_is_one_line_and_nothing_is_written(
    graph: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fuzzer case 2225: one byte in the size of a global-heap string (an `encoding-type` "dict"
    attribute) sends libhdf5 into an endless loop (HDFGroup/hdf5#1707); the read is bounded."""
    import kgctl.ingest.h5ad

    path = generators.perturbseq_h5ad(tmp_path / "K562_loop.h5ad", n_perturbations=6, n_readout=10, n_controls=2)
    data = bytearray(path.read_bytes())
    size_then_text = b"\x04\x00\x00\x00\x00\x00\x00\x00dict"  # a heap object's 8-byte size, its text
    at = data.rfind(size_then_text)
    assert data.count(size_then_text) >= 2, "the generated file no longer has the heap layout"
    data[at] = 163
    path.write_bytes(data)
    monkeypatch.setattr(kgctl.ingest.h5ad, "READ_TIMEOUT_S", 5.0)  # the loop never ends anyway
    before = graph_counts(graph)
    for source in ("perturbseq", "expression"):
        with pytest.raises(
            KgctlError,
            match=r"K562_loop.h5ad: damaged .h5ad file \(obs, var or "
            r"the shape of X\): reading it did not finish in 5 s",
        ) as caught:
            ingest_files(graph, source, [path], tmp_path)
        assert "\n" not in caught.value.message
    assert graph_counts(graph) == before
    assert not [cmd for cmd in command_lines() if str(path) in cmd]  # the looping readers are gone


@pytest.mark.adapter("perturbseq")
def test_the_h5ad_reader_reports_bad_files_in_one_line_and_serves_the_next(tmp_path: Path) -> None:
    import anndata

    from kgctl.ingest.h5ad import _IDLE, H5ad

    sound = generators.perturbseq_h5ad(tmp_path / "K562.h5ad", n_perturbations=5, n_readout=7, n_controls=1)
    not_hdf5 = write(tmp_path / "K562_text.h5ad", "gene\tvalue\n")
    packed = tmp_path / "K562_packed.h5ad"
    packed.write_bytes(gzip.compress(sound.read_bytes()))
    expected = np.asarray(anndata.read_h5ad(sound).X)
    for _ in range(2):  # a failure leaves the reader able to serve the next file
        with pytest.raises(KgctlError, match=r"K562_text.h5ad: not a readable .h5ad"):
            H5ad(not_hdf5)
        with pytest.raises(KgctlError, match=r"K562_packed.h5ad: gzip-compressed"):
            H5ad(packed)
        with H5ad(sound) as h5ad:
            assert h5ad.header.shape == expected.shape == (len(h5ad.header.obs), 7)
            assert np.array_equal(h5ad.rows(0, 2), expected[:2])
            assert np.array_equal(h5ad.rows(2, 99), expected[2:])
    assert len(_IDLE) == 1  # one reader, started once, kept for the next file
    with H5ad(sound) as h5ad:  # a reader that crashes (libhdf5 can segfault on a damaged file)
        os.kill(h5ad._reader.process.pid, signal.SIGSEGV)
        with pytest.raises(
            KgctlError,
            match=r"K562.h5ad: damaged .h5ad file \(X rows 1-2\): "
            r"the HDF5 reader crashed \(exit code -11\)",
        ):
            h5ad.rows(0, 2)
    assert not _IDLE  # the crashed reader is not given to the next file


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_full_disk_while_writing_rejects_is_one_line_and_the_rerun_converges(
    graph: Connection, neo4j_server: TestServer, tmp_path: Path, info: Path
) -> None:
    """The rejects file on a full disk (/dev/full answers every write with ENOSPC): one line,
    nothing half-written, and the same command on a disk with room completes."""
    links = write(tmp_path / "links.txt", HEADER + link(0, 1) + link(1, 2, "x") * 3000)
    rejects = tmp_path / "rej"
    rejects.mkdir()
    run_id = pipeline.prepare("string", [info, links], {}, Lookup(graph.query)).run_id
    (rejects / f"{run_id}.rejects.tsv").symlink_to("/dev/full")
    cmd = [sys.executable, "-m", "kgctl.cli", "ingest", "string", str(info), str(links), "--rejects-dir", str(rejects)]
    before = graph_counts(graph)
    proc = subprocess.run(cmd, env=neo4j_server.env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: No space left on device (reading the inputs or writing "
        f"{rejects / f'{run_id}.rejects.tsv'}); the run can be resumed"
    ]
    assert graph_counts(graph) == before  # it failed before its first batch: nothing written
    (rejects / f"{run_id}.rejects.tsv").unlink()
    again = subprocess.run([*cmd, "--json"], env=neo4j_server.env, capture_output=True, text=True, timeout=300)
    out = json.loads(again.stdout)
    assert again.returncode == 0 and out["status"] == "completed" and out["rows_rejected"] == 3000
    assert graph_counts(graph)["INTERACTS_WITH"] == 1


@pytest.mark.adapter("depmap")
def test_depmap_with_an_empty_first_line_is_one_error(graph: Connection, tmp_path: Path) -> None:
    """Found by the fuzzer (shuffled lines put the trailing empty line first)."""
    path = write(tmp_path / "CRISPRGeneEffect.csv", "\nModelID,TP53 (7157)\nACH-000001,0.5\n")
    with pytest.raises(KgctlError, match=r"CRISPRGeneEffect.csv:1: field 'ModelID': no ModelID"):
        ingest_files(graph, "depmap", [path], tmp_path)
    assert graph_counts(graph).get("CellLine", 0) == 0
