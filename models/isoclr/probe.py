"""IsoCLR's frozen embedding of packed transcripts (in batches of similar length) and the
probe's from-scratch control: the same encoder with a linear head trained on the labels."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from kgctl.models.isoclr.data import Inputs
from kgctl.models.isoclr.model import IsoCLRNet
from kgctl.models.isoclr.task import padded
from kgctl.models.probing.heads import Split, correlation, validation_share
from kgctl.models.probing.labels import Labelled

NUCLEOTIDE_BUDGET = 1 << 20  # per embedding batch, padding included


@torch.no_grad()
def embed(
    module: nn.Module,
    inputs: Inputs,
    rows: np.ndarray | None = None,
    *,
    device: str = "cpu",
    batch: int = 256,
    tracks: int = 6,
) -> np.ndarray:
    """float32 [len(rows), width]: the frozen encoder's pooled representation (eval mode: no
    dropout, BatchNorm running statistics untouched), in batches of similar length."""
    rows = np.arange(inputs.n) if rows is None else rows
    was = module.training
    module.eval()
    out: np.ndarray | None = None
    order = np.argsort(inputs.lengths[rows], kind="stable")
    for part in length_batches(inputs.lengths[rows][order], batch, order):
        x, lengths = padded(inputs, rows[part], tracks)
        h = module(x.to(device), lengths.to(device)).float().cpu().numpy()
        if out is None:
            out = np.zeros((len(rows), h.shape[1]), dtype=np.float32)
        out[part] = h
    module.train(was)
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def length_batches(
    sorted_lengths: np.ndarray, batch: int, order: np.ndarray, budget: int = NUCLEOTIDE_BUDGET
) -> list[np.ndarray]:
    """Cut `order` (sorted by length) into batches of at most `batch` sequences and, padded to
    their longest, at most `budget` nucleotides (long transcripts go a few at a time)."""
    out, start = [], 0
    while start < len(order):
        end = start + 1
        while end < len(order) and end - start < batch and (end + 1 - start) * sorted_lengths[end] <= budget:
            end += 1
        out.append(order[start:end])
        start = end
    return out


def from_scratch(
    data: Labelled, module_args: dict[str, Any], split: Split, seed: int, steps: int, device: str
) -> np.ndarray:
    """Test predictions [len(split.test), 1] of the same encoder with a linear head trained on
    the labels from random weights (Adam, MSE on standardised labels); the epoch is chosen on a
    grouped validation share of `split.train`."""
    torch.manual_seed(seed)
    carved = validation_share(split, data.groups, seed)
    inner, valid = carved.train, carved.valid
    inputs: Inputs = data.items
    y = data.labels[:, 0]
    mu, sd = float(y[inner].mean()), float(y[inner].std() or 1.0)
    encoder = IsoCLRNet(**module_args).encoder
    head = nn.Linear(encoder.width, 1)
    net = nn.ModuleDict({"encoder": encoder, "head": head}).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    batch = 64
    per_epoch = max(1, math.ceil(len(inner) / batch))
    epochs = max(1, min(200, math.ceil(steps / per_epoch)))
    rng = np.random.default_rng(seed)
    target = torch.from_numpy(((y - mu) / sd).astype(np.float32))

    def predict(rows: np.ndarray) -> np.ndarray:
        net.eval()
        with torch.no_grad():
            h = torch.from_numpy(embed(encoder, inputs, rows, device=device, tracks=module_args["tracks"])).to(device)
            return np.asarray(head(h).squeeze(-1).cpu().numpy())

    best, best_state = -math.inf, None
    for _ in range(epochs):
        net.train()
        order = rng.permutation(inner)
        for lo in range(0, len(order), batch):
            rows = order[lo : lo + batch]
            if len(rows) < 2:
                continue
            x, lengths = padded(inputs, rows, module_args["tracks"])
            out = head(encoder(x.to(device), lengths.to(device))).squeeze(-1)
            loss = nn.functional.mse_loss(out, target[rows].to(device))
            optimiser.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            optimiser.step()
        figure = correlation(predict(valid), y[valid])
        if figure > best:
            best, best_state = figure, {k: v.detach().clone() for k, v in net.state_dict().items()}
    if best_state is not None:
        net.load_state_dict(best_state)
    return predict(split.test)[:, None]
