"""Training a molecular-graph network end to end on a probe's labels: minibatches of the
training molecules, NaN-masked loss (BCE for AUC sets; L1 on per-task standardised targets for
MAE, MSE for Pearson r), the epoch with the best validation figure kept (patience), and test
predictions from it. Shared by the D-MPNN baseline and fine-tuned encoders."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from kgctl.models.probing.heads import BestEpoch, Split, headline, masked_loss, score
from kgctl.models.probing.molgraph import MolGraphs


@dataclass(frozen=True)
class EndToEnd:
    """How a graph network is trained on labels (Chemprop's defaults where they apply)."""

    epochs: int = 50
    patience: int = 10
    batch_size: int = 50
    lr: float = 1e-3
    weight_decay: float = 0.0


def predict(
    net: nn.Module, graphs: MolGraphs, rows: np.ndarray, metric: str, scale: tuple[Tensor, Tensor]
) -> np.ndarray:
    """Outputs for `rows` in eval mode: probabilities (AUC) or values on the labels' scale."""
    net.eval()
    out = []
    with torch.no_grad():
        for lo in range(0, len(rows), 512):
            part = rows[lo : lo + 512]
            raw = net(*graphs.batch(part, torch.device("cpu")), len(part))
            out.append(torch.sigmoid(raw) if metric == "auc" else raw * scale[1] + scale[0])
    return np.concatenate([o.numpy() for o in out]) if out else np.zeros((0, 0))


def train_end_to_end(
    net: nn.Module, graphs: MolGraphs, y: np.ndarray, split: Split, metric: str, seed: int, settings: EndToEnd
) -> tuple[np.ndarray, dict[str, float]]:
    """Test predictions [len(split.test), T] of `net` trained on `split.train` (validated on
    `split.valid`, which must be non-empty), and what the run chose (best epoch, its figure)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    target = torch.from_numpy(np.asarray(y, dtype=np.float32))
    train = split.train
    if metric == "auc":
        scale = (torch.zeros(y.shape[1]), torch.ones(y.shape[1]))
    else:  # standardised per task on the training rows, as Chemprop scales regression targets
        seen = target[torch.from_numpy(train)]
        mean = torch.nan_to_num(torch.nanmean(seen, 0))
        std = torch.sqrt(torch.nan_to_num(torch.nanmean((seen - mean) ** 2, 0), nan=1.0)).clamp_min(1e-6)
        scale = (mean, std)
    optimiser = torch.optim.Adam(
        [p for p in net.parameters() if p.requires_grad], lr=settings.lr, weight_decay=settings.weight_decay
    )
    best = BestEpoch(settings.patience)
    for epoch in range(settings.epochs):
        net.train()
        order = rng.permutation(train)
        for lo in range(0, len(order), settings.batch_size):
            rows = order[lo : lo + settings.batch_size]
            if len(rows) < 2:  # BatchNorm needs two molecules
                continue
            out = net(*graphs.batch(rows, torch.device("cpu")), len(rows))
            labels = (target[torch.from_numpy(rows)] - scale[0]) / scale[1]
            loss = masked_loss(out, labels, metric)
            if not torch.isfinite(loss):  # a batch with no label at all
                continue
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
        figure = headline(score(y[split.valid], predict(net, graphs, split.valid, metric, scale), metric), metric)
        if best.stop_after(figure, epoch, net):
            break
    best.restore(net)
    chosen = {"best_epoch": best.epoch + 1, "validation": round(best.figure, 4)}
    return predict(net, graphs, split.test, metric, scale), chosen
