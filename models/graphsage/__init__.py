"""GraphSAGE link prediction over the gene-association view (PyTorch Geometric): the graph and
the gene features together, inductive for genes with no known partner. Registered as
`graphsage`; evaluated by the same protocol as CAL, on identical splits and negatives."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from kgctl.core.progress import OnProgress
from kgctl.graph.connection import Connection
from kgctl.models.base import Prediction
from kgctl.models.cal import AssociationModel, CALConfig, association_evaluate
from kgctl.models.cal.data import Inputs, embed, make_split
from kgctl.models.cal.predict import Rows
from kgctl.models.graphsage.task import (
    GraphSAGE,
    GraphSAGEConfig,
    GraphSAGETask,
    embed_nodes,
    graphsage_task,
)
from kgctl.models.registry import register
from kgctl.models.runs import Run
from kgctl.models.trainer import load_module

__all__ = ["GraphSAGEModel", "GraphSAGEConfig"]


@register
class GraphSAGEModel(AssociationModel):
    name = "graphsage"
    description = "GraphSAGE link prediction: gene features passed over the known-pair graph (PyG)."
    config_class = GraphSAGEConfig
    test_config = {"pca_dim": 8, "hidden_dim": 16, "epochs": 3, "checkpoint_every": 1}
    config: GraphSAGEConfig

    def task(self, inputs: Inputs) -> GraphSAGETask:
        return graphsage_task(inputs, self.config)

    def build_module(self, **module_args: Any) -> nn.Module:
        return GraphSAGE(**module_args)

    def evaluate(
        self, run: Run, inputs: Inputs, conn: Connection, options: dict[str, Any], device: str, on_progress: OnProgress
    ) -> dict[str, Any]:
        """CAL's protocol and table (every method trained per split and seed), with CAL at its
        default settings and this run's epoch budget on its data; or the evidence check of this
        run's predictions."""
        cal = CALConfig(**self.config.shared(), seed=self.config.seed, epochs=self.config.epochs)
        return association_evaluate(
            run, inputs, conn, options, cal, lambda: self.pair_rows(run, inputs), device, on_progress
        )

    def pair_rows(self, run: Run, inputs: Inputs) -> Rows:
        """The trained run's all-pairs scores, by rows: cosines of the node embeddings."""
        h = self.node_vectors(load_module(run.dir, GraphSAGE), inputs, "cpu")
        return lambda lo, hi: h[lo:hi] @ h.T

    def node_vectors(self, module: nn.Module, inputs: Inputs, device: str) -> torch.Tensor:
        """Node embeddings over the run's whole training graph."""
        config = self.config
        split = make_split(inputs, config, config.split, config.seed)
        emb, _ = embed(inputs.features, split.fit, config.pca_dim)
        task = GraphSAGETask(config, emb, split.train)
        task.to(torch.device(device))
        return embed_nodes(module.to(device), task.x, task.graph)

    def predict(self, run: Run, inputs: Inputs, module: nn.Module, options: dict[str, Any], device: str) -> Prediction:
        from kgctl.models.cal.predict import prediction

        config = self.config
        split = make_split(inputs, config, config.split, config.seed)
        emb, _ = embed(inputs.features, split.fit, config.pca_dim)
        h = self.node_vectors(module, inputs, device)
        return prediction(
            config, inputs, split, emb, lambda lo, hi: h[lo:hi] @ h.T, int(options.get("top_k", 10)), h.cpu().numpy()
        )
