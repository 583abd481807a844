"""CAL, contrastive association learning (methods/cal.md): a map from a gene's expression
embedding into a space where interacting genes are close. Registered as `cal`: `kgctl train cal`
and every other part of the model platform come from this declaration."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option
from kgctl.core.progress import OnProgress
from kgctl.graph.connection import Connection
from kgctl.models.base import Model, Prediction, Writes
from kgctl.models.cal.config import CALConfig
from kgctl.models.cal.data import Inputs, collect_inputs, embed, make_split
from kgctl.models.cal.model import CALModel
from kgctl.models.cal.task import CALTask
from kgctl.models.registry import register
from kgctl.models.runs import Run

__all__ = ["CAL", "CALConfig", "inputs_by_threshold"]


def _comma_list(text: str, option: str, cast: type, what: str) -> tuple[Any, ...]:
    try:
        return tuple(cast(v.strip()) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise KgctlError(f"--{option}: {text!r} is not a comma-separated list of {what}") from None


@register
class CAL(Model):
    name = "cal"
    description = "Contrastive association learning: gene pairs (STRING) close in a map of expression embeddings."
    config_class = CALConfig
    view = "gene-association"
    writes = Writes("PREDICTED_ASSOCIATION", "Gene", "Gene", embedding_label="Gene")
    evaluate_options: ClassVar[tuple[Option, ...]] = (
        Option("seeds", "Comma-separated seeds (model and split).", str, "42,123,456"),
        Option("splits", "Held-out splits to evaluate.", str, "edge,node"),
        Option("thresholds", "Also train one model per positives score threshold (e.g. "
               "400,700,900) and score them all on one held-out set of the strictest's pairs.", str, ""),
    )  # fmt: skip
    predict_options: ClassVar[tuple[Option, ...]] = (
        Option("top-k", "Partners kept per gene.", int, 10),
    )
    test_config = {"pca_dim": 8, "hidden_dim": 32, "layers": 1, "epochs": 3, "batch_size": 32,
                   "checkpoint_every": 1}  # fmt: skip
    config: CALConfig

    def build_inputs(self, conn: Connection, views: Path) -> Inputs:
        return collect_inputs(
            conn, self.config, views / f"gene-association-{self.config.relationship}"
        )

    def load_inputs(self, path: Path) -> Inputs:
        return Inputs.load(path)

    def task(self, inputs: Inputs) -> CALTask:
        split = make_split(inputs, self.config, self.config.split, self.config.seed)
        emb, info = embed(inputs.features, split.fit, self.config.pca_dim)
        return CALTask(self.config, emb, split.train, split=split, embedding=info)

    def describe(self, inputs: Inputs, task: CALTask) -> dict[str, Any]:
        info, split = task.embedding, task.split
        assert split is not None
        return {**inputs.meta, "split": split.counts(), "embedding_dim": info["dim"],
                "explained_variance": round(info["explained_variance"], 4),
                "embedding_sha256": info["sha256"], "pca_fit_genes": info["fit_genes"]}  # fmt: skip

    def build_module(self, **module_args: Any) -> nn.Module:
        return CALModel(**module_args)

    def evaluate(self, run: Run, inputs: Inputs, conn: Connection, options: dict[str, Any],
                 device: str, on_progress: OnProgress) -> dict[str, Any]:  # fmt: skip
        from kgctl.models.cal.evaluate import evaluate

        seeds = _comma_list(options.get("seeds", "42,123,456"), "seeds", int, "integers")
        splits = _comma_list(options.get("splits", "edge,node"), "splits", str, "names")
        thresholds = _comma_list(options.get("thresholds", ""), "thresholds", float, "numbers")
        if not seeds or not splits or set(splits) - {"edge", "node"}:
            raise KgctlError("--seeds needs at least one seed and --splits a subset of edge,node")
        sweep = (
            inputs_by_threshold(conn, run.views, self.config, thresholds) if thresholds else None
        )
        return evaluate(run, inputs, splits=splits, seeds=seeds, device=device,
                        on_progress=on_progress, thresholds=sweep)  # fmt: skip

    @classmethod
    def headline(cls, result: dict[str, Any]) -> dict[str, Any]:
        from kgctl.models.cal.evaluate import headline

        return headline(result)

    @classmethod
    def report(cls, result: dict[str, Any]) -> list[str]:
        from kgctl.models.cal.evaluate import report

        return report(result)

    def predict(self, run: Run, inputs: Inputs, module: nn.Module, options: dict[str, Any],
                device: str) -> Prediction:  # fmt: skip
        from kgctl.models.cal.predict import predict

        assert isinstance(module, CALModel)
        return predict(self.config, inputs, module, int(options.get("top_k", 10)), device)


def inputs_by_threshold(conn: Connection, views: Path, config: CALConfig,
                        thresholds: tuple[float, ...]) -> dict[float, Inputs]:  # fmt: skip
    """The run's inputs again with positives at each score threshold (for a threshold sweep)."""
    if config.channel is not None:
        raise KgctlError("a threshold sweep needs positives chosen by score, not a channel filter")
    return {t: CAL(config.replace(min_score=t)).build_inputs(conn, views) for t in thresholds}
