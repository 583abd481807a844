"""InfoAlign's registered evaluators: `targets`, the held-out TARGETS edges retrieved by nearest
neighbours in each embedding space beside Tanimoto k-NN and a random forest on fingerprints; and
`properties`, a frozen-encoder head on one of the four property sets (methods/infoalign.md §6)
beside fingerprint baselines. Both report the same encoder untrained as a control."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from kgctl.core.errors import KgctlError
from kgctl.core.options import comma_list, setting
from kgctl.models.base import Model
from kgctl.models.evaluators import Context, Evaluator, EvaluatorOptions, MethodsResult, register_evaluator
from kgctl.models.infoalign.data import Inputs
from kgctl.models.infoalign.downstream import SETS, evaluate_set, read_assays
from kgctl.models.infoalign.model import InfoAlignNet
from kgctl.models.infoalign.molgraph import featurise
from kgctl.models.infoalign.targets import evaluate_targets
from kgctl.models.infoalign.task import embed
from kgctl.models.runs import Run
from kgctl.models.trainer import load_module, untrained_module

ENCODER_MODE = "eval (frozen: no dropout, BatchNorm statistics not updated, no gradients)"


def encoders(run: Run, model: Model, device: str) -> tuple[nn.Module, nn.Module]:
    """The run's trained encoder and the same architecture untrained (seeded by the run's seed)."""
    return load_module(run.dir, InfoAlignNet, device), untrained_module(
        run.dir, InfoAlignNet, model.config.seed, device
    )


@dataclass
class TargetsOptions(EvaluatorOptions):
    neighbours: int = setting(10, "Nearest reference molecules whose targets are transferred.")
    rf_trees: int = setting(100, "Trees of the random-forest baseline.")


@register_evaluator
class Targets(Evaluator[TargetsOptions, MethodsResult]):
    name = "targets"
    description = "Held-out TARGETS edges by k-NN transfer in the embedding, beside Tanimoto k-NN and a random forest."
    options_class = TargetsOptions

    def evaluate(self, ctx: Context, options: TargetsOptions) -> MethodsResult:
        run, model, inputs = ctx.run, ctx.model, ctx.inputs
        module, untrained = encoders(run, model, ctx.device)
        vectors = {
            "infoalign": embed(module, inputs.graphs, ctx.device),
            "untrained": embed(untrained, inputs.graphs, ctx.device),
        }
        figures = evaluate_targets(
            inputs, vectors, neighbours=options.neighbours, rf_trees=options.rf_trees, seed=model.config.seed
        )
        methods = figures.pop("methods", {})
        figures.pop("task")
        return MethodsResult("targets", methods, {**figures, "encoder_mode": ENCODER_MODE})

    def headline(self, result: MethodsResult) -> dict[str, Any]:
        return {"task": "targets", "methods": result.methods or None}

    def report(self, result: dict[str, Any]) -> list[str]:
        if "skipped" in result:
            return [f"targets: {result['skipped']}"]
        lines = [
            f"held-out targets of {result['held_out_molecules']} molecules "
            f"({result['held_out_edges']} edges; {result['candidate_genes']} candidate genes):"
        ]
        recall = f"recall_at_{result['k']}"
        for m, v in result["methods"].items():
            lines.append(f"  {m:18s} recall@{result['k']} {v[recall]:.3f}   AUC {v['auc']}")
        return lines


@dataclass
class PropertiesOptions(EvaluatorOptions):
    set: str = setting("chembl2k", "The property set.", tuple(SETS))
    file: str = setting("", "The set's assays.csv.gz (InfoAlign's raw_data/<set>/raw/ layout).")
    probe_seeds: str = setting("0,1,2,3,4", "Comma-separated seeds of the heads (the split is fixed: seed 3).")
    rf_trees: int = setting(100, "Trees of the random-forest baseline.")


@register_evaluator
class Properties(Evaluator[PropertiesOptions, MethodsResult]):
    name = "properties"
    description = "A head on the frozen encoder per property set (scaffold split), beside fingerprint baselines."
    options_class = PropertiesOptions

    def evaluate(self, ctx: Context, options: PropertiesOptions) -> MethodsResult:
        run, model, inputs = ctx.run, ctx.model, ctx.inputs
        if not options.file:
            raise KgctlError(
                f"--evaluator properties needs --file (the {options.set} assays.csv.gz, e.g. "
                f"../shared/data/infoalign/{SETS[options.set][0]})"
            )
        data = read_assays(Path(options.file), options.set)
        seeds = comma_list(options.probe_seeds, "probe-seeds", int, "numbers")
        if not seeds:
            raise KgctlError("--probe-seeds needs at least one seed")
        module, untrained = encoders(run, model, ctx.device)

        def encoder(net: nn.Module) -> Any:
            return lambda smiles: embed(net, featurise(smiles)[0], ctx.device)

        figures = evaluate_set(
            data,
            {"infoalign": encoder(module), "untrained": encoder(untrained)},
            tuple(seeds),
            rf_trees=options.rf_trees,
            on_progress=ctx.on_progress,
        )
        methods = figures.pop("methods")
        facts = {**figures, "file": options.file, "encoder_mode": ENCODER_MODE}
        facts["context"] = context_share(inputs, data.inchikeys())
        return MethodsResult(options.set, methods, facts)

    def headline(self, result: MethodsResult) -> dict[str, Any]:
        key = result.facts["metric"]
        return {"task": result.task, "metric": key, **{m: v[key]["mean"] for m, v in result.methods.items()}}

    def report(self, result: dict[str, Any]) -> list[str]:
        key = result["metric"]
        lines = [
            f"{result['task']}: test {key.upper()} mean ± SD over seeds {result['seeds']} "
            f"(split {result['split']}; {result['context']['share_with_context_edges']:.0%} of the "
            "molecules have context edges)"
        ]
        for m, v in result["methods"].items():
            shares = "".join(f"  ≥{k[-4:]} {v[k]['mean']:.2f}" for k in v if k.startswith("share"))
            lines.append(f"  {m:16s} {v[key]['mean']:.4f} ± {v[key]['sd']:.4f}{shares}")
        return lines


def context_share(inputs: Inputs, keys: list[str]) -> dict[str, Any]:
    """How many of a set's molecules are Molecule nodes of the run's graph, and how many of
    those have edges there (so that walks reach beyond their own fingerprint)."""
    index = {str(m): i for i, m in enumerate(inputs.molecule_ids)}
    degree = inputs.degree()
    rows = [index[k] for k in keys if k in index]
    linked = sum(1 for r in rows if degree[r] > 0)
    return {
        "molecules": len(keys),
        "in_graph": len(rows),
        "with_context_edges": linked,
        "share_with_context_edges": round(linked / max(len(keys), 1), 4),
    }
