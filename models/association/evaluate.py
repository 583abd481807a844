"""The `pairs` evaluator of the gene-association family: the reference protocol (to compare with
the paper) and the honest one beside it (methods/cal.md §6–§8). Honest: held-out edge and node
splits; every registered association model chosen on the split's validation pairs and trained per
split and seed; negatives that exclude every known pair (composition-matched in the node split)
plus degree-matched negatives; every registered pair baseline fit on the same training pairs and
scored on the same pairs; mean ± SD over seeds; plots in the run folder. With thresholds, a sweep
of the run's model over positives thresholds, every one scored on one fixed held-out set."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from kgctl.core.errors import KgctlError
from kgctl.core.options import comma_list, setting
from kgctl.core.progress import OnProgress, silent
from kgctl.graph.connection import Connection
from kgctl.models import metrics
from kgctl.models.association.baselines import cosine_scores
from kgctl.models.association.config import HUBNESS, AssociationConfig
from kgctl.models.association.data import (
    NEGATIVE_RATIO,
    Inputs,
    Split,
    ambiguous_pairs,
    both_unseen,
    degree_matched_negatives,
    degrees,
    embed,
    make_split,
    negatives,
    pair_keys,
    reference_negatives,
    validation_negatives,
)
from kgctl.models.association.model import AssociationModel
from kgctl.models.association.rows import partner_hits
from kgctl.models.association.scorers import Scores, SplitData, fit_chosen, scorers
from kgctl.models.association.task import PairTask
from kgctl.models.config import ModelConfig
from kgctl.models.evaluators import Context, EvaluationResult, Evaluator, EvaluatorOptions, register_evaluator
from kgctl.models.registry import available
from kgctl.models.runs import Run
from kgctl.models.selection import final_settings, fit_or_load
from kgctl.models.trainer import MODEL, fit, load_module

SEEDS = (42, 123, 456)


@dataclass
class PairsOptions(EvaluatorOptions):
    seeds: str = setting("42,123,456", "Comma-separated seeds (models and splits).")
    splits: str = setting("edge,node", "Held-out splits to evaluate.")
    thresholds: str = setting(
        "",
        "Also train the run's model per positives score threshold (e.g. 400,700,900) and score "
        "them all on one held-out set of the strictest's pairs.",
    )


@dataclass
class PairsResult(EvaluationResult):
    """Held-out figures per split (summary over seeds and each seed's), the reference protocol
    (CAL's paper; None for other models), the threshold sweep and the plots."""

    seeds: list[int]
    negative_ratio: int
    reference: dict[str, Any] | None
    held_out: dict[str, Any]
    plots: list[str]
    threshold_sweep: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if out["threshold_sweep"] is None:
            del out["threshold_sweep"]
        return out


def association_models() -> dict[str, type[AssociationModel]]:
    """Every registered gene-association model: each is a method of the comparison."""
    return {name: cls for name, cls in available().items() if issubclass(cls, AssociationModel)}


def comparison_config(run: Run, cls: type[AssociationModel], kind: str, seed: int) -> AssociationConfig:
    """A model's config for one split and seed: the run's own for the run's model; for another,
    its defaults on the run's data settings (and any trainer settings the run's model passes on)."""
    if run.model == cls.name:
        settings = dict(run.config)
    else:
        run_cls = association_models()[run.model]
        data = run_cls.config_class(**run.config)
        assert isinstance(data, AssociationConfig)
        settings = {**data.shared(), **{k: run.config[k] for k in run_cls.comparison_budget}}
    config = cls.config_class(**{**settings, "seed": seed, "split": kind})
    assert isinstance(config, AssociationConfig)
    return config


def model_task(cls: type[AssociationModel], inputs: Inputs, config: ModelConfig) -> PairTask:
    """The training task of `cls` at `config` (what validation selection trains)."""
    return cls(config).task(inputs)


@dataclass
class Fitted:
    """One association model on one split: its chosen config, selection record and scores."""

    config: AssociationConfig
    selection: dict[str, Any]
    scores: Scores


def split_models(
    run: Run, inputs: Inputs, split: Split, emb: np.ndarray, device: str, on_progress: OnProgress
) -> dict[str, Fitted]:
    """Every association model for (split, seed): the run's own model when it was trained on
    exactly that split, else one chosen on the split's validation pairs and trained now under
    `evaluation/` (kept: a re-run trains nothing again). A model whose search chose another PCA
    width scores over its own embedding of the split's genes."""
    fitted = {}
    for name, cls in association_models().items():
        config = comparison_config(run, cls, split.kind, split.seed)
        own = name == run.model and run.config["split"] == split.kind and run.config["seed"] == split.seed
        if own:
            folder, chosen, selection = run.dir, config, run.record.get("selection") or {}
        else:
            folder = run.dir / "evaluation" / f"{name}-{split.kind}-seed{split.seed}"
            chosen_config, selection = fit_or_load(
                config, partial(model_task, cls, inputs), folder, device=device, on_progress=on_progress
            )
            assert isinstance(chosen_config, AssociationConfig)
            chosen = chosen_config
        model = cls(chosen)
        module = load_module(folder, model.build_module)
        own_emb = emb if chosen.pca_dim == emb.shape[1] else embed(inputs.features, split.fit, chosen.pca_dim)[0]
        fitted[name] = Fitted(chosen, selection, model.scores(module, own_emb, split.train, "cpu"))
    return fitted


def baseline_scores(data: SplitData) -> dict[str, tuple[Scores, dict[str, Any]]]:
    """Every registered pair baseline fit on the split's training data, its settings chosen on
    the split's validation pairs, with the record of the choice."""
    return {name: fit_chosen(cls, data) for name, cls in scorers().items()}


def honest(
    run: Run, inputs: Inputs, data: AssociationConfig, kind: str, seed: int, device: str, on_progress: OnProgress
) -> dict[str, Any]:
    """Held-out figures of every method for one split and seed."""
    split = make_split(inputs, data, kind, seed)
    emb, _ = embed(inputs.features, split.fit, data.pca_dim)
    models = split_models(run, inputs, split, emb, device, on_progress)
    chosen: dict[str, ModelConfig] = {name: f.config for name, f in models.items()}
    methods = {name: f.scores for name, f in models.items()}
    selection = {name: f.selection for name, f in models.items()}
    validation = None
    if len(split.validation):  # a generator of their own: the test negatives below stay as they were
        rng = np.random.default_rng([seed, 2])
        validation = (split.validation, validation_negatives(inputs, split, NEGATIVE_RATIO, rng))
    for name, (scores, record) in baseline_scores(SplitData(inputs, split, emb, data, chosen, validation)).items():
        methods[name], selection[name] = scores, record
    degree = degrees(inputs.n, split.train)
    rng = np.random.default_rng(seed)
    sets = {
        "random": (split.test, negatives(inputs, split, NEGATIVE_RATIO, rng)),
        "degree_matched": (
            split.test,
            degree_matched_negatives(inputs, split.test, split.unseen, degree, NEGATIVE_RATIO, rng),
        ),
    }
    if split.kind == "node":  # drawn after the others: their negatives stay as they were
        sets["both_unseen"] = both_unseen(inputs, split, NEGATIVE_RATIO, np.random.default_rng([seed, 4]))
    cosines = {name: (cosine_scores(emb, pos), cosine_scores(emb, neg)) for name, (pos, neg) in sets.items()}
    mean_degree = (degree[split.test[:, 0]] + degree[split.test[:, 1]]) / 2
    result: dict[str, Any] = {
        "split": split.counts(),
        "negatives": {name: len(neg) for name, (_, neg) in sets.items()},
        "positives": {name: len(pos) for name, (pos, _) in sets.items()},
        "selection": selection,
        "methods": {},
    }
    val_neg = validation_negatives(inputs, split, NEGATIVE_RATIO, rng) if len(split.validation) else None
    ambiguous = ambiguous_pairs(inputs, split)
    result["ambiguous_pairs"] = len(ambiguous)
    rows = methods[run.model].rows
    assert rows is not None
    result["hubness"] = {h: partner_hits(rows, inputs.n, split.validation, split.train, h) for h in HUBNESS}
    for method, scores in methods.items():
        scored = {name: (scores.pairs(pos), scores.pairs(neg)) for name, (pos, neg) in sets.items()}
        figures: dict[str, Any] = {name: metrics.ranking(*scored[name], *cosines[name]) for name in sets}
        figures["spearman_mean_degree"] = metrics.spearman(mean_degree, scored["random"][0])
        if val_neg is not None:
            figures["validation_auc"] = metrics.auc(scores.pairs(split.validation), scores.pairs(val_neg))
        if len(ambiguous) >= metrics.CB_MIN:  # below-threshold known pairs: never negatives
            figures["ambiguous_auc"] = metrics.auc(scores.pairs(ambiguous), scored["random"][1])
        result["methods"][method] = figures
    result["plot_data"] = {
        "split": split,
        "methods": methods,
        "model": run.model,
        "negatives": sets["random"][1],
        "mean_degree": mean_degree,
    }
    return result


def reference(run: Run, model: AssociationModel, inputs: Inputs) -> dict[str, Any]:
    """The paper's protocol on the run's own model: its training pairs against uniform negatives
    that exclude only the positives; AUC and cross-boundary AUC (|cos| < 0.2). Transductive:
    a reproduction check, not a held-out result."""
    config = model.config
    split = make_split(inputs, config, config.split, config.seed)
    emb, _ = embed(inputs.features, split.fit, config.pca_dim)
    own = model.scores(load_module(run.dir, model.build_module), emb, split.train, "cpu")
    neg = reference_negatives(inputs, inputs.positives)
    out: dict[str, Any] = {
        "protocol": "reference (transductive: training pairs; negatives exclude only positives)",
        "positives": len(split.train),
        "negatives": len(neg),
    }
    pos_cos, neg_cos = cosine_scores(emb, split.train), cosine_scores(emb, neg)
    for method, pos, negs in (
        (run.model, own.pairs(split.train), own.pairs(neg)),
        ("cosine", pos_cos, neg_cos),
    ):
        out[method] = {
            "auc": metrics.auc(pos, negs),
            "cb_auc": metrics.cross_boundary_auc(pos, negs, pos_cos, neg_cos, 0.2),
        }
    return out


NEGATIVE_SETS = ("random", "degree_matched", "both_unseen")  # both_unseen: node split only


def summarise(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± SD over seeds of every scalar figure, per method and negative set."""
    summary: dict[str, Any] = {}
    for method in per_seed[0]["methods"]:
        rows = [r["methods"][method] for r in per_seed]
        entry: dict[str, Any] = {}
        for neg in (n for n in NEGATIVE_SETS if n in rows[0]):
            entry[neg] = {
                key: metrics.mean_sd([r[neg][key] for r in rows]) for key in rows[0][neg] if key != "cb_sweep"
            }
            entry[neg]["cb_sweep"] = {
                b: metrics.mean_sd([r[neg]["cb_sweep"][b]["auc"] for r in rows]) for b in rows[0][neg]["cb_sweep"]
            }
        for key in ("spearman_mean_degree", "validation_auc", "ambiguous_auc"):
            if key in rows[0]:
                entry[key] = metrics.mean_sd([r.get(key) for r in rows])
        summary[method] = entry
    return summary


def evaluate(
    run: Run,
    model: AssociationModel,
    inputs: Inputs,
    *,
    splits: tuple[str, ...] = ("edge", "node"),
    seeds: tuple[int, ...] = SEEDS,
    device: str = "auto",
    on_progress: OnProgress = silent,
    thresholds: dict[float, Inputs] | None = None,
) -> PairsResult:
    """Both protocols (the reference one where the run's model declares it), and a threshold
    sweep when given inputs per threshold; the plots go into the run folder."""
    plots: list[str] = []
    held_out: dict[str, Any] = {}
    for kind in splits:
        per_seed = [honest(run, inputs, model.config, kind, seed, device, on_progress) for seed in seeds]
        plots += plot(run.dir / "plots", kind, per_seed[0].pop("plot_data"))
        for r in per_seed[1:]:
            r.pop("plot_data")
        held_out[kind] = {"summary": summarise(per_seed), "per_seed": dict(zip(map(str, seeds), per_seed, strict=True))}
    sweep = None
    if thresholds:
        config = model.config
        final = type(config)(**final_settings(config, run.record.get("selection")))
        chosen_on = make_split(inputs, config, config.split, config.seed).validation
        sweep = threshold_sweep(
            type(model)(final),
            thresholds,
            run.dir / "evaluation",
            seeds=seeds,
            device=device,
            on_progress=on_progress,
            chosen_on=(inputs.genes, chosen_on),
        )
    return PairsResult(
        seeds=list(seeds),
        negative_ratio=NEGATIVE_RATIO,
        reference=reference(run, model, inputs) if model.reference_protocol else None,
        held_out=held_out,
        plots=plots,
        threshold_sweep=sweep,
    )


def trained(
    model: AssociationModel, folder: Path, emb: np.ndarray, pairs: np.ndarray, device: str, on_progress: OnProgress
) -> Scores:
    """`model` trained on exactly `pairs` (no validation) in `folder`, unless it is already there."""
    if not (folder / MODEL).exists():
        fit(model.pair_task(emb, pairs), folder, device=device, on_progress=on_progress)
    return model.scores(load_module(folder, model.build_module), emb, pairs, "cpu")


def sweep_test_pairs(strict: Inputs, excluded: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """The sweep's held-out pairs: `fraction` of the strictest positives, drawn from those whose
    key is not in `excluded` (the pairs the swept settings were chosen on), in key order."""
    eligible = strict.positives[~np.isin(pair_keys(strict.positives, strict.n), excluded)]
    return eligible[np.sort(rng.permutation(len(eligible))[: round(fraction * len(strict.positives))])]


def threshold_sweep(
    model: AssociationModel,
    by_threshold: dict[float, Inputs],
    folder: Path,
    *,
    seeds: tuple[int, ...] = SEEDS,
    test_fraction: float = 0.2,
    device: str = "auto",
    on_progress: OnProgress = silent,
    chosen_on: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """One model per positives threshold (`model`'s settings), every one scored on the same
    held-out pairs (methods/cal.md §8.6): per seed, `test_fraction` of the strictest threshold's
    pairs, removed from every threshold's training pairs, against one negative set that no known
    pair joins; the pair baselines beside it, fit on the same training pairs. `chosen_on` (genes,
    pairs): the validation pairs `model`'s settings were chosen on, never drawn as test pairs."""
    config = model.config
    thresholds = sorted(by_threshold)
    strict = by_threshold[thresholds[-1]]
    for t in thresholds:
        inputs = by_threshold[t]
        if not (np.array_equal(inputs.genes, strict.genes) and np.array_equal(inputs.known, strict.known)):
            raise KgctlError(f"threshold {t:g}: the inputs come from a different view or gene set")
    n = strict.n
    emb, _ = embed(strict.features, np.ones(n, dtype=bool), config.pca_dim)
    unseen = np.zeros(n, dtype=bool)  # an edge split: every gene seen
    excluded = np.zeros(0, dtype=np.int64)
    if chosen_on is not None:
        genes, pairs = chosen_on
        if not np.array_equal(genes, strict.genes):
            raise KgctlError("the sweep's inputs and the run's come from different gene sets")
        excluded = pair_keys(pairs, n)
    per_seed: dict[str, Any] = {}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        test = sweep_test_pairs(strict, excluded, test_fraction, rng)
        neg = negatives(strict, Split("edge", seed, test[:0], test[:0], test, unseen), NEGATIVE_RATIO, rng)
        held = pair_keys(test, n)
        rows: dict[str, Any] = {}
        for t in thresholds:
            inputs = by_threshold[t]
            train_pairs = inputs.positives[~np.isin(pair_keys(inputs.positives, n), held)]
            split = Split("edge", seed, train_pairs, test[:0], test, unseen)
            seeded = config.replace(seed=seed, min_score=t, split="edge")
            out = folder / f"threshold-{t:g}-seed{seed}"
            methods = {model.name: trained(type(model)(seeded), out, emb, train_pairs, device, on_progress)}
            baselines = baseline_scores(SplitData(inputs, split, emb, seeded, {model.name: seeded}))
            methods |= {name: scores for name, (scores, _) in baselines.items()}
            figures = {}
            for method, scores in methods.items():
                pos, negs = scores.pairs(test), scores.pairs(neg)
                figures[method] = {"auc": metrics.auc(pos, negs), "auprc": metrics.auprc(pos, negs)}
            rows[f"{t:g}"] = {"train_pairs": len(train_pairs), "methods": figures}
        per_seed[str(seed)] = {"test": len(test), "negatives": len(neg), "thresholds": rows}
    swept = list(next(iter(per_seed.values()))["thresholds"][f"{thresholds[0]:g}"]["methods"])
    summary = {
        f"{t:g}": {
            m: {
                k: metrics.mean_sd([r["thresholds"][f"{t:g}"]["methods"][m][k] for r in per_seed.values()])
                for k in ("auc", "auprc")
            }
            for m in swept
        }
        for t in thresholds
    }
    return {
        "protocol": f"fixed held-out set: {test_fraction:g} of the pairs passing "
        f"{thresholds[-1]:g}, held out of every threshold's training pairs, none of them a pair "
        "the swept settings were chosen on",
        "validation_pairs_excluded": int(np.isin(pair_keys(strict.positives, n), excluded).sum()),
        "thresholds": thresholds,
        "seeds": list(seeds),
        "positives": {f"{t:g}": len(by_threshold[t].positives) for t in thresholds},
        "view_fingerprint": strict.meta.get("view_fingerprint"),
        "summary": summary,
        "per_seed": per_seed,
    }


def inputs_by_threshold(
    model: AssociationModel, conn: Connection, views: Path, thresholds: tuple[float, ...]
) -> dict[float, Inputs]:
    """The run's inputs again with positives at each score threshold (for a threshold sweep)."""
    if model.config.channel is not None:
        raise KgctlError("a threshold sweep needs positives chosen by score, not a channel filter")
    return {t: type(model)(model.config.replace(min_score=t)).build_inputs(conn, views) for t in thresholds}


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The figures a person reads first: held-out AUC mean ± SD per split and method, those no
    degree prior can earn first (degree-matched negatives; in a node split, both genes unseen)."""
    out: dict[str, Any] = {}
    for kind, block in result["held_out"].items():
        out[kind] = {
            m: {
                "auc_degree_matched": s["degree_matched"]["auc"],
                **({"auc_both_unseen": s["both_unseen"]["auc"]} if "both_unseen" in s else {}),
                "auc": s["random"]["auc"],
                "cb_auc": s["random"]["cb_auc"],
            }
            for m, s in block["summary"].items()
        }
    for t, row in (result.get("threshold_sweep") or {}).get("summary", {}).items():
        out.setdefault("threshold_sweep", {})[t] = {m: {"auc": v["auc"]} for m, v in row.items()}
    ref = result["reference"]
    if ref:
        out["reference_transductive"] = {
            m: {"auc": v["auc"], "cb_auc": v["cb_auc"]["auc"]} for m, v in ref.items() if isinstance(v, dict)
        }
    return out


@register_evaluator
class Pairs(Evaluator[PairsOptions, PairsResult]):
    name = "pairs"
    description = "Link prediction on held-out edge and node splits: every association model and pair baseline."
    options_class = PairsOptions
    result_class = PairsResult

    def evaluate(self, ctx: Context, options: PairsOptions) -> PairsResult:
        run, model, inputs = ctx.run, ctx.model, ctx.inputs
        assert isinstance(model, AssociationModel)
        seeds = comma_list(options.seeds, "seeds", int, "integers")
        splits = comma_list(options.splits, "splits", str, "names")
        thresholds = comma_list(options.thresholds, "thresholds", float, "numbers")
        if not seeds or not splits or set(splits) - {"edge", "node"}:
            raise KgctlError("--seeds needs at least one seed and --splits a subset of edge,node")
        sweep = inputs_by_threshold(model, ctx.conn, run.views, thresholds) if thresholds else None
        return evaluate(
            run,
            model,
            inputs,
            splits=splits,
            seeds=seeds,
            device=ctx.device,
            on_progress=ctx.on_progress,
            thresholds=sweep,
        )

    def headline(self, result: PairsResult) -> dict[str, Any]:
        return headline(result.to_dict())

    def report(self, result: dict[str, Any]) -> list[str]:
        return report(result)


def plot(folder: Path, kind: str, data: dict[str, Any]) -> list[str]:
    """ROC of every method, the run's model's and cosine's score distributions, and score against
    mean degree for the test positives (first seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    split, methods, neg = data["split"], data["methods"], data["negatives"]
    shown = (data["model"], "cosine")
    paths = []
    fig, ax = plt.subplots(figsize=(5, 5))
    for method, scores in methods.items():
        pos, negs = scores.pairs(split.test), scores.pairs(neg)
        fpr, tpr = metrics.roc(pos, negs)
        ax.plot(fpr, tpr, label=f"{method} (AUC {metrics.auc(pos, negs):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.5)
    ax.set(
        xlabel="false positive rate",
        ylabel="true positive rate",
        title=f"held-out {kind} split, seed {split.seed}",
    )
    ax.legend(loc="lower right", fontsize=8)
    paths.append(_save(fig, folder / f"roc-{kind}.png"))
    fig, axes = plt.subplots(1, 2, figsize=(9, 4))
    for ax, method in zip(axes, shown, strict=True):
        ax.hist(methods[method].pairs(neg), bins=50, alpha=0.6, density=True, label="negatives")
        ax.hist(methods[method].pairs(split.test), bins=50, alpha=0.6, density=True, label="test positives")
        ax.set(title=f"{method} ({kind} split)", xlabel="score")
        ax.legend(fontsize=8)
    paths.append(_save(fig, folder / f"scores-{kind}.png"))
    fig, ax = plt.subplots(figsize=(5, 4))
    for method in shown:
        ax.scatter(data["mean_degree"], methods[method].pairs(split.test), s=4, alpha=0.5, label=method)
    ax.set(
        xlabel="mean training degree of the pair",
        ylabel="score",
        title=f"test positives, {kind} split",
    )
    ax.legend(fontsize=8)
    paths.append(_save(fig, folder / f"degree-{kind}.png"))
    return paths


def _save(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return str(path)


def _picked(seed: str, selection: dict[str, Any]) -> str:
    settings = ",".join(f"{k}={v}" for k, v in (selection.get("settings") or {}).items())
    epoch = f" epoch {selection['epoch']}" if "epoch" in selection else ""
    return f"seed {seed}{epoch}" + (f" {settings}" if settings else "")


def _fmt(stat: dict[str, Any] | None) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    return f"{stat['mean']:.3f}" + (f" ± {stat['sd']:.3f}" if stat.get("sd") is not None else "")


def report(r: dict[str, Any]) -> list[str]:
    """The evaluation as text: the reference protocol, each held-out split's table of methods,
    the ambiguous band and the threshold sweep."""
    ref = r["reference"]
    lines = [f"Run {r['run_id']}: seeds {', '.join(map(str, r['seeds']))}"]
    if ref:
        lines.append(f"Reference protocol (transductive, {ref['positives']:,} training pairs, not held out):")
        for m in (r["model"], "cosine"):
            cb = ref[m]["cb_auc"]["auc"]
            lines.append(f"  {m:<8} AUC {ref[m]['auc']:.3f}   CB AUC {cb if cb is None else round(cb, 3)}")
    for kind, block in r["held_out"].items():
        first = next(iter(block["per_seed"].values()))
        counts = first["split"]
        lines.append(f"Held-out {kind} split ({counts['test']:,} test pairs, {counts['unseen_genes']} unseen genes):")
        unseen = "both_unseen" in next(iter(block["summary"].values()))
        if unseen:
            lines.append(f"  ({first['positives']['both_unseen']:,} test pairs with both genes unseen)")
        lines.append(
            f"  {'method':<16}{'AUC deg-matched':>18}"
            + (f"{'AUC both unseen':>18}" if unseen else "")
            + f"{'AUC':>16}{'AUPRC':>16}{'CB AUC':>16}{'ρ(degree)':>16}"
        )
        for m, s in block["summary"].items():
            lines.append(
                f"  {m:<16}{_fmt(s['degree_matched']['auc']):>18}"
                + (f"{_fmt(s['both_unseen']['auc']):>18}" if unseen else "")
                + f"{_fmt(s['random']['auc']):>16}{_fmt(s['random']['auprc']):>16}"
                f"{_fmt(s['random']['cb_auc']):>16}{_fmt(s['spearman_mean_degree']):>16}"
            )
        band = [f"{m} {_fmt(s['ambiguous_auc'])}" for m, s in block["summary"].items() if "ambiguous_auc" in s]
        if band:
            lines.append(
                f"  known pairs below the threshold ({first['ambiguous_pairs']:,}, never negatives) "
                "against negatives, AUC: " + ", ".join(band)
            )
        for method in [m for m, chosen in first["selection"].items() if chosen.get("settings") or "epoch" in chosen]:
            picks = [_picked(seed, r_["selection"].get(method) or {}) for seed, r_ in block["per_seed"].items()]
            lines.append(f"  {method} chosen on validation: " + "; ".join(picks))
        hits = {h: metrics.mean_sd([r_["hubness"][h] for r_ in block["per_seed"].values()]) for h in HUBNESS}
        lines.append(
            f"  {r['model']} per-gene validation hits@10: " + ", ".join(f"{h} {_fmt(v)}" for h, v in hits.items())
        )
    sweep = r.get("threshold_sweep")
    if sweep:
        first = next(iter(sweep["per_seed"].values()))
        lines.append(f"Threshold sweep ({sweep['protocol']}; {first['test']:,} test pairs), AUC:")
        methods = list(next(iter(sweep["summary"].values())))
        lines.append(f"  {'threshold':<12}{'positives':>10}" + "".join(f"{m:>18}" for m in methods))
        for t, row in sweep["summary"].items():
            lines.append(
                f"  {t:<12}{sweep['positives'][t]:>10,}" + "".join(f"{_fmt(row[m]['auc']):>18}" for m in methods)
            )
    if r["plots"]:
        lines.append(f"Plots: {', '.join(Path(p).name for p in r['plots'])} in {Path(r['plots'][0]).parent}")
    return lines
