"""A third-party model, as an installed package would ship one: it registers through the
`kgctl.models` entry point group (see the dist-info beside it) and only where this folder is on
the path. A fourth model of the gene-association family in one file: a linear map of the genes'
input embedding, trained with the family's in-batch InfoNCE. The view, inputs, splits, the `pairs`
and `evidence` evaluators, every pair baseline and the write-back of scored gene pairs come from
the family; this file declares the config, module, batches, loss and scores, and a predict option."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.compute as pc
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgctl.core.options import Option, setting
from kgctl.models.association import AssociationConfig, AssociationModel
from kgctl.models.association.data import Inputs, Split, task_data
from kgctl.models.association.losses import in_batch_loss, known_pair_keys
from kgctl.models.association.scorers import Scores
from kgctl.models.association.task import PairTask
from kgctl.models.base import Prediction
from kgctl.models.runs import Run
from kgctl.models.trainer import epoch_seed, shard


@dataclass
class LinearMapConfig(AssociationConfig):
    epochs: int = setting(40, "Training epochs.")
    dim: int = setting(32, "Width of the map's output.")
    temperature: float = setting(0.1, "InfoNCE temperature.")


class LinearMap(nn.Module):
    """z = normalize(W x)."""

    def __init__(self, dim_in: int, dim_out: int) -> None:
        super().__init__()
        self.w = nn.Linear(dim_in, dim_out, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.w(x), dim=-1, eps=1e-8)


@torch.no_grad()
def mapped(module: nn.Module, x: Tensor) -> Tensor:
    module.eval()
    z: Tensor = module(x).float()
    return z


class LinearMapTask(PairTask):
    config: LinearMapConfig

    def __init__(
        self,
        config: LinearMapConfig,
        emb: np.ndarray,
        pairs: np.ndarray,
        split: Split | None = None,
        embedding: dict[str, Any] | None = None,
        validation: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        args = {"dim_in": int(emb.shape[1]), "dim_out": config.dim}
        super().__init__("linear_map", config, args, emb, pairs, split, embedding, validation)

    def build_module(self) -> nn.Module:
        return LinearMap(**self.module_args)

    def to(self, device: torch.device) -> None:
        self.x = torch.from_numpy(self.emb).float().to(device)
        self.p = torch.from_numpy(self.pairs).long().to(device)
        self.known = known_pair_keys(self.p, len(self.emb))

    def batches(self, epoch: int, rank: int, world: int) -> Iterator[Tensor]:
        draw = torch.Generator().manual_seed(epoch_seed(self.config.seed, epoch))
        order = torch.randperm(len(self.p), generator=draw).to(self.p.device)
        for lo in range(0, len(order), self.config.batch_size):
            batch = order[lo : lo + self.config.batch_size]
            if len(batch) >= 8 * world:  # a short tail is skipped on every process alike
                yield self.p[shard(batch, rank, world)]

    def loss(self, module: nn.Module, batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        a, b = batch[:, 0], batch[:, 1]
        z = module(self.x)
        loss, accuracy = in_batch_loss(z[a], z[b], a, b, self.known, len(self.emb), self.config.temperature)
        return loss, {"accuracy": accuracy}

    def score_pairs(self, module: nn.Module, pair_sets: Sequence[np.ndarray]) -> list[np.ndarray]:
        z = mapped(module, self.x).cpu().numpy()
        return [np.einsum("ij,ij->i", z[p[:, 0]], z[p[:, 1]]) for p in pair_sets]


class LinearMapModel(AssociationModel):
    name = "linear_map"
    description = "A linear map of the gene embedding trained with the family's in-batch InfoNCE (an example plug-in)."
    config_class = LinearMapConfig
    comparison_budget = ("epochs",)
    predict_options = (
        *AssociationModel.predict_options,
        Option("min-score", "Keep predictions scoring at least this.", float),
    )
    test_config = {"pca_dim": 8, "dim": 8, "epochs": 3, "batch_size": 32, "checkpoint_every": 1}
    config: LinearMapConfig

    def task(self, inputs: Inputs) -> LinearMapTask:
        split, emb, info, validation = task_data(inputs, self.config)
        return LinearMapTask(self.config, emb, split.train, split, info, validation)

    def pair_task(self, emb: np.ndarray, pairs: np.ndarray) -> LinearMapTask:
        return LinearMapTask(self.config, emb, pairs)

    def build_module(self, **module_args: Any) -> nn.Module:
        return LinearMap(**module_args)

    def scores(self, module: nn.Module, emb: np.ndarray, train: np.ndarray, device: str) -> Scores:
        z = mapped(module.to(device), torch.from_numpy(emb).float().to(device))
        vectors = z.cpu().numpy()
        return Scores(
            lambda p: np.einsum("ij,ij->i", vectors[p[:, 0]], vectors[p[:, 1]]), lambda lo, hi: z[lo:hi] @ z.T, vectors
        )

    def predict(self, run: Run, inputs: Any, module: nn.Module, options: dict[str, Any], device: str) -> Prediction:
        prediction = super().predict(run, inputs, module, options, device)
        if prediction.edges is not None and options.get("min_score") is not None:
            keep = pc.greater_equal(prediction.edges.column("score"), options["min_score"])
            prediction.edges = prediction.edges.filter(keep)
            prediction.facts["rows"] = prediction.edges.num_rows
        return prediction
