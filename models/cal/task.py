"""CAL's training problem for the shared trainer: batches of positive pairs in a seeded order per
epoch, both orientations across epochs for the half transform, and the in-batch or
random-negative InfoNCE."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from kgctl.models.association.data import Inputs, Split, task_data
from kgctl.models.association.losses import in_batch_loss, known_pair_keys
from kgctl.models.association.task import PairTask
from kgctl.models.cal.config import CALConfig
from kgctl.models.cal.model import CALModel, encode, pair_scores, random_negative_loss
from kgctl.models.trainer import epoch_seed, shard

MIN_BATCH = 8  # a trailing batch with fewer pairs per process is skipped, as in the reference
MEMORISING_ACCURACY = 0.99  # in-batch top-1 accuracy at which a contrastive model has memorised
MEMORISING_LOSS = 0.25  # ... or a final loss below this share of chance (ln of the batch)
NEAR_CHANCE = 0.98  # a final loss above this share of chance: the model has learned next to nothing


class CALTask(PairTask):
    """Positive `pairs` for f(x) = normalize(α·x + (1−α)·g(x))."""

    config: CALConfig
    flip_half = True  # the half transform sees both orientations of a pair across epochs

    def __init__(
        self,
        config: CALConfig,
        emb: np.ndarray,
        pairs: np.ndarray,
        *,
        name: str = "cal",
        split: Split | None = None,
        embedding: dict[str, Any] | None = None,
        validation: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        args = {"dim": int(emb.shape[1]), "hidden": config.hidden_dim, "layers": config.layers}
        super().__init__(name, config, args, emb, pairs, split, embedding, validation)

    def build_module(self) -> nn.Module:
        return CALModel(**self.module_args)

    def score_pairs(self, module: nn.Module, pair_sets: Sequence[np.ndarray]) -> list[np.ndarray]:
        x = self.x.float()
        fx = encode(module, x)
        return [
            pair_scores(fx, x, torch.from_numpy(p).to(self.device), self.config.transform).cpu().numpy()
            for p in pair_sets
        ]

    def warnings(self, epochs: list[dict[str, Any]]) -> list[str]:
        """Memorisation (in-batch accuracy near 1 or a loss far below chance, ln of the batch),
        and the opposite: a final loss still near chance, a model that has learned little."""
        if not epochs or epochs[-1].get("loss") is None:
            return []
        last = epochs[-1]
        chance = float(np.log(max(2, min(self.config.batch_size, len(self.pairs)))))
        if last["loss"] >= NEAR_CHANCE * chance:
            return [
                f"{self.name} has learned little: its final loss {last['loss']:.3f} is near chance "
                f"(ln batch = {chance:.2f}) after {len(epochs)} epochs. Its scores are then close to "
                "its untrained ones; compare held-out figures with cosine (`kgctl evaluate`)."
            ]
        found = []
        if last.get("accuracy", 0.0) >= MEMORISING_ACCURACY:
            found.append(f"in-batch accuracy reached {last['accuracy']:.3f}")
        if last["loss"] < MEMORISING_LOSS * chance:
            found.append(f"the loss fell to {last['loss']:.3f}, far below chance (ln batch = {chance:.2f})")
        if not found:
            return []
        return [
            f"{self.name} may be memorising its training pairs: {' and '.join(found)}. Held-out "
            "figures (`kgctl evaluate`) tell; fewer epochs, transform = half or a validation "
            "split with patience help."
        ]

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
            known = self.known if config.mask else None
            loss, accuracy = in_batch_loss(za, zb, a, b, known, self.n, config.temperature)
        else:
            neg = torch.randint(0, self.n, (len(a), config.negatives), device=self.device, generator=self.draws)
            loss, accuracy = random_negative_loss(za, zb, a, b, self.pool, neg, config.temperature)
        return loss, {"accuracy": accuracy}

    def epoch_facts(self, module: nn.Module) -> dict[str, float]:
        return {"alpha": module.alpha} if isinstance(module, CALModel) else {}


def cal_task(inputs: Inputs, config: CALConfig) -> CALTask:
    """CAL's task for a config: its split, embedding and validation data."""
    split, emb, info, validation = task_data(inputs, config)
    return CALTask(config, emb, split.train, split=split, embedding=info, validation=validation)
