"""Ingest speed: online (idempotent MERGE) and bulk (neo4j-admin import) on the real STRING file,
molecules/s on the Drug Repurposing Hub table, peak memory on a generated 5-million-line STRING
file, and the same STRING file through BioCypher (PyPI) into the same Neo4j, side by side.

    python benchmarks/ingest.py [--big-lines 5000000] [--skip-big]

Writes benchmarks/results/ingest.json. Needs ../shared/data and `pip install biocypher`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from machine import write_result  # noqa: E402

from kgctl.core.errors import KgctlError  # noqa: E402
from kgctl.graph.connection import start_managed  # noqa: E402
from kgctl.ingest.bulk import bulk_ingest, run_import  # noqa: E402
from kgctl.ingest.pipeline import ingest  # noqa: E402
from kgctl.testing.fixtures import TestServer, graph_counts, make_test_server, shared_data_dir, wipe  # noqa: E402
from kgctl.testing.generators import string_files  # noqa: E402

HEAP, PAGECACHE = "4g", "2g"


def server(base: Path) -> TestServer:
    test_server = make_test_server(base, heap=HEAP, pagecache=PAGECACHE, start_timeout=300)
    start_managed(test_server.settings)
    return test_server


def timed_ingest(
    ts: TestServer, source: str, files: list[Path], rejects: Path, **kw: Any
) -> tuple[float, dict[str, Any]]:
    with ts.connect() as conn:
        started = time.perf_counter()
        result = ingest(conn, source, files, kw.pop("options", {}), rejects_dir=rejects, **kw)
        return time.perf_counter() - started, result


def peak_rss_of(cmd: list[str], env: dict[str, str]) -> tuple[float, int, dict[str, Any]]:
    """Run a command; (seconds, peak RSS of it and the children it waited for, its JSON output)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{cmd} failed: {out.decode()[-2000:]}")
    return seconds, usage.ru_maxrss * 1024, json.loads(out)


BIOCYPHER_SCHEMA = """\
gene:
  represented_as: node
  preferred_id: hgnc.symbol
  input_label: gene
gene interacts with gene:
  represented_as: edge
  input_label: interacts_with
  source: gene
  target: gene
"""


def biocypher_inputs(info: Path, links: Path, limit: int | None = None) -> tuple[Any, Any]:
    """A BioCypher adapter for the same files: nodes (id, label, props), edges (id, s, t, label, props)."""
    names: dict[str, str] = {}
    with gzip.open(info, "rt") as handle:
        next(handle)
        for line in handle:
            protein, name = line.split("\t")[:2]
            names[protein] = name.upper()

    def nodes() -> Any:
        for protein, name in names.items():
            yield (name, "gene", {"string_id": protein})

    def edges() -> Any:
        n = 0
        with gzip.open(links, "rt") as handle:
            columns = handle.readline().split()[2:]
            for line in handle:
                fields = line.split()
                a, b = names[fields[0]], names[fields[1]]
                if a < b:
                    yield (
                        None,
                        a,
                        b,
                        "interacts_with",
                        dict(zip(columns, map(int, fields[2:]), strict=True)),
                    )
                    n += 1
                    if limit is not None and n >= limit:
                        return

    return nodes(), edges()


def biocypher_config(path: Path, ts: TestServer, offline: bool, out: Path) -> Path:
    (path.parent / "schema_config.yaml").write_text(BIOCYPHER_SCHEMA)
    path.write_text(f"""biocypher:
  dbms: neo4j
  offline: {str(offline).lower()}
  strict_mode: false
  schema_config_path: {path.parent / "schema_config.yaml"}
  head_ontology: null
  log_to_disk: false
  debug: false
  output_directory: {out}
neo4j:
  database_name: neo4j
  uri: {ts.server.bolt_uri}
  user: neo4j
  password: {ts.server.password()}
  wipe: false
  multi_db: false
  delimiter: ';'
  array_delimiter: '|'
  quote_character: "'"
  file_format: csv
""")
    return path


def biocypher_online(ts: TestServer, work: Path, info: Path, links: Path, limit: int) -> dict[str, Any]:
    """BioCypher's online writer on the first `limit` interactions: it sends all edges in one
    query and matches endpoints without a label (no index), so its cost grows with the graph."""
    from biocypher import BioCypher

    with ts.connect() as conn:
        wipe(conn)
    config = biocypher_config(work / "online.yaml", ts, offline=False, out=work / "online-out")
    started = time.perf_counter()
    bc = BioCypher(biocypher_config_path=str(config))
    nodes, edges = biocypher_inputs(info, links, limit)
    bc.write_nodes(nodes)
    bc.write_edges(edges)
    seconds = time.perf_counter() - started
    with ts.connect() as conn:
        counts = graph_counts(conn)
    return {
        "edges": limit,
        "seconds": round(seconds, 2),
        "relationships_per_s": round(limit / seconds),
        "counts": counts,
    }


def biocypher_offline(ts: TestServer, work: Path, info: Path, links: Path, name: str = "offline") -> dict[str, Any]:
    """BioCypher's recommended path for large data: import CSVs, loaded by the same neo4j-admin,
    then the server started again (what kgctl --bulk does too)."""
    from biocypher import BioCypher

    out = work / f"{name}-out"
    config = biocypher_config(work / f"{name}.yaml", ts, offline=True, out=out)
    started = time.perf_counter()
    bc = BioCypher(biocypher_config_path=str(config))
    nodes, edges = biocypher_inputs(info, links)
    bc.write_nodes(nodes)
    bc.write_edges(edges)
    script = Path(bc.write_import_call())
    csv_seconds = time.perf_counter() - started
    call = next(line for line in script.read_text().splitlines() if "database import full" in line)
    args = [a for a in shlex.split(call)[1:] if a not in {"database", "import", "full", "neo4j"}]
    ts.server.stop(timeout=120)
    import_started = time.perf_counter()
    try:
        run_import(ts.server, "neo4j", args, work, options=())
    except KgctlError as exc:
        raise SystemExit(f"{exc.message}\n{exc.detail}") from exc
    import_seconds = time.perf_counter() - import_started
    start_managed(ts.settings)
    seconds = time.perf_counter() - started
    with ts.connect() as conn:
        counts = graph_counts(conn)
    rels = counts.get("GeneInteractsWithGene", 0)  # BioCypher names the type after the schema class
    return {
        "seconds": round(seconds, 2),
        "csv_seconds": round(csv_seconds, 2),
        "import_seconds": round(import_seconds, 2),
        "counts": counts,
        "relationships_per_s": round(rels / seconds) if rels else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big-lines", type=int, default=5_000_000)
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--biocypher-online-edges", type=int, default=5_000)
    args = parser.parse_args()
    data = shared_data_dir()
    string = data / "string"
    info = string / "9606.protein.info.v12.0.subset.txt.gz"
    links = string / "9606.protein.links.full.v12.0.subset.txt.gz"
    hub = data / "molecules" / "repurposing_info.tsv.gz"
    figures: dict[str, Any] = {
        "server": {"heap": HEAP, "pagecache": PAGECACHE},
        "string_file": str(links),
        "string_relationships": 170_298,
        "string_link_lines": 340_596,
    }
    with tempfile.TemporaryDirectory(prefix="kgctl-bench-") as tmp:
        work = Path(tmp)
        ts = server(work / "online")
        try:
            seconds, result = timed_ingest(ts, "string", [info, links], work / "rejects")
            figures["online_first_load"] = {
                "seconds": round(seconds, 2),
                "relationships_per_s": round(170_298 / seconds),
                "lines_per_s": round(result["rows_read"] / seconds),
                "batch_size": 10_000,
                "writers": result["writers"],
                "batches_concurrent": result["batches_concurrent"],
                "deadlock_retries": result["deadlock_retries"],
                "note": "a freshly started server: for its first ~10 s the JVM's JIT compiler "
                "takes one of the two cores",
            }
            for writers in (2, 1):  # the default (2 concurrent writers) beside one writer
                runs = []
                for _ in range(3):
                    seconds, out = timed_ingest(
                        ts, "string", [info, links], work / "rejects", force=True, writers=writers
                    )
                    assert out["relationships_written"] == 170_298
                    runs.append(round(seconds, 2))
                median = sorted(runs)[1]
                figures[f"online_idempotent_reload_writers_{writers}"] = {
                    "seconds_each": runs,
                    "seconds_median": median,
                    "relationships_per_s_median": round(170_298 / median),
                    "relationships_per_s_first": round(170_298 / runs[0]),
                }
            with ts.connect() as conn:  # the same first load again, on a server that has warmed up
                wipe(conn)
            seconds, _ = timed_ingest(ts, "string", [info, links], work / "rejects")
            figures["online_first_load_warm_server"] = {
                "seconds": round(seconds, 2),
                "relationships_per_s": round(170_298 / seconds),
            }
            with ts.connect() as conn:
                wipe(conn)
            seconds, result = timed_ingest(ts, "molecules", [hub], work / "rejects")
            figures["molecules_repurposing_hub"] = {
                "rows": result["rows_read"],
                "molecules": result["nodes_written"],
                "seconds": round(seconds, 2),
                "rows_per_s": round(result["rows_read"] / seconds),
            }
            online = biocypher_online(ts, work, info, links, args.biocypher_online_edges)
            figures["biocypher_online"] = online
            # kgctl online on the same prefix, same server, for the ratio
            prefix = work / "prefix.txt.gz"
            with gzip.open(links, "rt") as src, gzip.open(prefix, "wt") as dst:
                dst.write(src.readline())
                kept = 0
                for line in src:
                    p1, p2 = line.split()[:2]
                    dst.write(line)
                    kept += p1 < p2
                    if kept >= args.biocypher_online_edges:
                        break
            with ts.connect() as conn:
                wipe(conn)
            seconds, result = timed_ingest(ts, "string", [info, prefix], work / "rejects")
            figures["kgctl_online_same_prefix"] = {
                "seconds": round(seconds, 2),
                "relationships": result["relationships_written"],
            }
            figures["online_speedup_vs_biocypher_same_prefix"] = round(online["seconds"] / seconds, 1)
        finally:
            ts.server.stop(force=True, timeout=60)

        ts = server(work / "bulk")
        try:
            started = time.perf_counter()
            result = bulk_ingest(ts.settings, "string", [info, links], {}, rejects_dir=work / "rejects")
            seconds = time.perf_counter() - started
            figures["bulk"] = {
                "seconds_end_to_end": round(seconds, 2),
                "csv_seconds": result["csv_seconds"],
                "import_seconds": result["import_seconds"],
                "phases": result["phase_seconds"],
                "relationships_per_s_end_to_end": round(170_298 / seconds),
                "relationships_per_s_import": round(170_298 / result["import_seconds"]),
            }
            with ts.connect() as conn:
                wipe(conn)
            offline = biocypher_offline(ts, work, info, links)
            figures["biocypher_offline_import"] = offline
            figures["bulk_speedup_vs_biocypher_offline"] = round(offline["seconds"] / seconds, 2)
            # End to end on the real file: files to a queryable graph, each tool's fastest path
            figures["online_first_load_speedup_vs_biocypher_offline"] = round(
                offline["seconds"] / figures["online_first_load"]["seconds"], 2
            )
        finally:
            ts.server.stop(force=True, timeout=60)

        if not args.skip_big:
            big = work / "big"
            started = time.perf_counter()
            big_info, big_links = string_files(big, n_proteins=20_000, n_lines=args.big_lines)
            figures["big_file"] = {
                "lines": args.big_lines,
                "generate_seconds": round(time.perf_counter() - started, 1),
                "bytes": big_links.stat().st_size,
            }
            ts = server(work / "big-online")
            try:
                cmd = [
                    sys.executable,
                    "-m",
                    "kgctl.cli",
                    "ingest",
                    "string",
                    str(big_info),
                    str(big_links),
                    "--json",
                    "--rejects-dir",
                    str(work / "rejects"),
                ]
                seconds, rss, out = peak_rss_of(cmd, ts.env)
                rels = out["relationships_written"]
                figures["big_online"] = {
                    "seconds": round(seconds, 1),
                    "relationships": rels,
                    "relationships_per_s": round(rels / seconds),
                    "peak_rss_bytes_kgctl": out["peak_rss_bytes"],
                    "peak_rss_bytes_process_tree": rss,
                }
            finally:
                ts.server.stop(force=True, timeout=60)
            ts = server(work / "big-bulk")
            try:
                cmd = [
                    sys.executable,
                    "-m",
                    "kgctl.cli",
                    "ingest",
                    "string",
                    str(big_info),
                    str(big_links),
                    "--bulk",
                    "--json",
                    "--rejects-dir",
                    str(work / "rejects"),
                ]
                seconds, rss, out = peak_rss_of(cmd, ts.env)
                rels = out["relationships_written"]
                figures["big_bulk"] = {
                    "seconds_end_to_end": round(seconds, 1),
                    "relationships": rels,
                    "csv_seconds": out["csv_seconds"],
                    "import_seconds": out["import_seconds"],
                    "relationships_per_s_end_to_end": round(rels / seconds),
                    "relationships_per_s_import": round(rels / out["import_seconds"]),
                    "phases": out["phase_seconds"],
                    "peak_rss_bytes_kgctl": out["peak_rss_bytes"],
                    "peak_rss_bytes_with_neo4j_admin": rss,
                }
                offline = biocypher_offline(ts, work, big_info, big_links, name="big-offline")
                figures["big_biocypher_offline_import"] = offline
                figures["big_bulk_speedup_vs_biocypher_offline"] = round(offline["seconds"] / seconds, 2)
            finally:
                ts.server.stop(force=True, timeout=60)
    targets = {
        "online_rels_per_s": 50_000,
        "bulk_rels_per_s": 300_000,
        "speedup_vs_biocypher": 2.0,
        "peak_memory_bytes": int(1.5 * 2**30),
    }
    figures["targets"] = targets
    write_result("ingest", figures)


if __name__ == "__main__":
    main()
