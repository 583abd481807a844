"""CAL, contrastive association learning (methods/cal.md): a map from a gene's expression
embedding into a space where interacting genes are close. Registered as `cal`, a model of the
gene-association family: `kgctl train cal`, the `pairs` and `evidence` evaluators and every other
part of the model platform come from this declaration. Also registers the `bilinear` pair
baseline, trained with CAL's loss."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from kgctl.models.association.model import AssociationModel
from kgctl.models.association.scorers import Scores
from kgctl.models.cal import bilinear  # noqa: F401  (registers the bilinear pair baseline)
from kgctl.models.cal.config import CALConfig
from kgctl.models.cal.model import CALModel, cal_rows, encode, pair_scores
from kgctl.models.cal.task import CALTask, cal_task
from kgctl.models.registry import register

__all__ = ["CAL", "CALConfig"]


@register
class CAL(AssociationModel):
    name = "cal"
    description = "Contrastive association learning: gene pairs (STRING) close in a map of expression embeddings."
    config_class = CALConfig
    reference_protocol = True
    test_config = {
        "pca_dim": 8,
        "hidden_dim": 32,
        "layers": 1,
        "epochs": 3,
        "batch_size": 32,
        "search": "",
        "checkpoint_every": 1,
    }
    config: CALConfig

    def task(self, inputs: Any) -> CALTask:
        return cal_task(inputs, self.config)

    def pair_task(self, emb: np.ndarray, pairs: np.ndarray) -> CALTask:
        return CALTask(self.config, emb, pairs)

    def build_module(self, **module_args: Any) -> nn.Module:
        return CALModel(**module_args)

    def scores(self, module: nn.Module, emb: np.ndarray, train: np.ndarray, device: str) -> Scores:
        """assoc(A, B) of the half or both transform; f(X) as the genes' vectors."""
        x = torch.from_numpy(emb).to(device)
        fx = encode(module.to(device), x)
        transform = self.config.transform

        def pairs(p: np.ndarray) -> np.ndarray:
            return pair_scores(fx, x, torch.from_numpy(p).to(device), transform).cpu().numpy()

        return Scores(pairs, cal_rows(fx, x, transform), fx.cpu().numpy())
