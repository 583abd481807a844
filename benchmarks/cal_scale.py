"""CAL at the reference DepMap scale, generated: 17,725 genes × 100 features, 200,000 positive
pairs, the reference model (hidden 1024, 3 blocks, batch 512). Training seconds per epoch for the
in-batch and the random-negative (K = 1023) losses, full-pair scoring (157 M pairs, top 10 per
gene) and peak memory; on CPU, and on CUDA (bf16 autocast) when a GPU is present.

    python benchmarks/cal_scale.py [--epochs 100] [--cpu-epochs 2] [--cpu-epochs-random 2] [--genes 17725]

A CPU run measures `--cpu-epochs` (in-batch) and `--cpu-epochs-random` epochs and projects the rest
from the median epoch (labelled as a projection); a GPU runs all `--epochs`. Writes benchmarks/results/cal_scale.json.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from machine import write_result  # noqa: E402

from kgctl.models.association.data import unordered  # noqa: E402
from kgctl.models.association.rows import ranked  # noqa: E402
from kgctl.models.cal.config import CALConfig  # noqa: E402
from kgctl.models.cal.model import CALModel, cal_rows, encode  # noqa: E402
from kgctl.models.cal.task import CALTask  # noqa: E402
from kgctl.models.trainer import fit  # noqa: E402


def synthetic(genes: int, dim: int, pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit embeddings with 200 modules, and hub-skewed positive pairs within modules (the
    co-essentiality graph is hub-dominated)."""
    rng = np.random.default_rng(seed)
    module = rng.integers(0, 200, genes)
    centres = rng.normal(size=(200, dim))
    x = centres[module] + rng.normal(size=(genes, dim))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    weight = 1.0 / np.arange(1, genes + 1) ** 0.8
    weight = weight[rng.permutation(genes)]
    order = np.argsort(module, kind="stable")
    starts = np.searchsorted(module[order], np.arange(200))
    ends = np.searchsorted(module[order], np.arange(200), side="right")
    found = np.zeros((0, 2), dtype=np.int64)
    while len(found) < pairs:
        a = rng.choice(genes, size=pairs, p=weight / weight.sum())
        m = module[a]
        b = order[starts[m] + (rng.random(pairs) * (ends[m] - starts[m])).astype(np.int64)]
        found = unordered(np.concatenate([found, np.column_stack([a, b])]), genes)
    return x, found[rng.permutation(len(found))[:pairs]]


def peak_gb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 3)


def run(device: str, x: np.ndarray, pairs: np.ndarray, epochs: dict[str, int], full: int) -> dict[str, Any]:
    out: dict[str, Any] = {"device": device}
    model = CALModel(x.shape[1]).to(device)  # timing does not depend on the weights
    xt = torch.from_numpy(x).to(device)
    fx = encode(model, xt)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    top = ranked(cal_rows(fx, xt, "both"), len(fx), 10, "none")
    if device == "cuda":
        torch.cuda.synchronize()
    out["full_pair_scoring"] = {
        "seconds": round(time.perf_counter() - started, 3),
        "ordered_pairs": top.pairs_scored,
        "top_k": 10,
        "pairs_per_second": round(top.pairs_scored / (time.perf_counter() - started)),
        "peak_rss_gb_so_far": peak_gb(),
        "peak_cuda_gb": round(torch.cuda.max_memory_allocated() / 1e9, 3) if device == "cuda" else None,
    }
    for loss in ("in-batch", "random-negatives"):
        config = CALConfig(
            dataset="synthetic",
            pca_dim=x.shape[1],
            epochs=full,
            loss=loss,
            transform="both",
            negatives=1023,
            checkpoint_every=10_000,
        )
        with tempfile.TemporaryDirectory() as tmp:
            result = fit(CALTask(config, x, pairs), Path(tmp), device=device, stop_after=epochs[loss]).result
        per_epoch = [e["seconds"] for e in result["history"]]
        out[loss] = {
            "epochs_run": len(per_epoch),
            "epochs_configured": full,
            "steps_per_epoch": result["history"][-1]["steps"],
            "seconds_per_epoch_median": round(float(np.median(per_epoch)), 3),
            "seconds_per_epoch": per_epoch,
            "projected_seconds_for_configured_epochs": round(float(np.median(per_epoch)) * full, 1)
            if len(per_epoch) < full
            else None,
            "total_seconds": result["seconds"],
            "final_loss": result["final_loss"],
            "precision": result["precision"],
            "peak_memory_gb": result["peak_memory_gb"],
        }
    out["peak_rss_gb"] = peak_gb()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=17_725)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--pairs", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--cpu-epochs", type=int, default=2, help="In-batch epochs on the CPU.")
    parser.add_argument("--cpu-epochs-random", type=int, default=2, help="Random-negative epochs on the CPU.")
    parser.add_argument("--skip-cpu", action="store_true", help="Only the GPU figures.")
    args = parser.parse_args()
    started = time.perf_counter()
    x, pairs = synthetic(args.genes, args.dim, args.pairs)
    figures: dict[str, Any] = {
        "genes": args.genes,
        "features": args.dim,
        "positive_pairs": len(pairs),
        "model": "reference: hidden 1024, 3 blocks, 2.2 M parameters for d = 100; batch 512, AdamW, τ 0.05",
        "data_seconds": round(time.perf_counter() - started, 2),
        "torch_threads": torch.get_num_threads(),
    }
    if not args.skip_cpu:
        cpu_epochs = {
            "in-batch": min(args.cpu_epochs, args.epochs),
            "random-negatives": min(args.cpu_epochs_random, args.epochs),
        }
        figures["cpu"] = run("cpu", x, pairs, cpu_epochs, args.epochs)
    every = {"in-batch": args.epochs, "random-negatives": args.epochs}
    figures["cuda"] = (
        run("cuda", x, pairs, every, args.epochs) if torch.cuda.is_available() else "no CUDA device on this machine"
    )
    write_result("cal_scale", figures)


if __name__ == "__main__":
    main()
