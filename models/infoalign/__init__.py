"""InfoAlign (methods/infoalign.md): a molecule encoder (GIN with a virtual node) whose mean μ
rebuilds, through one decoder per feature space, the features of the nodes that random walks
reach from the molecule in the `context` view (molecules, genes, expression and morphology
profiles). Registered as `infoalign`: `kgctl train infoalign` and the rest of the platform come
from this declaration."""

from __future__ import annotations

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
from kgctl.models.infoalign.config import InfoAlignConfig
from kgctl.models.infoalign.data import Inputs, collect_inputs
from kgctl.models.infoalign.downstream import SETS, evaluate_set, read_assays
from kgctl.models.infoalign.model import InfoAlignNet
from kgctl.models.infoalign.molgraph import featurise
from kgctl.models.infoalign.targets import evaluate_targets, predicted_targets
from kgctl.models.infoalign.task import InfoAlignTask, embed, module_args
from kgctl.models.registry import register
from kgctl.models.runs import Run
from kgctl.models.trainer import load_module

__all__ = ["InfoAlign", "InfoAlignConfig"]

ENCODER_MODE = "eval (frozen: no dropout, BatchNorm statistics not updated, no gradients)"


@register
class InfoAlign(Model):
    name = "infoalign"
    description = "InfoAlign: molecule representations that rebuild what walks through the context graph reach."
    config_class = InfoAlignConfig
    view = "context"
    writes = Writes("PREDICTED_ASSOCIATION", "Molecule", "Gene", embedding_label="Molecule")
    evaluate_options: ClassVar[tuple[Option, ...]] = (
        Option(
            "task",
            "targets (the held-out TARGETS edges, no file) or a property set: chembl2k, broad6k, toxcast, biogen3k.",
            str,
            "targets",
            choices=("targets", *SETS),
        ),
        Option("file", "The property set's assays.csv.gz (InfoAlign's raw_data/<set>/raw/ layout).", str, ""),
        Option("probe-seeds", "Comma-separated seeds of the heads (the split is fixed: seed 3).", str, "0,1,2,3,4"),
        Option("rf-trees", "Trees of the random-forest baselines.", int, 100),
        Option("neighbours", "targets: nearest reference molecules whose targets are transferred.", int, 10),
    )
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

    def evaluate(
        self, run: Run, inputs: Inputs, conn: Connection, options: dict[str, Any], device: str, on_progress: OnProgress
    ) -> dict[str, Any]:
        task = str(options.get("task") or "targets")
        module = load_module(run.dir, InfoAlignNet, device)
        torch.manual_seed(self.config.seed)
        untrained = InfoAlignNet(**module_args(self.config, inputs)).to(device)
        trees = int(options.get("rf_trees", 100))
        if task == "targets":
            vectors = {
                "infoalign": embed(module, inputs.graphs, device),
                "untrained": embed(untrained, inputs.graphs, device),
            }
            return {
                **evaluate_targets(
                    inputs,
                    vectors,
                    neighbours=int(options.get("neighbours", 10)),
                    rf_trees=trees,
                    seed=self.config.seed,
                ),
                "encoder_mode": ENCODER_MODE,
            }
        file = str(options.get("file") or "")
        if not file:
            raise KgctlError(
                f"--task {task} needs --file (its assays.csv.gz, e.g. ../shared/data/infoalign/{SETS[task][0]})"
            )
        data = read_assays(Path(file), task)
        seeds = comma_list(str(options.get("probe_seeds", "0,1,2,3,4")), "probe-seeds", int, "numbers")
        if not seeds:
            raise KgctlError("--probe-seeds needs at least one seed")

        def encoder(net: nn.Module) -> Any:
            return lambda smiles: embed(net, featurise(smiles)[0], device)

        result = evaluate_set(
            data,
            {"infoalign": encoder(module), "untrained": encoder(untrained)},
            tuple(seeds),
            rf_trees=trees,
            on_progress=on_progress,
        )
        return {
            **result,
            "task": task,
            "file": file,
            "encoder_mode": ENCODER_MODE,
            "context": self.context_share(inputs, data.inchikeys()),
        }

    @staticmethod
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

    @classmethod
    def headline(cls, result: dict[str, Any]) -> dict[str, Any]:
        if result.get("task") == "targets":
            return {"task": "targets", "methods": result.get("methods")}
        key = result["metric"]
        return {"task": result["task"], "metric": key, **{m: v[key]["mean"] for m, v in result["methods"].items()}}

    @classmethod
    def report(cls, result: dict[str, Any]) -> list[str]:
        if result.get("task") == "targets":
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
