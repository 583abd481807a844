"""IsoCLR's network and loss (methods/isoclr.md §3-4): a dilated residual 1-D CNN over the six
tracks with a length-masked mean pool, a projection head for pretraining, and the decoupled
contrastive loss with a per-pair weight on the positive term."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# (filters, blocks, dilation) per stage; 2× pooling in the stem and in each stage: 32× in all.
ENCODER_STAGES: dict[str, tuple[tuple[int, int, int], ...]] = {
    "tiny": ((32, 1, 1), (64, 1, 2), (64, 1, 4), (128, 1, 8)),
    "small": ((64, 2, 1), (128, 2, 2), (128, 2, 4), (256, 2, 8)),
    "medium": ((64, 3, 1), (128, 4, 2), (256, 6, 4), (512, 3, 8)),
}


class SameConv(nn.Conv1d):
    """A dilated convolution that keeps the length, for even kernels too (padded on the right)."""

    def forward(self, x: Tensor) -> Tensor:
        total = self.dilation[0] * (self.kernel_size[0] - 1)
        return super().forward(F.pad(x, (total // 2, total - total // 2)))


class Block(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            SameConv(cin, cout, kernel, dilation=dilation, bias=False),
            nn.BatchNorm1d(cout),
            nn.ReLU(),
            nn.Dropout(dropout),
            SameConv(cout, cout, kernel, dilation=dilation, bias=False),
            nn.BatchNorm1d(cout),
        )
        self.shortcut = (
            nn.Identity() if cin == cout else nn.Sequential(nn.Conv1d(cin, cout, 1, bias=False), nn.BatchNorm1d(cout))
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class Encoder(nn.Module):
    """Stem conv → BN → ReLU → pool, four stages of residual blocks (each pooling by 2), and the
    mean over the positions a sequence really has (`masked`) or over all (`plain`)."""

    def __init__(
        self, tracks: int = 6, size: str = "small", kernel: int = 2, dropout: float = 0.1, pooling: str = "masked"
    ) -> None:
        super().__init__()
        stages = ENCODER_STAGES[size]
        width = stages[0][0]
        self.stem = nn.Sequential(SameConv(tracks, width, kernel, bias=False), nn.BatchNorm1d(width), nn.ReLU())
        layers: list[nn.Module] = []
        for filters, blocks, dilation in stages:
            layers.append(nn.MaxPool1d(2, ceil_mode=True))
            for _ in range(blocks):
                layers.append(Block(width, filters, kernel, dilation, dropout))
                width = filters
        layers.append(nn.MaxPool1d(2, ceil_mode=True))
        self.body = nn.Sequential(*layers)
        self.width = width
        self.tracks = tracks
        self.pooling = pooling

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        """x: [B, L, tracks] (channels last, zero-padded); lengths: [B] → [B, width]. With
        masked pooling the padding is zeroed after every layer too, so a sequence gets the same
        representation however much padding its batch adds."""
        masked = self.pooling == "masked"
        valid = lengths.clamp(min=1)
        h: Tensor = self.stem(x.transpose(1, 2).float())
        for layer in self.body:
            if isinstance(layer, nn.MaxPool1d):
                valid = torch.div(valid + 1, 2, rounding_mode="floor")
            h = layer(_zero_beyond(h, valid) if masked else h)
        if not masked:
            return h.mean(-1)
        h = _zero_beyond(h, valid)
        return h.sum(-1) / valid[:, None].to(h.dtype)


def _zero_beyond(h: Tensor, valid: Tensor) -> Tensor:
    inside = torch.arange(h.shape[-1], device=h.device)[None, :] < valid[:, None]
    return h * inside[:, None, :].to(h.dtype)


class IsoCLRNet(nn.Module):
    """The encoder and its pretraining projection head (Dense-BN-ReLU ×2, Dense without bias)."""

    def __init__(
        self,
        tracks: int = 6,
        size: str = "small",
        kernel: int = 2,
        dropout: float = 0.1,
        pooling: str = "masked",
        widths: tuple[int, ...] = (256, 256, 128),
    ) -> None:
        super().__init__()
        self.encoder = Encoder(tracks, size, kernel, dropout, pooling)
        a, b, c = widths
        self.head = nn.Sequential(
            nn.Linear(self.encoder.width, a),
            nn.BatchNorm1d(a),
            nn.ReLU(),
            nn.Linear(a, b),
            nn.BatchNorm1d(b),
            nn.ReLU(),
            nn.Linear(b, c, bias=False),
        )

    def forward(self, x: Tensor, lengths: Tensor, project: bool = False) -> Tensor:
        """The representation (the pooled encoder output, used downstream) or, with `project`,
        its projection (what the loss contrasts)."""
        h: Tensor = self.encoder(x, lengths)
        return self.head(h) if project else h


def dcl_loss(z1: Tensor, z2: Tensor, weight: Tensor, temperature: float = 0.1) -> tuple[Tensor, Tensor]:
    """The decoupled contrastive loss as IsoCLR and Orthrus implement it: for anchor i of view 1,
    −wᵢ·s(z¹ᵢ, z²ᵢ) + log Σ_{j≠i} exp s(z¹ᵢ, z¹ⱼ) + log Σ_{j≠i} exp s(z¹ᵢ, z²ⱼ), with
    s = cosine / τ, averaged over i and over both directions. Also returns the share of anchors
    whose partner is the nearest of the other view (in-batch accuracy)."""
    z1 = F.normalize(z1.float() + 1e-9, dim=-1)
    z2 = F.normalize(z2.float() + 1e-9, dim=-1)
    n = len(z1)
    eye = torch.eye(n, dtype=torch.bool, device=z1.device)

    def one_way(a: Tensor, b: Tensor) -> Tensor:
        same = (a @ a.T / temperature).masked_fill(eye, float("-inf"))
        cross = a @ b.T / temperature
        positive = cross.diagonal()
        return (
            -weight * positive + torch.logsumexp(same, 1) + torch.logsumexp(cross.masked_fill(eye, float("-inf")), 1)
        ).mean()

    loss = 0.5 * (one_way(z1, z2) + one_way(z2, z1))
    accuracy = ((z1 @ z2.T).argmax(1) == torch.arange(n, device=z1.device)).float().mean()
    return loss, accuracy.detach()
