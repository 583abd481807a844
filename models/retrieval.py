"""The registered `retrieval` evaluator: queries rank candidates by the model's frozen embedding
(`Model.embed`), beside the same encoder untrained and the task's baselines, all scored by the
same ranking figures: the share of queries whose best candidate is relevant, recall@k, the mean
per-query ROC-AUC and the AUC pooled over every (query, candidate) pair. Retrieval tasks are
registered by kind of item by the package that knows their data (isoforms, held-out targets)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from sklearn.metrics import roc_auc_score

from kgctl.core.errors import KgctlError
from kgctl.core.options import setting
from kgctl.models.evaluators import (
    Context,
    Evaluator,
    EvaluatorOptions,
    KindRegistry,
    MethodsResult,
    item_kind,
    register_evaluator,
)
from kgctl.models.metrics import rank_auc

BLOCK = 256  # queries ranked at a time
ENCODER_MODE = "eval (frozen: no dropout, BatchNorm statistics not updated, no gradients)"


@dataclass
class RetrievalOptions(EvaluatorOptions):
    task: str = setting("", "The retrieval task (registered for the model's kind of item; default: the first).")
    k: int = setting(10, "Candidates read per query for recall@k.")
    neighbours: int = setting(10, "Nearest reference items whose labels are transferred (transfer tasks).")
    limit: int = setting(5000, "At most this many queries (a seeded sample beyond it).")
    rf_trees: int = setting(100, "Trees of the random-forest baseline (tasks that have one).")


@dataclass
class Queries:
    """What a task asks: `truth[q]`, the relevant candidate columns of query q, and `total[q]`,
    its relevant items counted (ones no candidate reaches count as misses of recall@k)."""

    truth: list[set[int]]
    total: np.ndarray
    candidates: int
    facts: dict[str, Any] = field(default_factory=dict)


Q = TypeVar("Q", bound=Queries)


class RetrievalTask(ABC, Generic[Q]):
    """A registered retrieval task on one kind of item: its queries, how an embedding of the
    run's items scores the candidates, and its baselines' scores (all [queries, candidates];
    -inf marks a pair that is not a candidate, e.g. the query itself)."""

    name: ClassVar[str]
    kind: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def queries(self, ctx: Context, options: RetrievalOptions) -> Q: ...

    @abstractmethod
    def scores(self, vectors: np.ndarray, asked: Q, options: RetrievalOptions) -> np.ndarray: ...

    @abstractmethod
    def baselines(self, ctx: Context, asked: Q, options: RetrievalOptions) -> dict[str, np.ndarray]: ...


TASKS = KindRegistry[RetrievalTask[Any]]("retrieval task")
register_retrieval = TASKS.register


def ranking(scores: np.ndarray, asked: Queries, k: int) -> dict[str, Any]:
    """The ranking figures of one method: nearest_hit (the best candidate is relevant), recall@k
    over every relevant item, the mean ROC-AUC of the queries with both classes and the AUC
    pooled over all (query, candidate) pairs."""
    relevant = np.zeros(scores.shape, dtype=bool)
    for q, found in enumerate(asked.truth):
        relevant[q, list(found)] = True
    hits = np.concatenate(
        [
            np.take_along_axis(
                relevant[lo : lo + BLOCK], np.argsort(-scores[lo : lo + BLOCK], 1, kind="stable")[:, :k], 1
            )
            for lo in range(0, len(scores), BLOCK)
        ]
    )
    candidate = np.isfinite(scores)
    aucs = [
        rank_auc(relevant[q, candidate[q]].astype(float), scores[q, candidate[q]])
        for q in range(len(scores))
        if 0 < relevant[q, candidate[q]].sum() < candidate[q].sum()
    ]
    pooled = relevant[candidate]
    return {
        "nearest_hit": round(float(hits[:, 0].mean()), 4),
        f"recall_at_{k}": round(float((hits.sum(1) / np.maximum(asked.total, 1)).mean()), 4),
        "auc": round(float(np.mean(aucs)), 4) if aucs else None,
        "queries_with_auc": len(aucs),
        "pooled_auc": round(float(roc_auc_score(pooled, scores[candidate])), 4)
        if 0 < pooled.sum() < len(pooled)
        else None,
    }


@register_evaluator
class Retrieval(Evaluator[RetrievalOptions, MethodsResult]):
    name = "retrieval"
    description = "Queries rank candidates by the frozen embedding, beside the untrained encoder and baselines."
    options_class = RetrievalOptions

    def evaluate(self, ctx: Context, options: RetrievalOptions) -> MethodsResult:
        model = ctx.model
        task = TASKS.named(options.task, item_kind(model, self.name))
        name = task.name
        if options.k < 1 or options.neighbours < 1 or options.limit < 1:
            raise KgctlError("--k, --neighbours and --limit must be at least 1")
        asked = task.queries(ctx, options)
        facts = {
            "description": task.description,
            "queries": len(asked.truth),
            "candidates": asked.candidates,
            **asked.facts,
            "k": options.k,
            "encoder_mode": ENCODER_MODE,
        }
        if not asked.truth:
            return MethodsResult(name, {}, {**facts, "skipped": asked.facts.get("note", "no queries")})
        methods = {}
        for method, untrained in ((model.name, False), ("untrained", True)):
            vectors = model.embed(ctx.run, ctx.inputs, ctx.device, untrained=untrained)
            methods[method] = ranking(task.scores(vectors, asked, options), asked, options.k)
        for method, scores in task.baselines(ctx, asked, options).items():
            methods[method] = ranking(scores, asked, options.k)
        return MethodsResult(name, methods, facts)

    def headline(self, result: MethodsResult) -> dict[str, Any]:
        return {"task": result.task, "methods": result.methods or None}

    def report(self, result: dict[str, Any]) -> list[str]:
        if "skipped" in result:
            return [f"{result['task']}: {result['skipped']}"]
        k = result["k"]
        lines = [
            f"{result['task']}: {result['description']} ({result['queries']} queries, {result['candidates']} candidates)"
        ]
        for m, v in result["methods"].items():
            auc = "—" if v["auc"] is None else f"{v['auc']:.3f}"
            pooled = "—" if v["pooled_auc"] is None else f"{v['pooled_auc']:.3f}"
            lines.append(
                f"  {m:14s} nearest {v['nearest_hit']:.3f}   recall@{k} {v[f'recall_at_{k}']:.3f}   "
                f"AUC {auc}   pooled AUC {pooled}"
            )
        return lines
