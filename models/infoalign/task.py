"""InfoAlign's pretraining problem for the shared trainer (methods/infoalign.md §2 and §4): every
step draws one uniform walk of `walk_length` steps from each molecule of the batch, on the
training device, and each decoder regresses the path-weighted features of the nodes of its space
that the walk visited (soft-label BCE), plus β·KL(q(z|x) ‖ N(0, I))."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kgctl.graph.walks import CSRGraph, path_weights, random_walks
from kgctl.models.base import Task
from kgctl.models.infoalign.config import InfoAlignConfig
from kgctl.models.infoalign.data import Inputs
from kgctl.models.infoalign.model import InfoAlignNet, kl_to_standard_normal
from kgctl.models.probing.molgraph import MolGraphs
from kgctl.models.trainer import epoch_seed, shard

Batch = tuple[np.ndarray, int]  # molecule rows, the seed of the step's walks


def module_args(config: InfoAlignConfig, inputs: Inputs) -> dict[str, Any]:
    return {
        "hidden": config.hidden,
        "layers": config.layers,
        "dropout": config.dropout,
        "decoders": {k: int(v.shape[1]) for k, v in inputs.features.items()},
    }


def space_weights(nodes: Tensor, weights: Tensor, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """For one feature space and every walk position: the node's row in the space's matrix (0
    where it has none), its path weight (0 there) and the mask of positions with a row."""
    found = rows[nodes.long()]
    present = found >= 0
    return found.clamp_min(0), torch.where(present, weights, torch.zeros_like(weights)), present


def space_loss(logits: Tensor, features: Tensor, rows: Tensor, weights: Tensor, present: Tensor) -> Tensor:
    """Mean over the known (molecule, position, feature) entries of w · BCE(logit, target).
    The decoder's one output per molecule meets every position, so the sum over positions is
    softplus(ŷ)·Σw − ŷ·Σw·y: no [B, L + 1, d] logits are materialised twice."""
    y = features[rows].float()  # [B, L + 1, d]
    known = present[..., None] & ~torch.isnan(y)
    y = torch.nan_to_num(y)
    w = weights[..., None] * known
    z = logits.float()
    total = (F.softplus(z) * w.sum(1) - z * (w * y).sum(1)).sum()
    return total / known.sum().clamp_min(1)


def walk_targets(
    graph: CSRGraph, edge_weight: Tensor, starts: Tensor, length: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """(visited nodes [B, L + 1], path weights [B, L + 1]) of one uniform walk per start."""
    walks = random_walks(graph, starts, length, generator=generator)
    return walks.nodes, path_weights(walks, edge_weight)


class InfoAlignTask(Task):
    config: InfoAlignConfig

    def __init__(self, config: InfoAlignConfig, inputs: Inputs) -> None:
        super().__init__("infoalign", config, module_args(config, inputs))
        self.inputs = inputs
        self.device = torch.device("cpu")
        self._on: dict[str, Any] = {}

    def build_module(self) -> nn.Module:
        return InfoAlignNet(**self.module_args)

    def to(self, device: torch.device) -> None:
        inputs = self.inputs
        edge_index = torch.from_numpy(inputs.edge_index)
        weight = torch.from_numpy(inputs.edge_weight)
        graph = CSRGraph.from_edge_index(
            edge_index, len(inputs.node_type), weight, torch.from_numpy(inputs.node_type.astype(np.int64))
        )
        self.device = device
        self._on = {
            "graph": graph.to(device),
            "weight": weight.to(device),
            "features": {k: torch.from_numpy(v).to(device) for k, v in inputs.features.items()},
            "rows": {k: torch.from_numpy(v).to(device) for k, v in inputs.rows.items()},
        }

    def batches(self, epoch: int, rank: int, world: int) -> Iterator[Batch]:
        seed = epoch_seed(self.config.seed, epoch)
        order = np.random.default_rng(seed).permutation(self.inputs.n_molecules)
        size = self.config.batch_size
        for step in range(math.ceil(len(order) / size)):
            mine = shard(torch.from_numpy(order[step * size : (step + 1) * size]), rank, world)
            if len(mine) >= 2:  # BatchNorm needs two molecules
                yield mine.numpy(), seed * 100_003 + step * world + rank

    def loss(self, module: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        rows, seed = batch
        on, device = self._on, self.device
        mu, sigma, logits = module(*self.inputs.graphs.batch(rows, device), len(rows))
        generator = torch.Generator(device=device)
        generator.manual_seed(seed)
        starts = torch.from_numpy(rows).to(device)
        nodes, weights = walk_targets(on["graph"], on["weight"], starts, self.config.walk_length, generator)
        figures: dict[str, Tensor] = {}
        total = torch.zeros((), device=device)
        for space, features in on["features"].items():
            found, w, present = space_weights(nodes, weights, on["rows"][space])
            figures[space] = space_loss(logits[space], features, found, w, present)
            total = total + figures[space]
        figures["kl"] = kl_to_standard_normal(mu.float(), sigma.float(), generator)
        return total + self.config.beta * figures["kl"], figures

    def fingerprint(self) -> str:
        return self.inputs.sha256()


@torch.no_grad()
def embed(module: nn.Module, graphs: MolGraphs, device: str | torch.device, batch: int = 1024) -> np.ndarray:
    """μ of every molecule, float32 [n, hidden], with the module in eval mode (no dropout, no
    BatchNorm statistics updates): the frozen representation."""
    assert isinstance(module, InfoAlignNet)
    module.eval()
    dev = torch.device(device)
    out = []
    for lo in range(0, len(graphs), batch):
        rows = np.arange(lo, min(lo + batch, len(graphs)))
        mu, _ = module.encode(*graphs.batch(rows, dev), len(rows))
        out.append(mu.float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, module.hidden), dtype=np.float32)
