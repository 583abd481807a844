"""Random-walk steps/s on the real STRING graph (../shared/data/string): kgctl's vectorised walker
beside a straightforward per-walker loop (torch_cluster has no PyPI wheels, so it is used only when
importable), uniform and weighted, on the CPU and on CUDA when there is one; peak memory.

    python benchmarks/walks.py [--length 4] [--walks-per-node 10]

Writes benchmarks/results/walks.json.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))

from machine import write_result  # noqa: E402

from kgctl.graph.walks import CSRGraph, random_walks  # noqa: E402
from kgctl.ingest.base import Lookup  # noqa: E402
from kgctl.ingest.pipeline import prepare  # noqa: E402
from kgctl.ingest.readers import ByteCounter  # noqa: E402
from kgctl.ingest.records import Edge, EdgeBlock  # noqa: E402
from kgctl.testing import shared_data_dir  # noqa: E402


def string_graph() -> tuple[torch.Tensor, torch.Tensor, int]:
    """INTERACTS_WITH of the real STRING file as a [2, E] index and combined_score / 1000."""
    folder = shared_data_dir() / "string"
    files = [folder / "9606.protein.info.v12.0.subset.txt.gz",
             folder / "9606.protein.links.full.v12.0.subset.txt.gz"]  # fmt: skip
    adapter = prepare("string", files, {}, Lookup(None)).adapter
    index: dict[str, int] = {}
    src: list[int] = []
    dst: list[int] = []
    score: list[float] = []
    for record in adapter.records(ByteCounter()):
        if isinstance(record, EdgeBlock):
            pairs = zip(record.start_ids.to_pylist(), record.end_ids.to_pylist(), strict=True)
            scores = record.props["combined_score"].tolist()
        elif isinstance(record, Edge):
            pairs, scores = (
                iter([(record.start_id, record.end_id)]),
                [record.props["combined_score"]],
            )
        else:
            continue
        for (a, b), s in zip(pairs, scores, strict=True):
            src.append(index.setdefault(a, len(index)))
            dst.append(index.setdefault(b, len(index)))
            score.append(s / 1000)
    return torch.tensor([src, dst]), torch.tensor(score), len(index)


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


def best_of(fn: Any, repeats: int = 3) -> float:
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
    edge_index, weight, n = string_graph()
    graph = CSRGraph.from_edge_index(edge_index, n, weight, undirected=True)
    starts = torch.arange(n)
    walkers = n * args.walks_per_node
    steps = walkers * args.length
    figures: dict[str, Any] = {"nodes": n, "edges_undirected": int(edge_index.shape[1]),
                               "csr_entries": graph.num_edges, "walk_length": args.length,
                               "walkers": walkers, "steps": steps}  # fmt: skip
    torch.set_num_threads(torch.get_num_threads())
    for weighted in (False, True):
        name = "weighted" if weighted else "uniform"
        seconds = best_of(lambda w=weighted: random_walks(  # type: ignore[misc]
            graph, starts, args.length, walks_per_node=args.walks_per_node, weighted=w, seed=0))  # fmt: skip
        figures[f"cpu_{name}"] = {
            "seconds": round(seconds, 4),
            "steps_per_s": round(steps / seconds),
        }
    rowptr, col = graph.rowptr.tolist(), graph.col.tolist()
    rng = random.Random(0)
    subset = [i % n for i in range(args.reference_walkers)]
    seconds = best_of(lambda: reference_walks(rowptr, col, subset, args.length, rng), repeats=1)
    ref_steps = len(subset) * args.length
    figures["cpu_reference_per_walker_loop"] = {"walkers": len(subset), "seconds": round(seconds, 3),
                                                "steps_per_s": round(ref_steps / seconds)}  # fmt: skip
    figures["speedup_vs_reference_uniform"] = round(
        figures["cpu_uniform"]["steps_per_s"]
        / figures["cpu_reference_per_walker_loop"]["steps_per_s"],
        1,
    )
    try:
        from torch_cluster import random_walk  # type: ignore[import-not-found]
    except ImportError:
        figures["torch_cluster"] = "not importable (PyPI has no wheels): compared with the loop"
    else:
        row = torch.repeat_interleave(torch.arange(n), graph.rowptr.diff())
        many = starts.repeat_interleave(args.walks_per_node)
        seconds = best_of(lambda: random_walk(row, graph.col, many, args.length))
        figures["torch_cluster"] = {
            "seconds": round(seconds, 4),
            "steps_per_s": round(steps / seconds),
        }
        figures["speedup_vs_torch_cluster_uniform"] = round(
            figures["torch_cluster"]["seconds"] / figures["cpu_uniform"]["seconds"], 2
        )
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
                "walkers": n * per, "seconds": round(seconds, 4),
                "steps_per_s": round(n * per * args.length / seconds)}  # fmt: skip
    figures["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    write_result("walks", figures)


if __name__ == "__main__":
    main()
