"""Co-essentiality at DepMap scale (17,725 genes × 1,100 cell lines, generated): the reference
G·Gᵀ top 200,000 pairs and Pearson r >= 0.5, blockwise; seconds and peak memory.

    python benchmarks/coessentiality.py [--genes 17725] [--lines 1100]

Writes benchmarks/results/coessentiality.json.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from machine import write_result  # noqa: E402

from kgctl.graph.similarity import essentiality_scorer, pairs_above, pearson_scorer, top_pairs  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=17_725)
    parser.add_argument("--lines", type=int, default=1_100)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    # Chronos-like effects: most near 0, a common-essential tail, shared modules, some missing
    modules = rng.normal(0, 0.3, (50, args.lines))
    membership = rng.integers(0, 50, args.genes)
    effect = rng.normal(-0.1, 0.25, (args.genes, args.lines)) + 1.5 * modules[membership]
    effect[rng.random(args.genes) < 0.05] -= 1.0
    effect[rng.random(effect.shape) < 0.01] = np.nan
    figures: dict[str, Any] = {
        "genes": args.genes,
        "cell_lines": args.lines,
        "pairs": args.genes * (args.genes - 1) // 2,
    }
    started = time.perf_counter()
    top = top_pairs(args.genes, essentiality_scorer(effect), 200_000)
    figures["reference_top_200k"] = {
        "seconds": round(time.perf_counter() - started, 1),
        "pairs": len(top),
    }
    started = time.perf_counter()
    above = pairs_above(args.genes, pearson_scorer(effect), 0.5)
    figures["pearson_at_least_0_5"] = {
        "seconds": round(time.perf_counter() - started, 1),
        "pairs": len(above),
    }
    figures["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    write_result("coessentiality", figures)


if __name__ == "__main__":
    main()
