"""IsoCLR (methods/isoclr.md): a transcript encoder learned contrastively from splice isoforms
and orthologs of one gene, read from the `transcripts` view (or a sequence corpus file), probed
on RNA stability and translation. Registered as `isoclr`: `kgctl train isoclr` and the rest of
the model platform come from this declaration."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option, comma_list
from kgctl.core.progress import OnProgress
from kgctl.graph.connection import Connection
from kgctl.models.base import Model, Prediction, Writes
from kgctl.models.isoclr.config import IsoCLRConfig
from kgctl.models.isoclr.data import Inputs, collect_inputs, pack
from kgctl.models.isoclr.datasets import half_life, utr3_mpra, utr5_mrl
from kgctl.models.isoclr.encoding import kmer_counts, six_tracks
from kgctl.models.isoclr.model import IsoCLRNet
from kgctl.models.isoclr.probe import ProbeSet, embed, isoform_retrieval, low_data_curves
from kgctl.models.isoclr.task import IsoCLRTask, module_args
from kgctl.models.registry import register
from kgctl.models.runs import Run
from kgctl.models.trainer import load_module

__all__ = ["IsoCLR", "IsoCLRConfig"]

TASKS = ("isoforms", "mrl", "utr3-stability", "half-life")


def _numbers(text: str, option: str, cast: type) -> tuple[Any, ...]:
    values = comma_list(text, option, cast, "numbers")
    if not values:
        raise KgctlError(f"--{option} needs at least one value")
    return values


@register
class IsoCLR(Model):
    name = "isoclr"
    description = "IsoCLR: an RNA encoder contrasting splice isoforms and orthologs (dilated 1-D CNN)."
    config_class = IsoCLRConfig
    view = "transcripts"
    writes = Writes("SIMILAR_TO", "Transcript", "Transcript", embedding_label="Transcript")
    evaluate_options: ClassVar[tuple[Option, ...]] = (
        Option(
            "task",
            "isoforms (retrieval on the run's transcripts, no labels), mrl (5'UTR "
            "ribosome load), utr3-stability (3'UTR MPRA) or half-life (the run's genes).",
            str,
            "isoforms",
            choices=TASKS,
        ),
        Option(
            "file",
            "mrl / utr3-stability: the data file (snv_phenotype_log_diff.csv, "
            "siegel_3utr_mpra.txt); half-life: the labels (all_HLs_human_PC1.txt layout).",
            str,
            "",
        ),
        Option("target", "utr3-stability: the cell line's column.", str, "jurkat", choices=("jurkat", "beas2b")),
        Option(
            "probe-seeds", "Comma-separated seeds of the grouped splits (and the scratch encoder).", str, "0,1,2,3,4"
        ),
        Option("fractions", "Shares of the training labels of the low-data curve.", str, "0.005,0.01,0.1,1"),
        Option(
            "scratch-steps",
            "Optimiser steps (about) of the from-scratch encoder per fraction and seed; 0 leaves it out.",
            int,
            1500,
        ),
    )
    predict_options: ClassVar[tuple[Option, ...]] = (
        Option("top-k", "Most similar transcripts kept per transcript.", int, 5),
    )
    test_config = {"encoder": "tiny", "projection": "16,16,8", "epochs": 2, "batch_size": 8, "checkpoint_every": 1}
    config: IsoCLRConfig

    def build_inputs(self, conn: Connection, views: Path) -> Inputs:
        return collect_inputs(conn, self.config, views)

    def load_inputs(self, path: Path) -> Inputs:
        return Inputs.load(path)

    def task(self, inputs: Inputs) -> IsoCLRTask:
        return IsoCLRTask(self.config, inputs)

    def describe(self, inputs: Inputs, task: IsoCLRTask) -> dict[str, Any]:
        sampler = task.sampler
        return {
            **inputs.meta,
            "view_fingerprint": inputs.meta.get("fingerprint"),
            "genes": len(inputs.genes),
            "ortholog_pairs": int(len(inputs.orthologs)),
            "nucleotides": int(inputs.lengths.sum()),
            "positive_genes": int(len(sampler.units)),
            "genes_with_orthologs": int(sum(1 for p in sampler.partners if len(p))),
            "left_out": sampler.left_out,
            "inputs_sha256": inputs.sha256(),
        }

    def build_module(self, **module_args: Any) -> nn.Module:
        return IsoCLRNet(**module_args)

    def evaluate(
        self, run: Run, inputs: Inputs, conn: Connection, options: dict[str, Any], device: str, on_progress: OnProgress
    ) -> dict[str, Any]:
        config = self.config
        task = str(options.get("task") or "isoforms")
        module = load_module(run.dir, IsoCLRNet, device)
        args = module_args(config)
        if task == "isoforms":
            torch.manual_seed(config.seed)
            untrained = IsoCLRNet(**args).to(device)
            sequences = [inputs.sequence(i) for i in range(inputs.n)]
            vectors = {
                "isoclr": embed(module, inputs, device=device, tracks=config.tracks),
                "untrained": embed(untrained, inputs, device=device, tracks=config.tracks),
                "kmer5": kmer_counts(sequences, 5),
            }
            return {
                "task": task,
                "encoder_mode": "eval (no dropout, BatchNorm statistics frozen)",
                **isoform_retrieval(inputs, vectors, config.max_length, seed=config.seed),
            }
        data = self.probe_set(task, inputs, options)
        curves = low_data_curves(
            data,
            module,
            args,
            seeds=_numbers(options.get("probe_seeds", "0,1,2,3,4"), "probe-seeds", int),
            fractions=_numbers(options.get("fractions", "0.005,0.01,0.1,1"), "fractions", float),
            scratch_steps=int(options.get("scratch_steps", 1500)),
            device=device,
            on_progress=on_progress,
        )
        return {
            "task": task,
            "data": data.name,
            "pretrained_on": inputs.meta.get("corpus", "graph"),
            "encoder_mode": "eval (frozen; no dropout, BatchNorm statistics frozen)",
            "probe": "ridge on standardised mean-pooled embeddings, penalty by grouped 3-fold CV",
            **curves,
        }

    def probe_set(self, task: str, inputs: Inputs, options: dict[str, Any]) -> ProbeSet:
        """The labelled sequences of a task, as inputs with their groups."""
        given = str(options.get("file") or "")
        if not given:
            raise KgctlError(f"--task {task} needs --file (see `kgctl evaluate --help`)")
        file = Path(given)
        if task == "half-life":
            return self.half_life_set(inputs, half_life(file), file)
        data = utr5_mrl(file) if task == "mrl" else utr3_mpra(file)
        target = "mrl" if task == "mrl" else str(options.get("target", "jurkat"))
        arrays = [six_tracks(s) for s in data.sequences]
        packed = pack(
            [str(i) for i in range(len(arrays))], ["all"], np.zeros(len(arrays)), np.zeros((0, 2)), arrays, {}
        )
        return ProbeSet(packed, data.labels[target], data.groups, f"{task}:{target} ({file.name})")

    def half_life_set(self, inputs: Inputs, labels: dict[str, float], file: Path) -> ProbeSet:
        """One transcript per labelled gene (its longest within max_length), grouped by
        homology group, so orthologs never sit on both sides of a split."""
        if inputs.meta.get("source") != "graph":
            raise KgctlError(
                f"--task half-life reads the run's transcripts; this run was pretrained on {inputs.meta.get('corpus')}"
            )
        homology = inputs.homology()
        chosen: dict[int, int] = {}
        for t in np.flatnonzero(inputs.lengths <= self.config.max_length):
            g = int(inputs.gene_of[t])
            if str(inputs.genes[g]) in labels and (g not in chosen or inputs.lengths[t] > inputs.lengths[chosen[g]]):
                chosen[g] = int(t)
        if len(chosen) < 20:
            raise KgctlError(f"{file}: only {len(chosen)} of the run's genes have a label")
        genes = sorted(chosen)
        rows = np.array([chosen[g] for g in genes])
        subset = pack(
            [str(inputs.ids[r]) for r in rows],
            [str(inputs.genes[g]) for g in genes],
            np.arange(len(rows)),
            np.zeros((0, 2)),
            [inputs.track(int(r)) for r in rows],
            {},
        )
        values = np.array([labels[str(inputs.genes[g])] for g in genes])
        return ProbeSet(subset, values, homology[genes], f"half-life ({file.name})")

    @classmethod
    def headline(cls, result: dict[str, Any]) -> dict[str, Any]:
        if result.get("task") == "isoforms":
            return {k: v for k, v in result.items() if k in ("task", "isoclr", "kmer5", "untrained")}
        return {
            "task": result["task"],
            "data": result["data"],
            "margin": result["margin"],
            "isoclr": {f: v["mean"] for f, v in result["methods"]["isoclr"].items()},
        }

    @classmethod
    def report(cls, result: dict[str, Any]) -> list[str]:
        if result.get("task") == "isoforms":
            lines = [
                f"isoform retrieval over {result['anchors']} transcripts "
                "(nearest other transcript is an isoform; AUC of same-gene pairs):"
            ]
            for m in ("isoclr", "untrained", "kmer5"):
                if m in result:
                    lines.append(
                        f"  {m:10s} nearest {result[m]['nearest_is_isoform']:.3f}   AUC {result[m]['pair_auc']:.3f}"
                    )
            return lines
        fractions = list(result["methods"]["isoclr"])
        lines = [
            f"{result['data']}: Pearson r on held-out groups, mean ± SD over seeds "
            f"{result['seeds']} ({result['labelled']} labelled, {result['groups']} groups)",
            "  labels      " + "".join(f"{f:>16s}" for f in fractions),
        ]
        for method, row in result["methods"].items():
            cells = "".join(f"{row[f]['mean']:>9.3f} ± {row[f]['sd']:.3f}" for f in fractions)
            lines.append(f"  {method:10s}  {cells}")
        return lines

    def predict(self, run: Run, inputs: Inputs, module: nn.Module, options: dict[str, Any], device: str) -> Prediction:
        """Embeddings of every transcript, and each one's most similar transcripts (cosine),
        flagged as an isoform of the same gene or a homologous transcript."""
        k = int(options.get("top_k", 5))
        if k < 1:
            raise KgctlError("--top-k must be at least 1")
        vectors = embed(module, inputs, device=device, tracks=self.config.tracks)
        unit = torch.from_numpy(vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12))
        homology = inputs.homology()[inputs.gene_of]
        k = min(k, inputs.n - 1)
        ends, scores = [], []
        for lo in range(0, inputs.n, 2048):  # blocks of rows, self excluded
            sim = unit[lo : lo + 2048] @ unit.T
            sim[torch.arange(len(sim)), torch.arange(lo, lo + len(sim))] = -2.0
            top = sim.topk(k, dim=1)
            ends.append(top.indices.numpy())
            scores.append(top.values.numpy())
        a = np.repeat(np.arange(inputs.n), k)
        b = np.concatenate(ends).reshape(-1)
        same_gene = inputs.gene_of[a] == inputs.gene_of[b]
        edges = pa.table(
            {
                "start": inputs.ids[a].tolist(),
                "end": inputs.ids[b].tolist(),
                "score": np.round(np.concatenate(scores).reshape(-1), 6),
                "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), inputs.n),
                "same_gene": same_gene,
                "homologous": homology[a] == homology[b],
            }
        )
        same = float(same_gene.mean()) if len(a) else 0.0
        facts = {
            "transcripts": inputs.n,
            "edges": len(a),
            "top_k": k,
            "share_same_gene": round(same, 4),
            "embedding_dim": int(vectors.shape[1]),
        }
        return Prediction(edges=edges, embedding_ids=inputs.ids.tolist(), embeddings=vectors, facts=facts)
