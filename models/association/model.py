"""The gene-association family's shared model: what every model of the `gene-association` view
(CAL, GraphSAGE, a plug-in) inherits — its inputs, run record, split, prediction and write-back of
scored gene pairs, and the two hooks the pairs evaluator compares models by: a training task on
given pairs, and a trained module's scores."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from torch import nn

from kgctl.core.options import Option
from kgctl.graph.connection import Connection
from kgctl.models.association.config import AssociationConfig
from kgctl.models.association.data import Inputs, collect_inputs, embed, make_split
from kgctl.models.association.rows import prediction
from kgctl.models.association.scorers import Scores
from kgctl.models.association.task import PairTask
from kgctl.models.base import Model, Prediction, Writes
from kgctl.models.neighbours import Rows
from kgctl.models.trainer import load_module, run_module

if TYPE_CHECKING:
    from kgctl.models.runs import Run


class AssociationModel(Model):
    """A model of gene pairs. Subclasses declare name, config and module, and implement `task`,
    `pair_task` (training on given pairs, no validation) and `scores` (a trained module's scores
    over a split's embedding and training graph); the rest is shared."""

    view = "gene-association"
    writes = Writes("PREDICTED_ASSOCIATION", "Gene", "Gene", embedding_label="Gene")
    evaluators = ("pairs", "evidence")
    predict_options: ClassVar[tuple[Option, ...]] = (Option("top-k", "Partners kept per gene.", int, 10),)
    # Trainer settings a run of this model passes on to the models it is compared with (besides
    # the data settings every association model shares).
    comparison_budget: ClassVar[tuple[str, ...]] = ()
    # Whether `evaluate` also reports the published transductive protocol (CAL's paper).
    reference_protocol: ClassVar[bool] = False
    config: AssociationConfig

    def build_inputs(self, conn: Connection, views: Path) -> Inputs:
        return collect_inputs(conn, self.config, views / f"gene-association-{self.config.relationship}")

    def load_inputs(self, path: Path) -> Inputs:
        return Inputs.load(path)

    @abstractmethod
    def task(self, inputs: Inputs) -> PairTask: ...

    @abstractmethod
    def pair_task(self, emb: np.ndarray, pairs: np.ndarray) -> PairTask:
        """Training on exactly `pairs` over the embedding `emb` with this config, no validation."""

    @abstractmethod
    def scores(self, module: nn.Module, emb: np.ndarray, train: np.ndarray, device: str) -> Scores:
        """The trained module's scores of gene pairs, over the embedding and training pairs it
        was trained on; `vectors` are the genes' embeddings it writes back."""

    def describe(self, inputs: Inputs, task: PairTask) -> dict[str, Any]:
        """The run's `data` record: the view, the split and the embedding."""
        assert task.split is not None and task.embedding is not None
        info = task.embedding
        return {
            **inputs.meta,
            "split": task.split.counts(),
            "embedding_dim": info["dim"],
            "explained_variance": round(info["explained_variance"], 4),
            "embedding_sha256": info["sha256"],
            "pca_fit_genes": info["fit_genes"],
        }

    def left_out(self) -> str | None:
        if self.config.split == "none":
            return None
        return f"it was trained on the {self.config.split} split, without its validation and test pairs"

    def fitted(self, module: nn.Module, inputs: Inputs, device: str) -> Scores:
        """The trained module's scores over its own config's split and embedding."""
        split = make_split(inputs, self.config, self.config.split, self.config.seed)
        emb, _ = embed(inputs.features, split.fit, self.config.pca_dim)
        return self.scores(module, emb, split.train, device)

    def pair_rows(self, run: Run, inputs: Inputs) -> Rows:
        """The trained run's all-pairs scores, by rows."""
        rows = self.fitted(load_module(run.dir, self.build_module), inputs, "cpu").rows
        assert rows is not None, f"{self.name} scores have no all-pairs rows"
        return rows

    def embed(self, run: Run, inputs: Inputs, device: str = "cpu", *, untrained: bool = False) -> np.ndarray:
        module = run_module(run.dir, self.build_module, self.config.seed, device, untrained=untrained)
        vectors = self.fitted(module, inputs, device).vectors
        assert vectors is not None
        return vectors

    def predict(self, run: Run, inputs: Inputs, module: nn.Module, options: dict[str, Any], device: str) -> Prediction:
        """Each gene's top-k partners by the module's scores, and the genes' vectors."""
        config = self.config
        split = make_split(inputs, config, config.split, config.seed)
        emb, _ = embed(inputs.features, split.fit, config.pca_dim)
        scores = self.scores(module, emb, split.train, device)
        assert scores.rows is not None and scores.vectors is not None
        return prediction(config, inputs, split, emb, scores.rows, int(options.get("top_k", 10)), scores.vectors)
