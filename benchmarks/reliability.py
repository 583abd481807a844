"""Reliability figures on a fresh managed Neo4j:

- faults: the real STRING files' ingest killed (SIGKILL of kgctl, or of Neo4j) at several points
  and the Repurposing Hub molecules ingest killed likewise, each run again: is the graph the clean
  run's, property for property (canonical dump)?
- bad input at scale: `kgctl.testing.fuzz` over samples of every adapter's real files (≥ 10,000 cases):
  tried, loaded, clear errors, tracebacks, hangs, count changes;
- load: `kgctl.queries.run` from 8 client processes for 60 s against the demo graph: throughput,
  p50/p99 latency, errors; and the server's listening sockets (loopback only).

    python benchmarks/reliability.py [--cases 10000] [--clients 8] [--seconds 60] [--kills 3]
                                     [--parts faults,fuzz,load]

Writes benchmarks/results/reliability.json after every part, keeping the parts it did not run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from machine import RESULTS, write_result  # noqa: E402

from kgctl.graph.connection import start_managed  # noqa: E402
from kgctl.graph.schema import apply_schema  # noqa: E402
from kgctl.testing.fixtures import (  # noqa: E402
    TestServer,
    canonical_dump,
    cli_json,
    kill_during_ingest,
    listening,
    loopback,
    make_test_server,
    query_load,
    query_plan,
    shared_data_dir,
    wipe,
)
from kgctl.testing.fuzz import fuzz  # noqa: E402

RESULT = RESULTS / "reliability.json"


def progress(every: int) -> Any:
    def report(outcome: dict[str, Any]) -> None:
        if outcome["number"] % every == 0 or outcome["outcome"] in ("traceback", "hang"):
            print(
                f"  case {outcome['number']}: {outcome['source']} {outcome['mutation']} → {outcome['outcome']}",
                flush=True,
            )

    return report


def kill_and_resume(ts: TestServer, args: list[str], victim: str, at_batch: int) -> dict[str, Any]:
    """Start the ingest, SIGKILL `victim` once `at_batch` batches are committed, run it again."""
    code = kill_during_ingest(ts, args, victim, at_batch, timeout=900)
    started = time.perf_counter()
    resumed = cli_json(ts.env, *args)  # starts the server again after a Neo4j kill
    return {
        "victim": victim,
        "at_batch": at_batch,
        "killed": code == -signal.SIGKILL if victim == "kgctl" else code != 0,
        "batches_resumed": resumed.get("batches_resumed"),
        "status": resumed["status"],
        "stale_runs_marked": len(resumed.get("stale_runs_marked", [])),
        "resume_seconds": round(time.perf_counter() - started, 1),
    }


def faults(ts: TestServer, data: Path, work: Path, kills: int) -> dict[str, Any]:
    string = data / "string"
    sources = {
        "string": [
            "ingest",
            "string",
            str(string / "9606.protein.info.v12.0.subset.txt.gz"),
            str(string / "9606.protein.links.full.v12.0.subset.txt.gz"),
            "--batch-size",
            "10000",
        ],
        "molecules": [
            "ingest",
            "molecules",
            str(data / "molecules" / "repurposing_info.tsv.gz"),
            "--source-version",
            "2020-03-24",
            "--batch-size",
            "1000",
        ],
    }
    found: dict[str, Any] = {}
    for name, args in sources.items():
        args = [*args, "--rejects-dir", str(work / "rejects")]
        with ts.connect() as conn:
            wipe(conn)
            apply_schema(conn)
        clean = cli_json(ts.env, *args)
        with ts.connect() as conn:
            reference = canonical_dump(conn)
        batches = int(clean["batches_done"]) if "batches_done" in clean else 20
        points = sorted({max(1, round(batches * (i + 1) / (kills + 1))) for i in range(kills)})
        scenarios = []
        for victim in ("kgctl", "neo4j"):
            for point in points:
                with ts.connect() as conn:
                    wipe(conn)
                    apply_schema(conn)
                outcome = kill_and_resume(ts, args, victim, point)
                with ts.connect() as conn:
                    outcome["equal_to_clean_run"] = canonical_dump(conn) == reference
                scenarios.append(outcome)
                print(f"  {name}: {outcome}", flush=True)
        found[name] = {
            "nodes": len(reference[0]),
            "relationships": len(reference[1]),
            "clean_batches": batches,
            "scenarios": scenarios,
            "survived": sum(s["equal_to_clean_run"] for s in scenarios),
        }
    found["survived"] = sum(v["survived"] for v in found.values() if isinstance(v, dict))
    found["tried"] = sum(len(v["scenarios"]) for v in found.values() if isinstance(v, dict))
    return found


def load(ts: TestServer, clients: int, seconds: float) -> dict[str, Any]:
    from kgctl.demo import run_demo

    with ts.connect() as conn:
        wipe(conn)
        apply_schema(conn)
        run_demo(conn, ts.settings.paths.data_dir)
        plan, skipped = query_plan(conn)
    found = query_load(Path(ts.env["KGCTL_CONFIG"]).parent, plan, clients, seconds)
    server = ts.settings.server
    sockets = listening({server.bolt_port, server.http_port})
    found["first_errors"] = found["errors"][:5]
    return {
        **found,
        "errors": len(found["errors"]),
        "skipped_queries": skipped,
        "listening": sockets,
        "loopback_only": bool(sockets) and all(map(loopback, sockets)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=120, help="seconds a case may take")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--kills", type=int, default=3, help="kill points per source and victim")
    parser.add_argument("--parts", default="faults,fuzz,load")
    args = parser.parse_args()
    data = shared_data_dir()
    work = Path(tempfile.mkdtemp(prefix="kgctl-reliability-"))
    ts = make_test_server(work / "server", heap="2g", pagecache="1g", start_timeout=300)
    start_managed(ts.settings)
    parts = args.parts.split(",")
    earlier = json.loads(RESULT.read_text())["figures"] if RESULT.exists() else {}
    figures: dict[str, Any] = {k: v for k, v in earlier.items() if k not in (*parts, "summary")}
    try:
        if "faults" in parts:
            print("faults", flush=True)
            figures["faults"] = faults(ts, data, work, args.kills)
            write_result("reliability", figures)
        if "fuzz" in parts:
            print("fuzz", flush=True)
            start_managed(ts.settings)
            with ts.connect() as conn:
                wipe(conn)
            started = time.perf_counter()
            found = fuzz(
                work / "server",
                data,
                work / "fuzz",
                args.cases,
                seed=args.seed,
                timeout=args.timeout,
                on_case=progress(500),
            )
            found["failures"] = found["failures"][:50]
            figures["fuzz"] = {**found, "seconds": round(time.perf_counter() - started, 1)}
            write_result("reliability", figures)
        if "load" in parts:
            print("load", flush=True)
            figures["load"] = load(ts, args.clients, args.seconds)
            write_result("reliability", figures)
    finally:
        ts.server.stop(force=True, timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    summary: dict[str, Any] = {}
    if "faults" in figures:
        summary["faults_survived"] = f"{figures['faults']['survived']} of {figures['faults']['tried']}"
    if "fuzz" in figures:
        f = figures["fuzz"]
        summary["fuzz"] = {k: f[k] for k in ("tried", "tracebacks", "hangs", "count_changes")}
    if "load" in figures:
        lo = figures["load"]
        summary["load"] = {
            "clients": lo["clients"],
            "qps": lo["throughput_qps"],
            "p99_ms": lo["latency_ms"]["p99"],
            "errors": lo["errors"],
            "loopback_only": lo["loopback_only"],
        }
    figures["summary"] = summary
    write_result("reliability", figures)


if __name__ == "__main__":
    main()
