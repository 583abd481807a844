"""The bilinear baseline (methods/cal.md §8.5), registered as the pair scorer `bilinear`: a
symmetric form on the unit input embedding trained on CAL's batches, loss, masking, optimiser,
schedule and seed — the settings CAL chose on the split's validation pairs — so that only the
model family differs from CAL."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgctl.models.association.losses import in_batch_loss
from kgctl.models.association.scorers import PairScorer, Scores, SplitData, register_scorer
from kgctl.models.cal.config import CALConfig
from kgctl.models.cal.task import CALTask
from kgctl.models.trainer import fit


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
        loss, accuracy = in_batch_loss(module(self.x[a]), self.x[b], a, b, self.known, self.n, self.config.temperature)
        return loss, {"accuracy": accuracy}


def fit_bilinear(emb: np.ndarray, pairs: np.ndarray, config: CALConfig) -> np.ndarray:
    """The bilinear baseline's symmetric W after training on `pairs` with CAL's loss and
    schedule, on the shared trainer, in memory."""
    module = fit(BilinearTask(config, emb, pairs), None, device="cpu").module
    assert isinstance(module, Bilinear)
    return module.weight().detach().numpy()


def bilinear_scores(emb: np.ndarray, w: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """ẽ_Aᵀ W ẽ_B for each pair, on the unit-normalised embedding."""
    unit = torch.nn.functional.normalize(torch.from_numpy(emb).float(), dim=1, eps=1e-8).numpy()
    return np.asarray(np.einsum("ij,jk,ik->i", unit[pairs[:, 0]], w, unit[pairs[:, 1]]))


@register_scorer
class BilinearScorer(PairScorer):
    name = "bilinear"
    description = "A symmetric bilinear form on the input embedding, trained with CAL's loss and chosen settings."

    def fit(self, data: SplitData) -> Scores:
        chosen = data.chosen.get("cal")
        config = chosen if isinstance(chosen, CALConfig) else CALConfig(**data.data.shared())
        w = fit_bilinear(data.emb, data.split.train, config.replace(seed=data.split.seed))
        emb = data.emb
        return Scores(lambda pairs: bilinear_scores(emb, w, pairs))
