"""GraphSAGE link prediction over the gene-association view (PyTorch Geometric): the graph and
the gene features together, inductive for genes with no known partner. Registered as
`graphsage`, a model of the gene-association family: evaluated by the same `pairs` protocol as
CAL, on identical splits and negatives."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from kgctl.models.association.model import AssociationModel
from kgctl.models.association.scorers import Scores
from kgctl.models.graphsage.task import GraphSAGE, GraphSAGEConfig, GraphSAGETask, embed_nodes, graphsage_task
from kgctl.models.registry import register

__all__ = ["GraphSAGEModel", "GraphSAGEConfig"]


@register
class GraphSAGEModel(AssociationModel):
    name = "graphsage"
    description = "GraphSAGE link prediction: gene features passed over the known-pair graph (PyG)."
    config_class = GraphSAGEConfig
    # A GraphSAGE run's comparison trains the other models for as many epochs as it trained.
    comparison_budget = ("epochs",)
    test_config = {"pca_dim": 8, "hidden_dim": 16, "epochs": 3, "checkpoint_every": 1}
    config: GraphSAGEConfig

    def task(self, inputs: Any) -> GraphSAGETask:
        return graphsage_task(inputs, self.config)

    def pair_task(self, emb: np.ndarray, pairs: np.ndarray) -> GraphSAGETask:
        return GraphSAGETask(self.config, emb, pairs)

    def build_module(self, **module_args: Any) -> nn.Module:
        return GraphSAGE(**module_args)

    def scores(self, module: nn.Module, emb: np.ndarray, train: np.ndarray, device: str) -> Scores:
        """Cosines of the node embeddings over the training graph."""
        task = GraphSAGETask(self.config, emb, train)
        task.to(torch.device(device))
        h = embed_nodes(module.to(device), task.x, task.graph)
        vectors = h.cpu().numpy()

        def pairs(p: np.ndarray) -> np.ndarray:
            return np.asarray(np.einsum("ij,ij->i", vectors[p[:, 0]], vectors[p[:, 1]]))

        return Scores(pairs, lambda lo, hi: h[lo:hi] @ h.T, vectors)
