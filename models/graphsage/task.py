"""GraphSAGE link prediction on the gene-association view (PyTorch Geometric): gene features
(the same PCA embedding CAL reads) passed over the training graph, pairs scored by the cosine
of their node embeddings. Each epoch re-enacts the held-out setting: a share of genes loses
every edge (as unseen genes have none) and a share of the other edges is hidden from message
passing; the model is trained to recover exactly those hidden pairs, so it learns to embed
genes with and without known partners."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import SAGEConv
from torch_geometric.utils import to_undirected

from kgctl.core.options import setting
from kgctl.models.association.config import AssociationConfig
from kgctl.models.association.data import Inputs, Split, task_data
from kgctl.models.association.losses import in_batch_loss, known_pair_keys
from kgctl.models.association.task import PairTask
from kgctl.models.trainer import epoch_seed, shard


@dataclass
class GraphSAGEConfig(AssociationConfig):
    epochs: int = setting(300, "Training epochs (one full-graph step each).")
    lr: float = setting(1e-3, "AdamW learning rate.")
    patience: int = setting(60, "Stop after this many epochs without a better validation AUC (0: never early).")
    hidden_dim: int = setting(128, "Width of the node embeddings.")
    layers: int = setting(1, "SAGEConv layers (mean aggregation, residual).")
    dropout: float = setting(0.1, "Dropout after each layer.")
    temperature: float = setting(0.1, "InfoNCE temperature over the hidden pairs of a step.")
    isolate: float = setting(0.3, "Share of genes stripped of every edge each epoch.")
    hide: float = setting(0.3, "Share of the other edges hidden from message passing each epoch.")

    def checks(self) -> list[tuple[bool, str]]:
        return super().checks() + [
            (self.hidden_dim >= 1 and self.layers >= 1, "hidden_dim and layers >= 1"),
            (0 <= self.dropout < 1 and self.temperature > 0, "dropout in [0, 1), temperature > 0"),
            (
                0 <= self.isolate < 1 and 0 <= self.hide < 1 and self.isolate + self.hide > 0,
                "isolate and hide in [0, 1), not both 0",
            ),
        ]


class GraphSAGE(nn.Module):
    """Linear input projection, `layers` residual SAGEConv blocks, unit-norm output."""

    def __init__(self, dim: int, hidden: int = 128, layers: int = 1, dropout: float = 0.1) -> None:
        super().__init__()
        self.project = nn.Linear(dim, hidden)
        self.convs = nn.ModuleList([SAGEConv(hidden, hidden) for _ in range(layers)])
        self.norms = nn.ModuleList([nn.LayerNorm(hidden) for _ in range(layers)])
        self.dropout = dropout

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        h = self.project(x)
        for conv, norm in zip(self.convs, self.norms, strict=True):
            h = h + F.dropout(F.gelu(norm(conv(h, edge_index))), self.dropout, self.training)
        return F.normalize(h, dim=-1, eps=1e-8)


@torch.no_grad()
def embed_nodes(module: nn.Module, x: Tensor, edge_index: Tensor) -> Tensor:
    """Node embeddings over the whole training graph, in evaluation mode."""
    was = module.training
    module.eval()
    out: Tensor = module(x, edge_index).float()
    module.train(was)
    return out


class GraphSAGETask(PairTask):
    """Full-graph steps: per epoch, hide edges as described above and contrast the hidden pairs
    in one in-batch InfoNCE (known partners masked)."""

    config: GraphSAGEConfig

    def __init__(
        self,
        config: GraphSAGEConfig,
        emb: np.ndarray,
        pairs: np.ndarray,
        *,
        split: Split | None = None,
        embedding: dict[str, Any] | None = None,
        validation: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        args = {
            "dim": int(emb.shape[1]),
            "hidden": config.hidden_dim,
            "layers": config.layers,
            "dropout": config.dropout,
        }
        super().__init__("graphsage", config, args, emb, pairs, split, embedding, validation)

    def build_module(self) -> nn.Module:
        return GraphSAGE(**self.module_args)

    def to(self, device: torch.device) -> None:
        self.device = device
        self.x = torch.from_numpy(self.emb).float().to(device)
        self.p = torch.from_numpy(self.pairs).long().to(device)
        self.n = len(self.emb)
        self.known = known_pair_keys(self.p, self.n)
        self.graph = to_undirected(self.p.T, num_nodes=self.n)

    def batches(self, epoch: int, rank: int, world: int) -> Iterator[tuple[Tensor, Tensor]]:
        draw = torch.Generator().manual_seed(epoch_seed(self.config.seed, epoch))
        isolated = (torch.rand(self.n, generator=draw) < self.config.isolate).to(self.device)
        hidden = (torch.rand(len(self.p), generator=draw) < self.config.hide).to(self.device)
        hidden |= isolated[self.p[:, 0]] | isolated[self.p[:, 1]]
        if int(hidden.sum()) < 2 * world:
            return
        message = to_undirected(self.p[~hidden].T, num_nodes=self.n)
        yield message, shard(self.p[hidden], rank, world)

    def loss(self, module: nn.Module, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        message, pairs = batch
        h = module(self.x, message)
        a, b = pairs[:, 0], pairs[:, 1]
        loss, accuracy = in_batch_loss(h[a], h[b], a, b, self.known, self.n, self.config.temperature)
        return loss, {"accuracy": accuracy}

    def score_pairs(self, module: nn.Module, pair_sets: Sequence[np.ndarray]) -> list[np.ndarray]:
        h = embed_nodes(module, self.x, self.graph)
        return [pair_cosine(h, torch.from_numpy(p).to(self.device)).cpu().numpy() for p in pair_sets]


def pair_cosine(h: Tensor, pairs: Tensor) -> Tensor:
    return (h[pairs[:, 0]] * h[pairs[:, 1]]).sum(-1)


def graphsage_task(inputs: Inputs, config: GraphSAGEConfig) -> GraphSAGETask:
    """The task for a config: its split, embedding and validation data (as CAL's)."""
    split, emb, info, validation = task_data(inputs, config)
    return GraphSAGETask(config, emb, split.train, split=split, embedding=info, validation=validation)
