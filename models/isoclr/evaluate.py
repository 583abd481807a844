"""IsoCLR's registered evaluators: `isoforms`, retrieval on the run's own transcripts (is the
nearest other transcript an isoform of the same gene?) beside the untrained encoder and 5-mer
counts; and `rna_probe`, a ridge probe on the frozen encoder over label fractions and seeds
(5'UTR ribosome load, 3'UTR stability, mRNA half-life) beside k-mer and from-scratch controls."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kgctl.core.errors import KgctlError
from kgctl.core.options import comma_list, setting
from kgctl.models.evaluators import Context, Evaluator, EvaluatorOptions, MethodsResult, register_evaluator
from kgctl.models.isoclr.config import IsoCLRConfig
from kgctl.models.isoclr.data import Inputs, pack
from kgctl.models.isoclr.datasets import half_life, utr3_mpra, utr5_mrl
from kgctl.models.isoclr.encoding import kmer_counts, six_tracks
from kgctl.models.isoclr.model import IsoCLRNet
from kgctl.models.isoclr.probe import ProbeSet, embed, isoform_retrieval, low_data_curves
from kgctl.models.isoclr.task import module_args
from kgctl.models.trainer import load_module, untrained_module

LABELS = ("mrl", "utr3-stability", "half-life")


@dataclass
class IsoformsOptions(EvaluatorOptions):
    limit: int = setting(5000, "At most this many anchor transcripts (a seeded sample beyond it).")


@register_evaluator
class Isoforms(Evaluator[IsoformsOptions, MethodsResult]):
    name = "isoforms"
    description = "Isoform retrieval on the run's transcripts (no labels), beside the untrained encoder and 5-mers."
    options_class = IsoformsOptions

    def evaluate(self, ctx: Context, options: IsoformsOptions) -> MethodsResult:
        run, model, inputs = ctx.run, ctx.model, ctx.inputs
        config = model.config
        assert isinstance(config, IsoCLRConfig)
        module = load_module(run.dir, IsoCLRNet, ctx.device)
        untrained = untrained_module(run.dir, IsoCLRNet, config.seed, ctx.device)
        sequences = [inputs.sequence(i) for i in range(inputs.n)]
        vectors = {
            "isoclr": embed(module, inputs, device=ctx.device, tracks=config.tracks),
            "untrained": embed(untrained, inputs, device=ctx.device, tracks=config.tracks),
            "kmer5": kmer_counts(sequences, 5),
        }
        figures = isoform_retrieval(inputs, vectors, config.max_length, limit=options.limit, seed=config.seed)
        methods = figures.pop("methods")
        return MethodsResult(
            "isoforms", methods, {"encoder_mode": "eval (no dropout, BatchNorm statistics frozen)", **figures}
        )

    def headline(self, result: MethodsResult) -> dict[str, Any]:
        return {"task": "isoforms", **result.methods}

    def report(self, result: dict[str, Any]) -> list[str]:
        lines = [
            f"isoform retrieval over {result['anchors']} transcripts "
            "(nearest other transcript is an isoform; AUC of same-gene pairs):"
        ]
        for m, v in result["methods"].items():
            lines.append(f"  {m:10s} nearest {v['nearest_is_isoform']:.3f}   AUC {v['pair_auc']:.3f}")
        return lines


@dataclass
class ProbeOptions(EvaluatorOptions):
    labels: str = setting(
        "mrl",
        "mrl (5'UTR ribosome load), utr3-stability (3'UTR MPRA) or half-life (the run's genes).",
        LABELS,
    )
    file: str = setting(
        "",
        "mrl / utr3-stability: the data file (snv_phenotype_log_diff.csv, siegel_3utr_mpra.txt); "
        "half-life: the labels (all_HLs_human_PC1.txt layout).",
    )
    target: str = setting("jurkat", "utr3-stability: the cell line's column.", ("jurkat", "beas2b"))
    probe_seeds: str = setting("0,1,2,3,4", "Comma-separated seeds of the grouped splits (and the scratch encoder).")
    fractions: str = setting("0.005,0.01,0.1,1", "Shares of the training labels of the low-data curve.")
    scratch_steps: int = setting(
        1500, "Optimiser steps (about) of the from-scratch encoder per fraction and seed; 0 leaves it out."
    )


def _numbers(text: str, option: str, cast: type) -> tuple[Any, ...]:
    values = comma_list(text, option, cast, "numbers")
    if not values:
        raise KgctlError(f"--{option} needs at least one value")
    return values


@register_evaluator
class RNAProbe(Evaluator[ProbeOptions, MethodsResult]):
    name = "rna_probe"
    description = "A ridge probe on the frozen encoder over label fractions, beside k-mer and from-scratch controls."
    options_class = ProbeOptions

    def evaluate(self, ctx: Context, options: ProbeOptions) -> MethodsResult:
        run, model, inputs = ctx.run, ctx.model, ctx.inputs
        config = model.config
        assert isinstance(config, IsoCLRConfig)
        data = probe_set(options, inputs, config)
        curves = low_data_curves(
            data,
            load_module(run.dir, IsoCLRNet, ctx.device),
            module_args(config),
            seeds=_numbers(options.probe_seeds, "probe-seeds", int),
            fractions=_numbers(options.fractions, "fractions", float),
            scratch_steps=options.scratch_steps,
            device=ctx.device,
            on_progress=ctx.on_progress,
        )
        methods = curves.pop("methods")
        facts = {
            "data": data.name,
            "pretrained_on": inputs.meta.get("corpus", "graph"),
            "encoder_mode": "eval (frozen; no dropout, BatchNorm statistics frozen)",
            "probe": "ridge on standardised mean-pooled embeddings, penalty by grouped 3-fold CV",
            **curves,
        }
        return MethodsResult(options.labels, methods, facts)

    def headline(self, result: MethodsResult) -> dict[str, Any]:
        return {
            "task": result.task,
            "data": result.facts["data"],
            "margin": result.facts["margin"],
            "isoclr": {f: v["mean"] for f, v in result.methods["isoclr"].items()},
        }

    def report(self, result: dict[str, Any]) -> list[str]:
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


def probe_set(options: ProbeOptions, inputs: Inputs, config: IsoCLRConfig) -> ProbeSet:
    """The labelled sequences of a task, as inputs with their groups."""
    task = options.labels
    if not options.file:
        raise KgctlError(f"--labels {task} needs --file (see `kgctl evaluate --help`)")
    file = Path(options.file)
    if task == "half-life":
        return half_life_set(inputs, half_life(file), file, config.max_length)
    data = utr5_mrl(file) if task == "mrl" else utr3_mpra(file)
    target = "mrl" if task == "mrl" else options.target
    arrays = [six_tracks(s) for s in data.sequences]
    packed = pack([str(i) for i in range(len(arrays))], ["all"], np.zeros(len(arrays)), np.zeros((0, 2)), arrays, {})
    return ProbeSet(packed, data.labels[target], data.groups, f"{task}:{target} ({file.name})")


def half_life_set(inputs: Inputs, labels: dict[str, float], file: Path, max_length: int) -> ProbeSet:
    """One transcript per labelled gene (its longest within max_length), grouped by
    homology group, so orthologs never sit on both sides of a split."""
    if inputs.meta.get("source") != "graph":
        raise KgctlError(
            f"--labels half-life reads the run's transcripts; this run was pretrained on {inputs.meta.get('corpus')}"
        )
    homology = inputs.homology()
    chosen: dict[int, int] = {}
    for t in np.flatnonzero(inputs.lengths <= max_length):
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
