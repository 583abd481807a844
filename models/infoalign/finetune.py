"""InfoAlign beyond the frozen probe: the pretrained encoder fine-tuned with a task head (the
official FineTuneGNN's head, μ → 4h → tasks, here with every weight trained), the same network
from random weights (the from-scratch control), and μ joined with Morgan bits for the probe's
head. Learning rates are chosen on the validation rows only."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from kgctl.models.infoalign.model import InfoAlignNet
from kgctl.models.probing.dmpnn import molecule_graphs
from kgctl.models.probing.endtoend import EndToEnd, train_end_to_end
from kgctl.models.probing.heads import Split, validation_share
from kgctl.models.probing.labels import Labelled
from kgctl.models.probing.molecules import fingerprints

FINE_TUNE_RATES = (1e-4, 1e-3)
SETTINGS = EndToEnd(epochs=30, patience=5, batch_size=64)


class TaskNet(nn.Module):
    """The encoder's μ, then Linear(h → 4h) → BatchNorm → GELU → Dropout → Linear(4h → T)."""

    def __init__(self, net: InfoAlignNet, tasks: int, dropout: float) -> None:
        super().__init__()
        self.net = net
        hidden = net.hidden
        self.task = nn.Sequential(
            nn.Linear(hidden, 4 * hidden),
            nn.BatchNorm1d(4 * hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(4 * hidden, tasks),
        )
        for p in net.decoders.parameters():  # not part of the task network
            p.requires_grad_(False)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor, size: int) -> Tensor:
        mu, _ = self.net.encode(x, edge_index, edge_attr, batch, size)
        out: Tensor = self.task(mu)
        return out


def train_task_net(
    make: Any, data: Labelled, split: Split, seed: int, rates: tuple[float, ...], dropout: float
) -> tuple[np.ndarray, dict[str, Any]]:
    """Test predictions of the task network trained at each learning rate, the one whose best
    epoch scored highest on validation, and what was chosen."""
    graphs = molecule_graphs(tuple(data.items))
    chosen = validation_share(split, data.groups, seed)
    best: tuple[float, np.ndarray, dict[str, Any]] | None = None
    for lr in rates:
        torch.manual_seed(seed)
        net = TaskNet(make(), data.labels.shape[1], dropout)
        settings = EndToEnd(SETTINGS.epochs, SETTINGS.patience, SETTINGS.batch_size, lr)
        predicted, facts = train_end_to_end(net, graphs, data.labels, chosen, data.metric, seed, settings)
        if best is None or facts["validation"] > best[0]:
            best = (facts["validation"], predicted, {"lr": lr, **facts})
    assert best is not None
    return best[1], best[2]


def with_fingerprints(items: list[str], encoded: np.ndarray) -> np.ndarray:
    """μ standardised per dimension beside the 1,024 Morgan bits the fingerprint baseline uses."""
    mu = (encoded - encoded.mean(0)) / np.maximum(encoded.std(0), 1e-6)
    return np.concatenate([mu.astype(np.float32), fingerprints(tuple(items))], axis=1)
