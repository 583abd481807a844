"""InfoAlign (methods/infoalign.md): a molecule encoder (GIN with a virtual node) whose mean μ
rebuilds, through one decoder per feature space, the features of the nodes that random walks
reach from the molecule in the `context` view (molecules, genes, expression and morphology
profiles). Registered as `infoalign`: `kgctl train infoalign` and the rest of the platform come
from this declaration."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch import nn

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option
from kgctl.graph.connection import Connection
from kgctl.models.base import Model, Prediction, Writes
from kgctl.models.infoalign.config import InfoAlignConfig
from kgctl.models.infoalign.data import Inputs, collect_inputs, context_share, with_context
from kgctl.models.infoalign.finetune import FINE_TUNE_RATES, train_task_net, with_fingerprints
from kgctl.models.infoalign.model import InfoAlignNet
from kgctl.models.infoalign.targets import predicted_targets  # (and registers the `targets` retrieval task)
from kgctl.models.infoalign.task import InfoAlignTask, embed
from kgctl.models.probing.heads import Split
from kgctl.models.probing.labels import Labelled
from kgctl.models.probing.molecules import inchikeys
from kgctl.models.probing.molgraph import featurise
from kgctl.models.registry import register
from kgctl.models.runs import Run
from kgctl.models.trainer import run_module

__all__ = ["InfoAlign", "InfoAlignConfig"]


@register
class InfoAlign(Model):
    name = "infoalign"
    description = "InfoAlign: molecule representations that rebuild what walks through the context graph reach."
    config_class = InfoAlignConfig
    view = "context"
    writes = Writes("PREDICTED_ASSOCIATION", "Molecule", "Gene", embedding_label="Molecule")
    evaluators = ("retrieval", "probe")
    item_kind = "molecule"
    predict_options: ClassVar[tuple[Option, ...]] = (
        Option("top-k", "Predicted targets kept per molecule.", int, 10),
        Option("neighbours", "Nearest molecules (in InfoAlign space) whose targets are transferred.", int, 10),
    )
    all_data = "--holdout-targets 0"
    test_config = {"hidden": 16, "layers": 2, "epochs": 2, "batch_size": 64, "checkpoint_every": 1}
    config: InfoAlignConfig

    def build_inputs(self, conn: Connection, views: Path) -> Inputs:
        return collect_inputs(conn, self.config, views)

    def load_inputs(self, path: Path) -> Inputs:
        return Inputs.load(path)

    def task(self, inputs: Inputs) -> InfoAlignTask:
        return InfoAlignTask(self.config, inputs)

    def left_out(self) -> str | None:
        share = self.config.holdout_targets
        return f"it held out the TARGETS edges of {share:.0%} of the molecules with targets" if share else None

    def describe(self, inputs: Inputs, task: InfoAlignTask) -> dict[str, Any]:
        degree = inputs.degree()[: inputs.n_molecules]
        return {
            **inputs.meta,
            "view_fingerprint": inputs.meta.get("fingerprint"),
            "molecules": inputs.n_molecules,
            "nodes": int(len(inputs.node_type)),
            "walk_edges": int(inputs.edge_index.shape[1] // 2),
            "molecules_with_context": int((degree > 0).sum()),
            "inputs_sha256": inputs.sha256(),
        }

    def build_module(self, **module_args: Any) -> nn.Module:
        return InfoAlignNet(**module_args)

    def embed(self, run: Run, inputs: Inputs, device: str = "cpu", *, untrained: bool = False) -> np.ndarray:
        """μ of every Molecule node of the run's view (the frozen encoder, eval mode)."""
        return embed(self.module(run, device, untrained), inputs.graphs, device)

    def encode(self, run: Run, items: list[str], device: str = "cpu", *, untrained: bool = False) -> np.ndarray:
        """μ of molecules given as SMILES (featurised as the graph's molecules are)."""
        return embed(self.module(run, device, untrained), featurise(items)[0], device)

    def module(self, run: Run, device: str, untrained: bool) -> nn.Module:
        return run_module(run.dir, InfoAlignNet, self.config.seed, device, untrained=untrained)

    def fine_tune(
        self, run: Run, data: Labelled, split: Split, seed: int, device: str
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """The pretrained encoder and a task head trained together (learning rate chosen on
        validation)."""
        return train_task_net(
            lambda: self.module(run, "cpu", False), data, split, seed, FINE_TUNE_RATES, self.config.dropout
        )

    def from_scratch(self, run: Run, data: Labelled, split: Split, seed: int, steps: int, device: str) -> np.ndarray:
        """The same network and head from random weights (learning rate 1e-3), trained as the
        fine-tuned one is (≤ 30 epochs, patience 5): `steps` does not apply."""
        return train_task_net(lambda: self.module(run, "cpu", True), data, split, seed, (1e-3,), self.config.dropout)[0]

    def combined_features(self, items: list[str], encoded: np.ndarray) -> dict[str, np.ndarray]:
        return {f"{self.name}+fingerprint": with_fingerprints(items, encoded)}

    def item_subsets(self, inputs: Inputs, data: Labelled) -> dict[str, np.ndarray]:
        """The set's molecules with context edges in the walk graph, and those without."""
        linked = with_context(inputs, inchikeys(data.items))
        return {"with_context_edges": linked, "without_context_edges": ~linked}

    def probe_facts(self, inputs: Inputs, data: Labelled) -> dict[str, Any]:
        return {"context": context_share(inputs, inchikeys(data.items), self.config.walk_length)}

    def predict(self, run: Run, inputs: Inputs, module: nn.Module, options: dict[str, Any], device: str) -> Prediction:
        """μ of every molecule, and each molecule's predicted targets by nearest-neighbour
        transfer in that space."""
        top_k, neighbours = int(options.get("top_k", 10)), int(options.get("neighbours", 10))
        if top_k < 1 or neighbours < 1:
            raise KgctlError("--top-k and --neighbours must be at least 1")
        vectors = embed(module, inputs.graphs, device)
        edges = (
            predicted_targets(inputs, vectors, top_k=top_k, neighbours=neighbours) if len(inputs.targets_kept) else None
        )
        splits = edges.column("split").to_pylist() if edges is not None else []
        facts = {
            "molecules": inputs.n_molecules,
            "embedding_dim": int(vectors.shape[1]),
            "edges": len(splits),
            "top_k": top_k,
            "neighbours": neighbours,
            **{f"edges_{s}": splits.count(s) for s in ("known", "held_out", "novel")},
        }
        return Prediction(
            edges=edges, embedding_ids=inputs.molecule_ids.tolist(), embeddings=np.asarray(vectors), facts=facts
        )
