"""The STRING view (../shared/data/string ingested into a real Neo4j): export relationships/s
beside a plain driver loop (`session.run(...).data()`) on the same view, then random-walk steps/s
on the exported graph beside a straightforward per-walker loop (torch_cluster has no PyPI wheels,
so it is measured only when importable), uniform and weighted, on the CPU and on CUDA when there is
one; peak memory.

    python benchmarks/export_walks.py [--length 4] [--walks-per-node 100]

Writes benchmarks/results/export_walks.json.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))

from machine import write_result  # noqa: E402

from kgctl.graph.connection import start_managed  # noqa: E402
from kgctl.graph.export import View, export_view  # noqa: E402
from kgctl.graph.walks import CSRGraph, random_walks  # noqa: E402
from kgctl.ingest.pipeline import ingest  # noqa: E402
from kgctl.testing.fixtures import make_test_server, shared_data_dir  # noqa: E402


def exported_view(work: Path, figures: dict[str, Any]) -> View:
    """Ingest the real STRING files into a fresh server, export the gene-association view three
    times (best of), and time the plain driver loop on the same relationships."""
    folder = shared_data_dir() / "string"
    files = [folder / "9606.protein.info.v12.0.subset.txt.gz", folder / "9606.protein.links.full.v12.0.subset.txt.gz"]
    ts = make_test_server(work / "server", heap="4g", pagecache="2g", start_timeout=300)
    start_managed(ts.settings)
    try:
        with ts.connect() as conn:
            ingest(conn, "string", files, {}, rejects_dir=work / "rejects")
            times = []
            for _ in range(3):
                started = time.perf_counter()
                view = export_view(conn, "gene-association", work / "view", use_cache=False)
                times.append(time.perf_counter() - started)
            assert isinstance(view, View)
            rels = len(view.edges["INTERACTS_WITH"][0])
            started = time.perf_counter()
            export_view(conn, "gene-association", work / "view")
            cached = time.perf_counter() - started
            plain = []
            for _ in range(2):
                started = time.perf_counter()
                with conn.driver.session(database=conn.database) as session:
                    rows = session.run(
                        "MATCH (a:Gene)-[r:INTERACTS_WITH]->(b:Gene) RETURN a.id AS a, b.id AS b, r.combined_score AS w"
                    ).data()
                plain.append(time.perf_counter() - started)
            assert len(rows) == rels
    finally:
        ts.server.stop(force=True, timeout=60)
    best, base = min(times), min(plain)
    figures["export"] = {
        "relationships": rels,
        "nodes": len(view.node_ids),
        "seconds_each": [round(t, 3) for t in times],
        "relationships_per_s_best": round(rels / best),
        "cached_seconds": round(cached, 3),
    }
    figures["plain_driver_loop"] = {
        "seconds_each": [round(t, 3) for t in plain],
        "relationships_per_s_best": round(rels / base),
    }
    figures["export_speedup_vs_plain_loop"] = round(base / best, 1)
    return view


def reference_walks(
    rowptr: list[int], col: list[int], starts: list[int], length: int, rng: random.Random
) -> list[list[int]]:
    """The straightforward version: one walker at a time, one step at a time."""
    out = []
    for node in starts:
        path = [node]
        for _ in range(length):
            low, high = rowptr[node], rowptr[node + 1]
            if high > low:
                node = col[rng.randrange(low, high)]
            path.append(node)
        out.append(path)
    return out


def best_of(fn: Any, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=4)  # InfoAlign's walk length
    parser.add_argument("--walks-per-node", type=int, default=100)
    parser.add_argument("--reference-walkers", type=int, default=20_000)
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kgctl-bench-") as tmp:
        view = exported_view(Path(tmp), figures)
    data = view.to_pyg()  # both directions of every pair, weight combined_score
    n = data.num_nodes
    graph = CSRGraph.from_edge_index(data.edge_index, n, data.edge_weight / 1000)
    starts = torch.arange(n)
    walkers = n * args.walks_per_node
    steps = walkers * args.length
    figures["walks"] = {
        "nodes": n,
        "csr_entries": graph.num_edges,
        "walk_length": args.length,
        "walkers": walkers,
        "steps": steps,
    }
    # The first call on a graph also builds its walk table (cached on the graph after that);
    # torch_cluster instead converts row to rowptr inside every call.
    fresh = CSRGraph.from_edge_index(data.edge_index, n, data.edge_weight / 1000)
    started = time.perf_counter()
    random_walks(fresh, starts, args.length, walks_per_node=args.walks_per_node, seed=0)
    first = time.perf_counter() - started
    figures["cpu_uniform_first_call"] = {
        "seconds": round(first, 4),
        "steps_per_s": round(steps / first),
    }
    for weighted in (False, True):
        name = "weighted" if weighted else "uniform"
        seconds = best_of(
            lambda w=weighted: random_walks(
                graph, starts, args.length, walks_per_node=args.walks_per_node, weighted=w, seed=0
            )
        )
        figures[f"cpu_{name}"] = {
            "seconds": round(seconds, 4),
            "steps_per_s": round(steps / seconds),
        }
    rowptr, col = graph.rowptr.tolist(), graph.col.tolist()
    rng = random.Random(0)
    subset = [i % n for i in range(args.reference_walkers)]
    seconds = best_of(lambda: reference_walks(rowptr, col, subset, args.length, rng), repeats=1)
    ref_steps = len(subset) * args.length
    figures["cpu_reference_per_walker_loop"] = {
        "walkers": len(subset),
        "seconds": round(seconds, 3),
        "steps_per_s": round(ref_steps / seconds),
    }
    figures["speedup_vs_reference_uniform"] = round(
        figures["cpu_uniform"]["steps_per_s"] / figures["cpu_reference_per_walker_loop"]["steps_per_s"],
        1,
    )
    try:
        from torch_cluster import random_walk  # type: ignore[import-not-found]
    except ImportError:
        figures["torch_cluster"] = "not importable (PyPI has no wheels): compared with the loop"
    else:  # built from its sdist (`pip install --no-build-isolation torch-cluster`)
        row = torch.repeat_interleave(torch.arange(n), graph.rowptr.diff())
        many = starts.repeat_interleave(args.walks_per_node)
        contenders: dict[str, Callable[[], object]] = {
            "kgctl_uniform": lambda: random_walks(
                graph, starts, args.length, walks_per_node=args.walks_per_node, seed=0
            ),
            "torch_cluster_nodes_only": lambda: random_walk(
                row, graph.col, many, args.length, coalesced=False, num_nodes=n
            ),
            # kgctl always returns edge ids too (InfoAlign's path weights need them)
            "torch_cluster_with_edge_ids": lambda: random_walk(
                row, graph.col, many, args.length, coalesced=False, num_nodes=n, return_edge_indices=True
            ),
        }
        rounds: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(9):  # interleaved, so machine noise hits all three alike
            for name, fn in contenders.items():
                started = time.perf_counter()
                fn()
                rounds[name].append(time.perf_counter() - started)
        median = {name: sorted(times)[len(times) // 2] for name, times in rounds.items()}
        figures["interleaved_medians"] = {
            name: {"seconds": round(t, 4), "steps_per_s": round(steps / t)} for name, t in median.items()
        }
        for name in ("torch_cluster_nodes_only", "torch_cluster_with_edge_ids"):
            figures[f"speedup_vs_{name}"] = round(median[name] / median["kgctl_uniform"], 2)
    if torch.cuda.is_available():
        gpu = graph.to("cuda")
        big = torch.arange(n, device="cuda")
        per = max(1, 10_000_000 // n)  # about 10 million walkers at once
        for weighted in (False, True):

            def run(w: bool = weighted) -> None:
                random_walks(gpu, big, args.length, walks_per_node=per, weighted=w, seed=0)
                torch.cuda.synchronize()

            run()  # CUDA context and kernels
            seconds = best_of(run)
            figures[f"cuda_{'weighted' if weighted else 'uniform'}"] = {
                "walkers": n * per,
                "seconds": round(seconds, 4),
                "steps_per_s": round(n * per * args.length / seconds),
            }
    figures["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    figures["targets"] = {
        "export_speedup": 5,
        "export_relationships_per_s": 500_000,
        "walks_vs_torch_cluster_cpu": 1.0,
        "cuda_steps_per_s": 1e9,
    }
    write_result("export_walks", figures)


if __name__ == "__main__":
    main()
