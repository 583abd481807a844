"""CAL, contrastive association learning (methods/cal.md): a map from a gene's expression
embedding into a space where interacting genes are close. Registered as `cal`: `kgctl train cal`
and every other part of the model platform come from this declaration."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option, comma_list
from kgctl.core.progress import OnProgress
from kgctl.graph.connection import Connection
from kgctl.models.base import Model, Prediction, Writes
from kgctl.models.cal.config import AssociationConfig, CALConfig
from kgctl.models.cal.data import Inputs, collect_inputs, embed, make_split
from kgctl.models.cal.model import CALModel, encode
from kgctl.models.cal.predict import Rows
from kgctl.models.cal.task import CALTask, PairTask, cal_task
from kgctl.models.registry import register
from kgctl.models.runs import Run

__all__ = [
    "CAL",
    "AssociationModel",
    "CALConfig",
    "association_evaluate",
    "inputs_by_threshold",
]


class AssociationModel(Model):
    """What every model of the gene-association view shares (CAL, GraphSAGE): its inputs, run
    record, split, evaluation options and table, and the scored gene pairs it writes back."""

    view = "gene-association"
    writes = Writes("PREDICTED_ASSOCIATION", "Gene", "Gene", embedding_label="Gene")
    evaluate_options: ClassVar[tuple[Option, ...]] = (
        Option("seeds", "Comma-separated seeds (model and split).", str, "42,123,456"),
        Option("splits", "Held-out splits to evaluate.", str, "edge,node"),
        Option(
            "thresholds",
            "Also train one model per positives score threshold (e.g. "
            "400,700,900) and score them all on one held-out set of the strictest's pairs.",
            str,
            "",
        ),
        Option(
            "evidence",
            "Instead: score the run's novel predictions against these comma-separated "
            "files, pair lists (two gene columns, .tsv/.csv) or gene sets (.gmt).",
            str,
            "",
        ),
        Option("evidence-top", "--evidence: how many top novel pairs per method.", int, 500),
    )
    predict_options: ClassVar[tuple[Option, ...]] = (Option("top-k", "Partners kept per gene.", int, 10),)
    config: AssociationConfig

    def build_inputs(self, conn: Connection, views: Path) -> Inputs:
        return collect_inputs(conn, self.config, views / f"gene-association-{self.config.relationship}")

    def load_inputs(self, path: Path) -> Inputs:
        return Inputs.load(path)

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

    @classmethod
    def headline(cls, result: dict[str, Any]) -> dict[str, Any]:
        from kgctl.models.cal.evaluate import headline

        return headline(result)

    @classmethod
    def report(cls, result: dict[str, Any]) -> list[str]:
        from kgctl.models.cal.evaluate import report

        return report(result)


@register
class CAL(AssociationModel):
    name = "cal"
    description = "Contrastive association learning: gene pairs (STRING) close in a map of expression embeddings."
    config_class = CALConfig
    test_config = {
        "pca_dim": 8,
        "hidden_dim": 32,
        "layers": 1,
        "epochs": 3,
        "batch_size": 32,
        "search": "",
        "checkpoint_every": 1,
    }
    config: CALConfig

    def task(self, inputs: Inputs) -> CALTask:
        return cal_task(inputs, self.config)

    def build_module(self, **module_args: Any) -> nn.Module:
        return CALModel(**module_args)

    def evaluate(
        self, run: Run, inputs: Inputs, conn: Connection, options: dict[str, Any], device: str, on_progress: OnProgress
    ) -> dict[str, Any]:
        return association_evaluate(
            run, inputs, conn, options, self.config, lambda: self.pair_rows(run, inputs), device, on_progress
        )

    def pair_rows(self, run: Run, inputs: Inputs) -> Rows:
        """The trained run's all-pairs scores, by rows."""
        from kgctl.models.cal.evaluate import cal_model
        from kgctl.models.cal.predict import cal_rows

        split = make_split(inputs, self.config, self.config.split, self.config.seed)
        x = torch.from_numpy(embed(inputs.features, split.fit, self.config.pca_dim)[0])
        return cal_rows(encode(cal_model(run.dir), x), x, self.config.transform)

    def predict(self, run: Run, inputs: Inputs, module: nn.Module, options: dict[str, Any], device: str) -> Prediction:
        from kgctl.models.cal.predict import predict

        assert isinstance(module, CALModel)
        return predict(self.config, inputs, module, int(options.get("top_k", 10)), device)


def association_evaluate(
    run: Run,
    inputs: Inputs,
    conn: Connection,
    options: dict[str, Any],
    config: CALConfig,
    model_rows: Callable[[], Rows],
    device: str,
    on_progress: OnProgress,
) -> dict[str, Any]:
    """`kgctl evaluate` for a gene-association run: the held-out protocol of every method
    (CAL at `config`), or with --evidence, the evidence check of the run's novel predictions."""
    from kgctl.models.cal.evaluate import evaluate
    from kgctl.models.cal.evidence import evidence_check

    files = comma_list(options.get("evidence", ""), "evidence", Path, "files")
    if files:
        every = np.ones(inputs.n, dtype=bool)
        unit = torch.from_numpy(embed(inputs.features, every, config.pca_dim)[0])  # unit rows
        methods = {run.model: model_rows(), "cosine": lambda lo, hi: unit[lo:hi] @ unit.T}
        top = int(options.get("evidence_top", 500))
        return {"kind": "evidence", **evidence_check(inputs, methods, list(files), top)}
    seeds = comma_list(options.get("seeds", "42,123,456"), "seeds", int, "integers")
    splits = comma_list(options.get("splits", "edge,node"), "splits", str, "names")
    thresholds = comma_list(options.get("thresholds", ""), "thresholds", float, "numbers")
    if not seeds or not splits or set(splits) - {"edge", "node"}:
        raise KgctlError("--seeds needs at least one seed and --splits a subset of edge,node")
    sweep = inputs_by_threshold(conn, run.views, config, thresholds) if thresholds else None
    return evaluate(
        run, inputs, config, splits=splits, seeds=seeds, device=device, on_progress=on_progress, thresholds=sweep
    )


def inputs_by_threshold(
    conn: Connection, views: Path, config: CALConfig, thresholds: tuple[float, ...]
) -> dict[float, Inputs]:
    """The run's inputs again with positives at each score threshold (for a threshold sweep)."""
    if config.channel is not None:
        raise KgctlError("a threshold sweep needs positives chosen by score, not a channel filter")
    return {t: CAL(config.replace(min_score=t)).build_inputs(conn, views) for t in thresholds}
