"""The bilinear baseline of methods/cal.md §8.5: s(A, B) = ẽ_Aᵀ W ẽ_B on the unit-normalised
input embedding, W symmetric and started at the identity (cosine). It is trained with CAL's own
in-batch loss, masking, optimiser, schedule and seed, so only the model family differs from CAL."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from kgctl.models.cal.config import CALConfig
from kgctl.models.cal.model import in_batch_loss, known_pair_keys
from kgctl.models.cal.train import MIN_BATCH, epoch_seed


def _unit(emb: np.ndarray) -> torch.Tensor:
    return F.normalize(torch.from_numpy(emb).float(), dim=1, eps=1e-8)


def fit_bilinear(emb: np.ndarray, pairs: np.ndarray, config: CALConfig) -> np.ndarray:
    """The symmetric [d, d] matrix W = I + (M + Mᵀ)/2 after `config.epochs` epochs over `pairs`
    (weight decay pulls W back towards the identity, i.e. towards cosine)."""
    torch.manual_seed(config.seed)
    x = _unit(emb)
    n, d = x.shape
    eye = torch.eye(d)
    m = torch.zeros(d, d, requires_grad=True)
    optimizer = torch.optim.AdamW([m], lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs, eta_min=0)
    p = torch.from_numpy(pairs).long()
    known = known_pair_keys(p, n)
    for epoch in range(config.epochs):
        perm = torch.randperm(
            len(p), generator=torch.Generator().manual_seed(epoch_seed(config.seed, epoch))
        )
        for lo in range(0, len(perm), config.batch_size):
            idx = perm[lo : lo + config.batch_size]
            if len(idx) < MIN_BATCH:
                continue
            a, b = p[idx, 0], p[idx, 1]
            w = eye + (m + m.T) / 2
            loss, _ = in_batch_loss(x[a] @ w, x[b], a, b, known, n, config.temperature)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
        schedule.step()
    return (eye + (m + m.T) / 2).detach().numpy()


def bilinear_scores(emb: np.ndarray, w: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """ẽ_Aᵀ W ẽ_B for each pair."""
    unit = _unit(emb).numpy()
    return np.asarray(np.einsum("ij,jk,ik->i", unit[pairs[:, 0]], w, unit[pairs[:, 1]]))
