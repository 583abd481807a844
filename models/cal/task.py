"""CAL's training problem for the shared trainer: batches of positive pairs in a seeded order per
epoch, both orientations across epochs for the half transform, and the in-batch or
random-negative InfoNCE; plus the bilinear baseline (methods/cal.md §8.5) on the same batches and
loss, so that only the model family differs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgctl.models.base import Task
from kgctl.models.cal.config import CALConfig
from kgctl.models.cal.data import Split
from kgctl.models.cal.model import CALModel, in_batch_loss, known_pair_keys, random_negative_loss
from kgctl.models.trainer import epoch_seed, shard

MIN_BATCH = 8  # a trailing batch with fewer pairs per process is skipped, as in the reference


class CALTask(Task):
    """Positive `pairs` (indices into `emb`) for f(x) = normalize(α·x + (1−α)·g(x))."""

    config: CALConfig
    flip_half = True  # the half transform sees both orientations of a pair across epochs

    def __init__(self, config: CALConfig, emb: np.ndarray, pairs: np.ndarray, *, name: str = "cal",
                 split: Split | None = None, embedding: dict[str, Any] | None = None) -> None:  # fmt: skip
        super().__init__(name, config, {"dim": int(emb.shape[1]), "hidden": config.hidden_dim,
                                        "layers": config.layers})  # fmt: skip
        self.emb, self.pairs = emb, pairs
        self.split, self.embedding = split, embedding or {}  # what the run records of the data

    def build_module(self) -> nn.Module:
        return CALModel(**self.module_args)

    def fingerprint(self) -> str:
        return hashlib.sha256(
            self.emb.tobytes() + self.pairs.astype(np.int64).tobytes()
        ).hexdigest()

    def inputs(self) -> Tensor:
        return torch.from_numpy(self.emb)

    def to(self, device: torch.device) -> None:
        self.device = device
        self.x = self.inputs().to(device)
        self.p = torch.from_numpy(self.pairs).long().to(device)
        self.n = len(self.emb)
        self.known = known_pair_keys(self.p, self.n)

    def start_epoch(self, module: nn.Module, epoch: int, rank: int) -> None:
        seed = epoch_seed(self.config.seed, epoch) * 64 + rank
        self.draws = torch.Generator(device=self.device).manual_seed(seed)
        self.pool: Tensor | None = None
        if self.config.loss == "random-negatives":
            with torch.no_grad():
                self.pool = module(self.x).detach()

    def batches(self, epoch: int, rank: int, world: int) -> Iterator[Tensor]:
        order = torch.Generator().manual_seed(epoch_seed(self.config.seed, epoch))
        perm = torch.randperm(len(self.p), generator=order).to(self.device)
        flip = (torch.rand(len(self.p), generator=order) < 0.5).to(self.device)
        for lo in range(0, len(perm), self.config.batch_size):
            idx = shard(perm[lo : lo + self.config.batch_size], rank, world)
            if len(idx) < MIN_BATCH:
                continue
            batch = self.p[idx]
            if self.flip_half and self.config.transform == "half":
                batch = torch.where(flip[idx, None], batch.flip(1), batch)
            yield batch

    def loss(self, module: nn.Module, batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        a, b = batch[:, 0], batch[:, 1]
        x, config = self.x, self.config
        if config.transform == "both":
            za, zb = module(torch.cat([x[a], x[b]])).split(len(a))
        else:
            za, zb = module(x[a]), x[b]
        if self.pool is None:
            loss, accuracy = in_batch_loss(za, zb, a, b, self.known, self.n, config.temperature)
        else:
            neg = torch.randint(0, self.n, (len(a), config.negatives), device=self.device,
                                generator=self.draws)  # fmt: skip
            loss, accuracy = random_negative_loss(za, zb, a, b, self.pool, neg, config.temperature)
        return loss, {"accuracy": accuracy}

    def epoch_facts(self, module: nn.Module) -> dict[str, float]:
        return {"alpha": module.alpha} if isinstance(module, CALModel) else {}


class Bilinear(nn.Module):
    """s(A, B) = ẽ_Aᵀ W ẽ_B with W = I + (M + Mᵀ)/2 symmetric, M from zeros (W = I is cosine)."""

    eye: Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.m = nn.Parameter(torch.zeros(dim, dim))
        self.register_buffer("eye", torch.eye(dim))

    def weight(self) -> Tensor:
        return self.eye + (self.m + self.m.T) / 2

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.weight()


class BilinearTask(CALTask):
    """The bilinear baseline on CAL's batches, in-batch loss, masking, optimiser, schedule and
    seed (weight decay pulls W back towards the identity, i.e. towards cosine)."""

    flip_half = False

    def __init__(self, config: CALConfig, emb: np.ndarray, pairs: np.ndarray) -> None:
        super().__init__(config.replace(loss="in-batch"), emb, pairs, name="bilinear")
        self.module_args = {"dim": int(emb.shape[1])}

    def build_module(self) -> nn.Module:
        return Bilinear(**self.module_args)

    def inputs(self) -> Tensor:
        return F.normalize(torch.from_numpy(self.emb).float(), dim=1, eps=1e-8)

    def loss(self, module: nn.Module, batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        a, b = batch[:, 0], batch[:, 1]
        loss, accuracy = in_batch_loss(module(self.x[a]), self.x[b], a, b, self.known, self.n,
                                       self.config.temperature)  # fmt: skip
        return loss, {"accuracy": accuracy}
