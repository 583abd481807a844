"""Bad input at scale, the smoke version (the benchmark runs ≥ 10,000 cases): mutated samples of
the real files of every adapter end loaded or in one clear line, never a traceback or a hang, and
a rejected --strict run changes no count."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from kgctl.graph.connection import Connection
from kgctl.testing.fixtures import TestServer
from kgctl.testing.fuzz import FILE_CASES, MUTATIONS, fuzz, make_case, samples


def test_mutations_change_the_file_and_are_seeded(shared_data: Path, tmp_path: Path) -> None:
    found = samples(shared_data, tmp_path / "samples")
    assert {s.source for s in found} == {
        "string",
        "depmap",
        "expression",
        "molecules",
        "l1000",
        "transcripts",
        "perturbseq",
        "morphology",
    }
    first = [make_case(i, found, tmp_path / "a" / str(i), random.Random(7)) for i in range(30)]
    again = [make_case(i, found, tmp_path / "b" / str(i), random.Random(7)) for i in range(30)]
    assert [(c.mutation, c.target) for c in first] == [(c.mutation, c.target) for c in again]
    text = b"id\tname\tscore\nA\tx\t1\nB\ty\t2\nC\tz\t3\n"
    for name, mutate in MUTATIONS.items():
        if name not in ("shuffled_lines", "truncate"):  # these may leave it as it was
            assert mutate(text, random.Random(1)) != text, name
    assert set(FILE_CASES) >= {"directory", "fifo", "empty", "wrong_file", "gzip_truncated"}
    header = gzip.decompress(found[0].files[0].read_bytes()).split(b"\n", 1)[0]
    assert header.startswith(b"#string_protein_id")  # the real file's first lines, as they are


@pytest.mark.slow
def test_mutated_real_files_never_crash_hang_or_change_counts(
    graph: Connection, neo4j_server: TestServer, shared_data: Path, tmp_path: Path
) -> None:
    base = Path(neo4j_server.env["KGCTL_CONFIG"]).parent
    result = fuzz(base, shared_data, tmp_path, count=150, seed=11, timeout=300)
    assert result["tried"] == 150
    assert result["failures"] == []
    assert result["tracebacks"] == result["hangs"] == result["count_changes"] == 0
    assert result["loaded"] > 0 and result["clear_errors"] > 0  # both ends are exercised
    assert len(result["by_source"]) == 8
