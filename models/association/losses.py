"""The contrastive pair losses the gene-association models share: symmetric in-batch InfoNCE
with known false negatives masked (methods/cal.md §3), and the sorted pair keys it masks by."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def is_known(a: Tensor, b: Tensor, known_keys: Tensor, n: int) -> Tensor:
    """Whether each (a, b) is a known positive, by binary search in the sorted keys of both
    orientations."""
    key = a * n + b
    at = torch.searchsorted(known_keys, key).clamp(max=known_keys.numel() - 1)
    return known_keys[at] == key


def known_pair_keys(pairs: Tensor, n: int) -> Tensor:
    """Sorted keys a·n + b of both orientations of `pairs`: what `is_known` searches."""
    both = torch.cat([pairs, pairs.flip(1)])
    return torch.sort(both[:, 0] * n + both[:, 1]).values


def in_batch_loss(
    za: Tensor, zb: Tensor, a: Tensor, b: Tensor, known_keys: Tensor | None, n: int, temperature: float
) -> tuple[Tensor, Tensor]:
    """½[CE(S) + CE(Sᵀ)] over S = za·zbᵀ/τ, target on the diagonal. With `known_keys`,
    off-diagonal entries that pair an anchor with a known partner (a hub repeated in the batch,
    another positive of the same gene) or with itself are masked, not used as negatives; None is
    the reference's unmasked loss. Returns (loss, top-1 accuracy)."""
    logits = (za.float() @ zb.float().T) / temperature
    if known_keys is not None:
        false = is_known(a[:, None], b[None, :], known_keys, n) | (a[:, None] == b[None, :])
        false.fill_diagonal_(False)
        logits = logits.masked_fill(false, float("-inf"))
    target = torch.arange(len(a), device=logits.device)
    loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    accuracy = (logits.argmax(dim=1) == target).float().mean()
    return loss, accuracy
