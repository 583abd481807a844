"""The one training loop every model uses: a seeded module, AdamW and the config's schedule, a
fresh seed every epoch, checkpoints that resume to exactly the weights of an uninterrupted run,
DistributedDataParallel over `nproc` processes (gloo on CPU, NCCL on GPUs), bf16 autocast on
CUDA, a history, and progress through a callback (from every process, by a queue). A task with
validation data is scored after every epoch: the weights of its best epoch are the ones kept,
and `patience` ends a run that has stopped improving."""

from __future__ import annotations

import json
import os
import resource
import socket
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.multiprocessing.spawn import start_processes
from torch.nn.parallel import DistributedDataParallel

from kgctl.core.errors import KgctlError
from kgctl.core.progress import OnProgress, silent
from kgctl.models.base import Task

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
HISTORY = "history.json"


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's draws: the same run, the same batches, resumed or not."""
    return seed * 1_000_003 + epoch


def resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise KgctlError("--device cuda: PyTorch sees no CUDA device here")
    if device not in ("cpu", "cuda"):
        raise KgctlError(f"--device must be auto, cpu or cuda, not {device!r}")
    return device


def shard(items: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """This process's equal share of one global batch (the remainder is dropped, so every
    process takes the same steps)."""
    share = len(items) // world
    return items[rank * share : (rank + 1) * share]


@dataclass
class Fitted:
    """What `fit` returns: the figures of the run and, in memory, the trained module (rank 0)."""

    result: dict[str, Any]
    module: nn.Module | None


def fit(
    task: Task,
    out: Path | None,
    *,
    device: str = "auto",
    nproc: int = 1,
    resume: bool = False,
    stop_after: int | None = None,
    on_progress: OnProgress = silent,
) -> Fitted:
    """Train `task` and leave `model.pt`, `checkpoint.pt` and `history.json` in `out`
    (`out` None: in memory, one process, no checkpoints). `stop_after` ends this call after that
    many epochs in all; `resume` continues from the checkpoint."""
    kind = resolve_device(device)
    if nproc < 1:
        raise KgctlError("--nproc must be at least 1")
    if kind == "cuda" and nproc > torch.cuda.device_count():
        raise KgctlError(f"--nproc {nproc} needs {nproc} GPUs; {torch.cuda.device_count()} visible")
    if out is None and (nproc > 1 or resume or stop_after is not None):
        raise KgctlError("training in memory takes one process and cannot stop or resume")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if nproc == 1:
        module, history = _worker(0, 1, 0, task, out, kind, resume, stop_after, on_progress)
    else:
        assert out is not None
        context = mp.get_context("spawn")
        messages = context.SimpleQueue()
        args = (nproc, _free_port(), task, out, kind, resume, stop_after, messages)
        processes = start_processes(
            _spawned,
            args=args,
            nprocs=nproc,
            join=False,  # type: ignore[no-untyped-call]
            start_method="spawn",
        )
        while not processes.join(timeout=0.2):
            _relay(messages, on_progress)
        _relay(messages, on_progress)
        module, history = None, json.loads((out / HISTORY).read_text())
    epochs = history["epochs"]
    trained = [e for e in epochs if not e.get("resumed")]
    last = epochs[-1]
    per_epoch = float(np.median([e["seconds"] for e in trained])) if trained else None
    result = {
        "device": kind,
        "nproc": nproc,
        "backend": ("nccl" if kind == "cuda" else "gloo") if nproc > 1 else None,
        "precision": "bf16 autocast" if kind == "cuda" else "float32",
        "epochs_done": len(epochs),
        "complete": len(epochs) == task.config.epochs or bool((history["selection"] or {}).get("stopped_early")),
        "resumed_from_epoch": history["resumed_from"],
        "final_loss": last["loss"],
        "final": {k: v for k, v in last.items() if k not in ("epoch", "loss", "lr", "steps", "seconds", "resumed")},
        "seconds": round(time.perf_counter() - started, 2),
        "seconds_per_epoch": round(per_epoch, 4) if per_epoch is not None else None,
        "peak_memory_gb": history["peak_memory_gb"],
        "selection": history["selection"],
        "warnings": task.warnings(epochs),
        "history": epochs,
    }
    return Fitted(result, module)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _relay(messages: Any, on_progress: OnProgress) -> None:
    while not messages.empty():
        on_progress(*messages.get())


def _spawned(
    rank: int,
    world: int,
    port: int,
    task: Task,
    out: Path,
    kind: str,
    resume: bool,
    stop_after: int | None,
    messages: Any,
) -> None:
    def report(done: float, total: float | None, text: str) -> None:
        if rank == 0:
            messages.put((done, total, text))

    _worker(rank, world, port, task, out, kind, resume, stop_after, report)


def schedule_for(optimizer: torch.optim.Optimizer, name: str, epochs: int) -> Any:
    """The learning-rate schedule, stepped once per epoch."""
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=0)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def _worker(
    rank: int,
    world: int,
    port: int,
    task: Task,
    out: Path | None,
    kind: str,
    resume: bool,
    stop_after: int | None,
    report: Callable[[float, float | None, str], None],
) -> tuple[nn.Module, dict[str, Any]]:
    config = task.config
    cuda = kind == "cuda"
    if world > 1:
        dist.init_process_group(
            "nccl" if cuda else "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
        )
        if not cuda:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    device = torch.device(f"cuda:{rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
        torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(config.seed)
    module = task.build_module().to(device)
    wrapped: nn.Module = DistributedDataParallel(module) if world > 1 else module
    optimizer = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = schedule_for(optimizer, config.schedule, config.schedule_epochs or config.epochs)
    epochs: list[dict[str, Any]] = []
    start = 0
    best: dict[str, Any] | None = None  # the best validated epoch: number, figure and weights
    if resume and out is not None and (out / CHECKPOINT).exists():
        state = torch.load(out / CHECKPOINT, map_location=device, weights_only=False)
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        epochs = [{**e, "resumed": True} for e in state["epochs"]]
        start, best = state["epoch"], state.get("best")
    task.to(device)
    end = min(config.epochs, stop_after) if stop_after is not None else config.epochs
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    report(start, config.epochs, f"{task.name} epoch {start}/{config.epochs}")
    stopped = False
    for epoch in range(start, end):
        tic = time.perf_counter()
        torch.manual_seed(epoch_seed(config.seed, epoch) * 64 + rank)  # dropout etc., resumable
        module.train()
        with autocast:
            task.start_epoch(module, epoch, rank)
        names: list[str] = []
        totals = torch.zeros(0, device=device)
        for batch in task.batches(epoch, rank, world):
            with autocast:
                loss, figures = task.loss(wrapped, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            if not names:
                names = list(figures)
                totals = torch.zeros(len(names) + 2, device=device)
            totals += torch.stack(
                [loss.detach().float(), *(figures[k].detach().float() for k in names), torch.ones((), device=device)]
            )
        schedule.step()
        if world > 1:
            dist.all_reduce(totals)
        count = max(float(totals[-1]), 1.0) if len(totals) else 1.0
        entry: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": round(float(totals[0]) / count, 6) if len(totals) else None,
        }
        entry |= {k: round(float(totals[i + 1]) / count, 6) for i, k in enumerate(names)}
        entry |= {k: round(v, 6) for k, v in task.epoch_facts(module).items()}
        figure = task.validate(module.eval())
        stop = False
        if figure is not None:
            entry[task.selection_metric] = round(figure, 6)
            if best is None or figure > best["figure"]:
                best = {
                    "epoch": epoch + 1,
                    "figure": figure,
                    "state": {k: v.detach().clone() for k, v in module.state_dict().items()},
                }
            stop = config.patience > 0 and epoch + 1 - best["epoch"] >= config.patience
        entry |= {
            "lr": schedule.get_last_lr()[0],
            "steps": int(count) // world if len(totals) else 0,
            "seconds": round(time.perf_counter() - tic, 4),
        }
        epochs.append(entry)
        report(
            epoch + 1,
            config.epochs,
            f"{task.name} epoch {epoch + 1}/{config.epochs} loss {entry['loss']:.3f}",
        )
        if out is not None and rank == 0 and ((epoch + 1) % config.checkpoint_every == 0 or epoch + 1 == end or stop):
            atomic_save(
                {
                    "model": module.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(),
                    "epoch": epoch + 1,
                    "epochs": epochs,
                    "best": best,
                },
                out / CHECKPOINT,
            )
        if stop:
            end, stopped = epoch + 1, True
            break
    peak = (
        torch.cuda.max_memory_allocated(device) / 1e9
        if cuda
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    )
    selection = None
    if best is not None:
        module.load_state_dict(best["state"])
        selection = {
            "metric": task.selection_metric,
            "epoch": best["epoch"],
            "value": round(best["figure"], 6),
            "stopped_early": stopped,
            "patience": config.patience,
        }
    history = {
        "epochs": epochs,
        "resumed_from": start if resume else None,
        "peak_memory_gb": round(peak, 3),
        "selection": selection,
    }
    if out is not None and rank == 0:
        if end == config.epochs or stopped:
            atomic_save(
                {
                    "model": task.name,
                    "module_args": task.module_args,
                    "state_dict": module.state_dict(),
                    "selection": selection,
                },
                out / MODEL,
            )
        (out / HISTORY).write_text(json.dumps(history, indent=1))
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return module.eval(), history


def atomic_save(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def load_module(folder: Path, build: Callable[..., nn.Module], device: str = "cpu") -> nn.Module:
    """The trained module in `folder/model.pt`, rebuilt by `build(**module_args)`, in eval mode."""
    if not (folder / MODEL).exists():
        raise KgctlError(f"{folder}: no trained model (model.pt); the run did not finish")
    state = torch.load(folder / MODEL, map_location=device, weights_only=False)
    module = build(**state["module_args"])
    module.load_state_dict(state["state_dict"])
    return module.eval()


def untrained_module(folder: Path, build: Callable[..., nn.Module], seed: int, device: str = "cpu") -> nn.Module:
    """The trained module's architecture (its recorded `module_args`) freshly initialised after
    seeding torch with `seed`, in eval mode: every encoder's untrained control."""
    state = torch.load(folder / MODEL, map_location=device, weights_only=False)
    torch.manual_seed(seed)
    return build(**state["module_args"]).to(device).eval()


def run_module(
    folder: Path, build: Callable[..., nn.Module], seed: int, device: str = "cpu", *, untrained: bool = False
) -> nn.Module:
    """The run's trained module, or with `untrained` its untrained control."""
    return untrained_module(folder, build, seed, device) if untrained else load_module(folder, build, device)
