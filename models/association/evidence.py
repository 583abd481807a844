"""The `evidence` evaluator (`kgctl evaluate RUN --evaluator evidence --files FILE,…`): are a
gene-association run's novel predictions supported by evidence it never trained on? Pair lists (two gene columns, TSV or CSV) support a pair they contain; gene-set
files (GMT) support a pair whose genes share a set. Reported: the share of the run's top novel
pairs supported, against expression cosine's top novel pairs and random unknown pairs."""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

from kgctl.core.errors import KgctlError
from kgctl.core.options import comma_list, setting
from kgctl.models.association.data import Inputs, embed, pair_keys
from kgctl.models.association.model import AssociationModel
from kgctl.models.evaluators import Context, EvaluationResult, Evaluator, EvaluatorOptions, register_evaluator
from kgctl.models.neighbours import Rows, blocks


def _open(path: Path) -> IO[str]:
    return gzip.open(path, "rt") if path.suffix == ".gz" else path.open()


def read_evidence(path: Path, index: dict[str, int], n: int) -> tuple[str, np.ndarray, list[np.ndarray]]:
    """(kind, sorted keys of supported pairs, gene sets as index arrays) from one file; genes
    outside the run are skipped, a malformed line is an error naming file and line."""
    if not path.is_file():
        raise KgctlError(f"--evidence: {path} is not a file")
    gmt = ".gmt" in path.suffixes
    pairs: list[tuple[int, int]] = []
    sets: list[np.ndarray] = []
    with _open(path) as handle:
        dialect = "excel-tab" if gmt or ".tsv" in path.suffixes or ".txt" in path.suffixes else "excel"
        for line, row in enumerate(csv.reader(handle, dialect=dialect), start=1):
            if not row or row[0].startswith("#"):
                continue
            if gmt:
                if len(row) < 3:
                    raise KgctlError(f"{path}:{line}: a GMT line is name, description, genes…")
                members = [index[g.upper()] for g in row[2:] if g.upper() in index]
                if len(members) >= 2:
                    sets.append(np.unique(members))
                continue
            if len(row) < 2:
                raise KgctlError(f"{path}:{line}: a pair line needs two gene columns")
            a, b = row[0].strip().upper(), row[1].strip().upper()
            if a in index and b in index and a != b:
                pairs.append((index[a], index[b]))
    keys = np.unique(pair_keys(np.asarray(pairs, dtype=np.int64).reshape(-1, 2), n))
    return ("gene sets" if gmt else "pairs"), keys, sets


def supported(pairs: np.ndarray, keys: np.ndarray, sets: list[np.ndarray], n: int) -> np.ndarray:
    """Whether each pair is in `keys` or has both genes in one of `sets`."""
    found = np.isin(pair_keys(pairs, n), keys)
    if sets:
        membership = np.zeros((n, len(sets)), dtype=bool)
        for j, members in enumerate(sets):
            membership[members, j] = True
        found |= (membership[pairs[:, 0]] & membership[pairs[:, 1]]).any(1)
    return found


def top_novel(rows: Rows, inputs: Inputs, count: int) -> np.ndarray:
    """The `count` best-scored pairs (i < j) that the graph does not relate at any score."""
    n = inputs.n
    best = np.zeros((0, 3))
    known = inputs.known_keys
    for lo, hi, s in blocks(rows, n, 1024):
        i = torch.arange(lo, hi)[:, None]
        s = s.masked_fill(torch.arange(n)[None, :] <= i, float("-inf"))
        flat = s.flatten()
        take = min(len(flat), 4 * count + len(known))
        values, where = torch.topk(flat, take)
        a = (where // n + lo).numpy()
        b = (where % n).numpy()
        ok = np.isfinite(values.numpy()) & ~np.isin(a.astype(np.int64) * n + b, known)
        best = np.concatenate([best, np.column_stack([a[ok], b[ok], values.numpy()[ok]])])
        best = best[np.argsort(-best[:, 2], kind="stable")[:count]]
    return best[:, :2].astype(np.int64)


def random_unknown(inputs: Inputs, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n, chosen = inputs.n, np.zeros(0, dtype=np.int64)
    while len(chosen) < count:
        a, b = rng.integers(0, n, 2 * count), rng.integers(0, n, 2 * count)
        keys = pair_keys(np.column_stack([a, b]), n)[a != b]
        keys = np.setdiff1d(np.unique(keys), np.concatenate([inputs.known_keys, chosen]))
        chosen = np.concatenate([chosen, rng.permutation(keys)[: count - len(chosen)]])
    return np.column_stack([chosen // n, chosen % n])


def evidence_check(
    inputs: Inputs, methods: dict[str, Rows], files: list[Path], top: int, seed: int = 42
) -> dict[str, Any]:
    """Per evidence file and for all together: the share of each method's top `top` novel pairs
    supported, and of as many random unknown pairs."""
    index = {str(g).upper(): i for i, g in enumerate(inputs.genes)}
    n = inputs.n
    loaded = {str(f): read_evidence(f, index, n) for f in files}
    lists = {name: top_novel(rows, inputs, top) for name, rows in methods.items()}
    lists["random"] = random_unknown(inputs, top, seed)
    result: dict[str, Any] = {"top": top, "seed": seed, "files": {}}
    every = {name: np.zeros(len(p), dtype=bool) for name, p in lists.items()}
    for name, (kind, keys, sets) in loaded.items():
        shares = {}
        for method, pairs in lists.items():
            hit = supported(pairs, keys, sets, n)
            every[method] |= hit
            shares[method] = round(float(hit.mean()), 4)
        result["files"][name] = {
            "kind": kind,
            "pairs": len(keys),
            "gene_sets": len(sets),
            "supported": shares,
        }
    result["all"] = {m: round(float(h.mean()), 4) for m, h in every.items()}
    base = result["all"]["random"]
    result["enrichment_over_random"] = {
        m: (round(v / base, 2) if base else None) for m, v in result["all"].items() if m != "random"
    }
    return result


def evidence_report(r: dict[str, Any]) -> list[str]:
    """The evidence check as text: per file and for all files together."""
    methods = list(r["all"])
    lines = [
        f"Run {r['run_id']}: top {r['top']:,} novel pairs per method (no known pair at any score), "
        "share supported by evidence it never trained on:",
        f"  {'evidence':<40}" + "".join(f"{m:>14}" for m in methods),
    ]
    for name, block in r["files"].items():
        what = f"{Path(name).name} ({block['pairs']:,} pairs, {block['gene_sets']:,} sets)"
        lines.append(f"  {what:<40}" + "".join(f"{block['supported'][m]:>14.3f}" for m in methods))
    lines.append(f"  {'all files':<40}" + "".join(f"{r['all'][m]:>14.3f}" for m in methods))
    lines.append("  over random: " + ", ".join(f"{m} ×{v}" for m, v in r["enrichment_over_random"].items()))
    return lines


@dataclass
class EvidenceOptions(EvaluatorOptions):
    files: str = setting("", "Comma-separated files: pair lists (two gene columns, .tsv/.csv) or gene sets (.gmt).")
    top: int = setting(500, "How many top novel pairs per method.")


@dataclass
class EvidenceResult(EvaluationResult):
    """Per evidence file and for all together: the share of each method's top novel pairs supported."""

    top: int
    seed: int
    files: dict[str, Any]
    all: dict[str, float]
    enrichment_over_random: dict[str, float | None]


@register_evaluator
class Evidence(Evaluator[EvidenceOptions, EvidenceResult]):
    name = "evidence"
    description = (
        "The run's top novel pairs against evidence files it never trained on, beside cosine and random pairs."
    )
    options_class = EvidenceOptions
    result_class = EvidenceResult
    kind = "evidence"

    def evaluate(self, ctx: Context, options: EvidenceOptions) -> EvidenceResult:
        run, model, inputs = ctx.run, ctx.model, ctx.inputs
        assert isinstance(model, AssociationModel)
        files = comma_list(options.files, "files", Path, "files")
        if not files:
            raise KgctlError("--evaluator evidence needs --files (pair lists or .gmt gene sets)")
        every = np.ones(inputs.n, dtype=bool)
        unit = torch.from_numpy(embed(inputs.features, every, model.config.pca_dim)[0])  # unit rows
        methods = {run.model: model.pair_rows(run, inputs), "cosine": lambda lo, hi: unit[lo:hi] @ unit.T}
        return EvidenceResult(**evidence_check(inputs, methods, list(files), options.top))

    def report(self, result: dict[str, Any]) -> list[str]:
        return evidence_report(result)
