"""The CAL map f(x) = normalize(α·x + (1−α)·g(x)) (methods/cal.md §2) and its second loss (§3):
random negatives drawn from a pool of f(X) computed without gradient (the in-batch InfoNCE is the
association family's, in `association/losses.py`)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgctl.models.neighbours import Rows


class CALModel(nn.Module):
    """An MLP g (Linear → LayerNorm → GELU blocks, a final Linear → LayerNorm back to the input
    dimension) and a learned scalar gate α = sigmoid(a), a₀ = 0."""

    def __init__(self, dim: int, hidden: int = 1024, layers: int = 3) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        width = dim
        for _ in range(layers):
            blocks += [nn.Linear(width, hidden), nn.LayerNorm(hidden), nn.GELU()]
            width = hidden
        blocks += [nn.Linear(width, dim), nn.LayerNorm(dim)]
        self.g = nn.Sequential(*blocks)
        self.gate = nn.Parameter(torch.zeros(()))

    @property
    def alpha(self) -> float:
        return float(torch.sigmoid(self.gate.detach()))

    def forward(self, x: Tensor) -> Tensor:
        alpha = torch.sigmoid(self.gate)
        return F.normalize(alpha * x + (1 - alpha) * self.g(x), dim=-1, eps=1e-8)


def random_negative_loss(
    za: Tensor, zb: Tensor, a: Tensor, b: Tensor, pool: Tensor, negatives: Tensor, temperature: float
) -> tuple[Tensor, Tensor]:
    """Positive logit f(a)·f(b); K negatives per pair from `pool` (no gradient), the same K for
    both anchors; negatives equal to either gene of the pair are masked. ½(CE_a + CE_b)."""
    neg = pool[negatives]  # [B, K, d]
    masked = (negatives == a[:, None]) | (negatives == b[:, None])
    pos = (za.float() * zb.float()).sum(-1, keepdim=True)
    losses = []
    for anchor in (za, zb):
        against = torch.einsum("bd,bkd->bk", anchor.float(), neg.float()).masked_fill(masked, float("-inf"))
        logits = torch.cat([pos, against], 1)
        losses.append(F.cross_entropy(logits / temperature, torch.zeros_like(a)))
    accuracy = (logits.argmax(dim=1) == 0).float().mean()
    return 0.5 * (losses[0] + losses[1]), accuracy


@torch.no_grad()
def encode(model: nn.Module, x: Tensor, batch: int = 8192) -> Tensor:
    """f(X) in batches, float32, in evaluation mode."""
    was = model.training
    model.eval()
    out = torch.cat([model(x[i : i + batch]).float() for i in range(0, len(x), batch)])
    model.train(was)
    return out


def pair_scores(fx: Tensor, x: Tensor, pairs: Tensor, transform: str) -> Tensor:
    """assoc(A, B): f(A)·f(B) when both sides are transformed, else the reference's half
    transform ½[f(A)·e_B + f(B)·e_A]."""
    i, j = pairs[:, 0], pairs[:, 1]
    if transform == "both":
        return (fx[i] * fx[j]).sum(-1)
    return 0.5 * ((fx[i] * x[j]).sum(-1) + (fx[j] * x[i]).sum(-1))


def cal_rows(fx: Tensor, x: Tensor, transform: str) -> Rows:
    """CAL's all-pairs scores by rows: f(A)·f(B), or ½[f(A)·e_B + f(B)·e_A] (half)."""
    if transform == "both":
        return lambda lo, hi: fx[lo:hi] @ fx.T
    return lambda lo, hi: 0.5 * (fx[lo:hi] @ x.T + x[lo:hi] @ fx.T)
