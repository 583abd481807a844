"""The registered `probe` evaluator: a head on the model's frozen representation of labelled items
(`Model.encode`), at several shares of the training labels and over seeds, beside the same
encoder untrained, the model's from-scratch control where it has one, and the registered
baselines of the item kind, all on the same splits and heads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from kgctl.core.errors import KgctlError
from kgctl.core.options import comma_list, setting
from kgctl.models.evaluators import (
    Context,
    Evaluator,
    EvaluatorOptions,
    MethodsResult,
    item_kind,
    register_evaluator,
)
from kgctl.models.metrics import summary
from kgctl.models.probing.heads import HEADS, THRESHOLDS, Split, group_split, head, score
from kgctl.models.probing.labels import FEATURES, LABEL_SETS, PREDICTORS, Labelled

MIN_TRAIN = 10
TEST_SHARE = 0.2
ENCODER_MODE = "eval (frozen: no dropout, BatchNorm statistics not updated, no gradients)"


@dataclass
class ProbeOptions(EvaluatorOptions):
    labels: str = setting("", "The label set (registered for the model's kind of item; default: the first).")
    file: str = setting("", "The label set's file (see `kgctl models` for the sets and ../shared/data/README.md).")
    target: str = setting("", "The label column, for a set with several (utr3-stability: jurkat or beas2b).")
    head: str = setting("", "The head on frozen features (default: the label set's protocol).", ("", *HEADS))
    probe_seeds: str = setting("0,1,2,3,4", "Comma-separated seeds of the splits and heads.")
    fractions: str = setting("", "Shares of the training labels, comma-separated (default: the set's, or 1).")
    scratch_steps: int = setting(
        1500, "Optimiser steps (about) of the from-scratch control per fraction and seed; 0 leaves it out."
    )
    rf_trees: int = setting(500, "Trees of the random-forest baseline.")
    split_rule: str = setting(
        "grouped",
        "Split of InfoAlign's property sets: grouped (whole scaffold groups) or official (the official repository's).",
        ("grouped", "official"),
    )


def numbers(text: str, option: str, cast: type) -> tuple[Any, ...]:
    values = comma_list(text, option, cast, "numbers")
    if not values:
        raise KgctlError(f"--{option} needs at least one value")
    return values


def splits(data: Labelled, seed: int) -> tuple[Split, np.ndarray]:
    """The seed's split (the set's published one, or whole groups of the labelled items, seeded)
    and its training rows shuffled (seed + 1), from which each label share takes its head."""
    if data.fixed_split is not None:
        split = data.fixed_split
    else:
        keep = np.flatnonzero(np.isfinite(data.labels).any(axis=1))
        pool, test = group_split(data.groups[keep], seed, TEST_SHARE)
        split = Split(keep[pool], np.zeros(0, dtype=np.int64), keep[test])
    return split, np.random.default_rng(seed + 1).permutation(split.train)


@register_evaluator
class Probe(Evaluator[ProbeOptions, MethodsResult]):
    name = "probe"
    description = "A head on the frozen encoder over seeds and label shares, beside untrained, scratch and baselines."
    options_class = ProbeOptions

    def evaluate(self, ctx: Context, options: ProbeOptions) -> MethodsResult:
        model, kind = ctx.model, item_kind(ctx.model, self.name)
        chosen = LABEL_SETS.named(options.labels, kind)
        data = chosen.load(options, ctx)
        seeds = numbers(options.probe_seeds, "probe-seeds", int)
        fractions = numbers(options.fractions or chosen.fractions, "fractions", float)
        probe = head(options.head or chosen.head)
        features = {
            model.name: model.encode(ctx.run, data.items, ctx.device),
            "untrained": model.encode(ctx.run, data.items, ctx.device, untrained=True),
            **{b.name: b.features(data.items) for b in FEATURES.of_kind(kind)},
        }
        features |= model.combined_features(data.items, features[model.name])
        predictors = PREDICTORS.of_kind(kind)
        methods = [*features, *(p.name for p in predictors), "fine_tuned", "scratch"]
        runs: dict[str, dict[float, list[dict[str, Any]]]] = {m: {f: [] for f in fractions} for m in methods}
        sizes: dict[float, list[int]] = {f: [] for f in fractions}
        chosen_settings: dict[str, dict[str, list[dict[str, Any]]]] = {}  # baseline: share: per seed
        subsets = model.item_subsets(ctx.inputs, data)  # e.g. molecules with and without context edges
        by_subset: dict[str, dict[str, dict[float, list[dict[str, Any]]]]] = {
            g: {m: {f: [] for f in fractions} for m in methods} for g in subsets
        }
        total, done = len(seeds) * len(fractions), 0

        def record(method: str, fraction: float, predicted: np.ndarray, test: np.ndarray) -> None:
            """The test figures of one method's predictions, overall and on each subset."""
            y = data.labels[test]
            runs[method][fraction].append(score(y, predicted, data.metric))
            for group, mask in subsets.items():
                inside = mask[test]
                by_subset[group][method][fraction].append(score(y[inside], predicted[inside], data.metric))

        for seed in seeds:
            split, shuffled = splits(data, seed)
            for fraction in fractions:
                train = np.sort(shuffled[: max(MIN_TRAIN, round(fraction * len(shuffled)))])
                part = Split(train, split.valid, split.test)
                sizes[fraction].append(len(train))
                for name, x in features.items():
                    predicted = probe.fit_predict(x, data.labels, part, data.groups, data.metric, seed)
                    record(name, fraction, predicted, split.test)
                for predictor in predictors:
                    record(predictor.name, fraction, predictor.fit_predict(data, part, seed, options), split.test)
                    if predictor.chosen:
                        chosen_settings.setdefault(predictor.name, {}).setdefault(f"{fraction:g}", []).append(
                            predictor.chosen
                        )
                tuned = model.fine_tune(ctx.run, data, part, seed, ctx.device)
                if tuned is not None:
                    record("fine_tuned", fraction, tuned[0], split.test)
                    chosen_settings.setdefault("fine_tuned", {}).setdefault(f"{fraction:g}", []).append(tuned[1])
                scratch = (
                    model.from_scratch(ctx.run, data, part, seed, options.scratch_steps, ctx.device)
                    if options.scratch_steps > 0
                    else None
                )
                if scratch is not None:
                    record("scratch", fraction, scratch, split.test)
                done += 1
                ctx.on_progress(done, total, f"{data.name}: seed {seed}, {fraction:g} of the labels")
        labelled = np.isfinite(data.labels).any(axis=1)
        keys = [data.metric, *((f"share_auc_{t:.2f}" for t in THRESHOLDS) if data.metric == "auc" else ())]
        table = {
            m: {f"{f:g}": {k: summary([r[k] for r in runs[m][f]]) for k in keys} for f in fractions}
            for m in methods
            if runs[m][fractions[0]]
        }
        subset_tables = {
            g: {
                "items": int(mask.sum()),
                "methods": {
                    m: {f"{f:g}": {data.metric: summary([r[data.metric] for r in rows[f]])} for f in fractions}
                    for m, rows in by_subset[g].items()
                    if rows[fractions[0]]
                },
            }
            for g, mask in subsets.items()
        }
        facts = {
            "data": data.name,
            "metric": data.metric,
            **data.facts,
            "labelled": int(labelled.sum()),
            "groups": int(len(np.unique(data.groups[labelled]))),
            "seeds": list(seeds),
            "train_sizes": {f"{f:g}": sizes[f] for f in fractions},
            "split_rule": data.facts.get("split_rule", f"whole groups, {TEST_SHARE:.0%} test, per seed"),
            "head": probe.description,
            "baselines": {b.name: b.description for b in FEATURES.of_kind(kind)}
            | {p.name: p.description for p in predictors},
            "random_forest_trees": options.rf_trees,
            "chosen_on_validation": chosen_settings,
            "scratch": "the same encoder and a linear head trained on the labels from random weights"
            if "scratch" in table
            else f"not run ({model.name} has no from-scratch control, or --scratch-steps 0)",
            "encoder_mode": ENCODER_MODE,
            "margin": margin(table, model.name, data.metric),
            "subsets": subset_tables,
            **model.probe_facts(ctx.inputs, data),
        }
        return MethodsResult(chosen.name, table, facts)

    def headline(self, result: MethodsResult) -> dict[str, Any]:
        metric = result.facts["metric"]
        return {
            "task": result.task,
            "data": result.facts["data"],
            "metric": metric,
            "margin": result.facts["margin"],
            "methods": {m: {f: v[metric]["mean"] for f, v in row.items()} for m, row in result.methods.items()},
        }

    def report(self, result: dict[str, Any]) -> list[str]:
        metric, methods = result["metric"], result["methods"]
        fractions = list(next(iter(methods.values())))
        lines = [
            f"{result['data']}: test {metric} mean ± SD over seeds {result['seeds']} "
            f"({result['labelled']} labelled, {result['groups']} groups; {result['split_rule']})",
            "  labels            " + "".join(f"{f:>17s}" for f in fractions),
        ]
        for method, row in methods.items():
            cells = "".join(f"{row[f][metric]['mean']:>10.4f} ± {row[f][metric]['sd']:.3f}" for f in fractions)
            shares = "".join(
                f"  ≥{k[-4:]} {v['mean']:.2f}" for k, v in row[fractions[-1]].items() if k.startswith("share")
            )
            lines.append(f"  {method:16s}{cells}{shares}")
        return lines


def margin(table: dict[str, Any], model: str, metric: str) -> dict[str, Any]:
    """Per label share, the best other method and the model's figure minus its (for MAE, a
    negative margin is the model's lead)."""
    out = {}
    for f in table[model]:
        figure = {m: row[f][metric]["mean"] for m, row in table.items()}
        others = [m for m in figure if m != model]
        best = (min if metric == "mae" else max)(others, key=figure.__getitem__)
        out[f] = {"best_baseline": best, f"{model}_minus_best": round(figure[model] - figure[best], 4)}
    return out
