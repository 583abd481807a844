"""CAL's training loop: AdamW, cosine schedule per epoch, a fresh seeded permutation each epoch,
checkpoints that resume to the same weights, DistributedDataParallel over `nproc` processes
(gloo on CPU, NCCL on GPUs) and bf16 autocast on CUDA."""

from __future__ import annotations

import json
import os
import resource
import socket
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch.nn.parallel import DistributedDataParallel

from kgctl.cli.output import stderr
from kgctl.core.errors import KgctlError
from kgctl.models.cal.config import CALConfig
from kgctl.models.cal.model import CALModel, in_batch_loss, known_pair_keys, random_negative_loss

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
MIN_BATCH = 8  # a trailing batch with fewer pairs per process is skipped, as in the reference


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's permutation and draws: the same run, the same batches."""
    return seed * 1_000_003 + epoch


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise KgctlError("--device cuda: PyTorch sees no CUDA device here")
    if device not in ("cpu", "cuda"):
        raise KgctlError(f"--device must be auto, cpu or cuda, not {device!r}")
    return device


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train(emb: np.ndarray, pairs: np.ndarray, config: CALConfig, out: Path, *, device: str = "auto",
          nproc: int = 1, resume: bool = False, stop_after: int | None = None,
          progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Train on `pairs` (indices into `emb`) and leave `model.pt`, `checkpoint.pt` and
    `history.json` in `out`. `stop_after` ends this call after that many epochs in all (the
    checkpoint resumes it)."""
    kind = resolve_device(device)
    if nproc < 1:
        raise KgctlError("--nproc must be at least 1")
    if kind == "cuda" and nproc > torch.cuda.device_count():
        raise KgctlError(f"--nproc {nproc} needs {nproc} GPUs; {torch.cuda.device_count()} visible")
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    args = (
        nproc,
        _free_port(),
        emb,
        pairs,
        config.to_dict(),
        str(out),
        kind,
        resume,
        stop_after,
        progress,
    )
    if nproc == 1:
        _worker(0, *args)
    else:
        mp.spawn(_worker, args=args, nprocs=nproc, join=True)  # type: ignore[attr-defined,no-untyped-call]
    history = json.loads((out / "history.json").read_text())
    epochs = history["epochs"]
    trained = [e for e in epochs if not e.get("resumed")]
    return {
        "device": kind,
        "nproc": nproc,
        "backend": ("nccl" if kind == "cuda" else "gloo") if nproc > 1 else None,
        "precision": "bf16 autocast" if kind == "cuda" else "float32",
        "epochs_done": len(epochs),
        "complete": len(epochs) == config.epochs,
        "resumed_from_epoch": history["resumed_from"],
        "final_loss": epochs[-1]["loss"],
        "final_accuracy": epochs[-1]["accuracy"],
        "alpha": epochs[-1]["alpha"],
        "seconds": round(time.perf_counter() - started, 2),
        "seconds_per_epoch": round(float(np.median([e["seconds"] for e in trained])), 4)
        if trained
        else None,
        "peak_memory_gb": history["peak_memory_gb"],
        "history": epochs,
    }


def _worker(rank: int, world: int, port: int, emb: np.ndarray, pairs: np.ndarray,
            config_dict: dict[str, Any], out_dir: str, kind: str, resume: bool,
            stop_after: int | None, progress: bool) -> None:  # fmt: skip
    config = CALConfig(**config_dict)
    out = Path(out_dir)
    cuda = kind == "cuda"
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo", init_method=f"tcp://127.0.0.1:{port}",
                                rank=rank, world_size=world)  # fmt: skip
        if not cuda:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    device = torch.device(f"cuda:{rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(config.seed)
    model = CALModel(emb.shape[1], config.hidden_dim, config.layers).to(device)
    wrapped: torch.nn.Module = DistributedDataParallel(model) if world > 1 else model
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs, eta_min=0)
    epochs: list[dict[str, Any]] = []
    start = 0
    if resume and (out / CHECKPOINT).exists():
        state = torch.load(out / CHECKPOINT, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        epochs = [{**e, "resumed": True} for e in state["epochs"]]
        start = state["epoch"]
    x = torch.from_numpy(emb).to(device)
    p = torch.from_numpy(pairs).long().to(device)
    n = len(emb)
    known = known_pair_keys(p, n)
    end = min(config.epochs, stop_after) if stop_after is not None else config.epochs
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    bar = Progress(TextColumn("CAL {task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), console=stderr, transient=True,
                   disable=not (progress and rank == 0 and stderr.is_terminal))  # fmt: skip
    with bar:
        task = bar.add_task(f"epoch {start}/{config.epochs}", total=config.epochs, completed=start)
        for epoch in range(start, end):
            tic = time.perf_counter()
            order = torch.Generator().manual_seed(epoch_seed(config.seed, epoch))
            perm = torch.randperm(len(p), generator=order).to(device)
            flip = (torch.rand(len(p), generator=order) < 0.5).to(device)
            draws = torch.Generator(device=device).manual_seed(
                epoch_seed(config.seed, epoch) * 64 + rank
            )
            pool = None
            if config.loss == "random-negatives":
                with torch.no_grad(), autocast:
                    pool = model(x).detach()
            totals = torch.zeros(3, device=device)
            for lo in range(0, len(perm), config.batch_size):
                chunk = perm[lo : lo + config.batch_size]
                share = len(chunk) // world  # equal shares: every process takes the same steps
                if share < MIN_BATCH:
                    continue
                idx = chunk[rank * share : (rank + 1) * share]
                batch = p[idx]
                if config.transform == "half":  # both orientations across epochs
                    batch = torch.where(flip[idx, None], batch.flip(1), batch)
                a, b = batch[:, 0], batch[:, 1]
                with autocast:
                    if config.transform == "both":
                        za, zb = wrapped(torch.cat([x[a], x[b]])).split(len(a))
                    else:
                        za, zb = wrapped(x[a]), x[b]
                    if pool is None:
                        loss, accuracy = in_batch_loss(za, zb, a, b, known, n, config.temperature)
                    else:
                        neg = torch.randint(
                            0, n, (len(a), config.negatives), device=device, generator=draws
                        )
                        loss, accuracy = random_negative_loss(
                            za, zb, a, b, pool, neg, config.temperature
                        )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                totals += torch.stack(
                    [
                        loss.detach().float(),
                        accuracy.detach().float(),
                        torch.ones((), device=device),
                    ]
                )
            schedule.step()
            if world > 1:
                dist.all_reduce(totals)
            count = max(float(totals[2]), 1.0)
            epochs.append({"epoch": epoch + 1, "loss": round(float(totals[0]) / count, 6),
                           "accuracy": round(float(totals[1]) / count, 6), "alpha": round(model.alpha, 6),
                           "lr": schedule.get_last_lr()[0], "steps": int(count) // world,
                           "seconds": round(time.perf_counter() - tic, 4)})  # fmt: skip
            bar.update(
                task,
                completed=epoch + 1,
                description=f"epoch {epoch + 1}/{config.epochs} loss {epochs[-1]['loss']:.3f}",
            )
            if rank == 0 and ((epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == end):
                _atomic_save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                              "schedule": schedule.state_dict(), "epoch": epoch + 1,
                              "epochs": epochs}, out / CHECKPOINT)  # fmt: skip
    if rank == 0:
        if end == config.epochs:
            _atomic_save({"state_dict": model.state_dict(), "dim": emb.shape[1],
                          "hidden": config.hidden_dim, "layers": config.layers}, out / MODEL)  # fmt: skip
        peak = (torch.cuda.max_memory_allocated(device) / 1e9 if cuda
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6)  # fmt: skip
        (out / "history.json").write_text(json.dumps(
            {"epochs": epochs, "resumed_from": start if resume else None,
             "peak_memory_gb": round(peak, 3)}, indent=1))  # fmt: skip
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


def _atomic_save(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def load_model(out: Path, device: str = "cpu") -> CALModel:
    state = torch.load(out / MODEL, map_location=device, weights_only=False)
    model = CALModel(state["dim"], state["hidden"], state["layers"])
    model.load_state_dict(state["state_dict"])
    return model.eval()
