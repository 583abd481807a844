"""`kgctl evaluate RUN`: the reference protocol (to compare with the paper) and the honest one
beside it (methods/cal.md §6–§8). Honest: held-out edge and node splits, a model trained per
split and seed, negatives that exclude every known pair (composition-matched in the node split)
plus degree-matched negatives, and the cosine, degree-product, bilinear and random-walk baselines
on the same pairs; mean ± SD over seeds; plots in the run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from kgctl.core.errors import KgctlError
from kgctl.core.progress import OnProgress, silent
from kgctl.models import metrics
from kgctl.models.baselines import cosine_scores, degree_product, degrees, walk_embedding
from kgctl.models.cal.config import HUBNESS, CALConfig
from kgctl.models.cal.data import (
    NEGATIVE_RATIO,
    Inputs,
    Split,
    ambiguous_pairs,
    degree_matched_negatives,
    embed,
    make_split,
    negatives,
    pair_keys,
    reference_negatives,
    validation_negatives,
)
from kgctl.models.cal.model import CALModel, encode, pair_scores
from kgctl.models.cal.predict import cal_rows, partner_hits
from kgctl.models.cal.task import Bilinear, BilinearTask, CALTask, cal_task
from kgctl.models.config import ModelConfig
from kgctl.models.runs import Run
from kgctl.models.selection import final_settings, fit_or_load
from kgctl.models.trainer import MODEL, fit, load_module

SEEDS = (42, 123, 456)
METHODS = ("cal", "graphsage", "cosine", "degree_product", "bilinear", "walk_embedding")
SWEPT = tuple(m for m in METHODS if m != "graphsage")  # the threshold sweep trains CAL only


class Scorer:
    """Every method's score for any pair under one split: CAL and GraphSAGE (models chosen on the
    split's validation pairs), input cosine, and degree product, bilinear form and walk-embedding
    cosine (all three fit on the training pairs only)."""

    def __init__(
        self,
        inputs: Inputs,
        split: Split,
        emb: np.ndarray,
        model: CALModel,
        config: CALConfig,
        graphsage: np.ndarray | None = None,
    ) -> None:
        self.emb = emb
        self.transform = config.transform
        self.fx = encode(model, torch.from_numpy(emb))
        self.graphsage = graphsage
        self.degree = degrees(inputs.n, split.train)
        self.bilinear = fit_bilinear(emb, split.train, config.replace(seed=split.seed))
        self.walk = walk_embedding(inputs.n, split.train, seed=split.seed)

    def __call__(self, method: str, pairs: np.ndarray) -> np.ndarray:
        if method == "cal":
            x = torch.from_numpy(self.emb)
            return pair_scores(self.fx, x, torch.from_numpy(pairs), self.transform).numpy()
        if method == "graphsage":
            assert self.graphsage is not None, "GraphSAGE was not trained for this split"
            return np.asarray(np.einsum("ij,ij->i", self.graphsage[pairs[:, 0]], self.graphsage[pairs[:, 1]]))
        if method == "cosine":
            return cosine_scores(self.emb, pairs)
        if method == "degree_product":
            return degree_product(self.degree, pairs)
        if method == "bilinear":
            return bilinear_scores(self.emb, self.bilinear, pairs)
        return cosine_scores(self.walk, pairs)


def fit_bilinear(emb: np.ndarray, pairs: np.ndarray, config: CALConfig) -> np.ndarray:
    """The bilinear baseline's symmetric W after training on `pairs` with CAL's loss and
    schedule (methods/cal.md §8.5), on the shared trainer, in memory."""
    module = fit(BilinearTask(config, emb, pairs), None, device="cpu").module
    assert isinstance(module, Bilinear)
    return module.weight().detach().numpy()


def bilinear_scores(emb: np.ndarray, w: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """ẽ_Aᵀ W ẽ_B for each pair, on the unit-normalised embedding."""
    unit = torch.nn.functional.normalize(torch.from_numpy(emb).float(), dim=1, eps=1e-8).numpy()
    return np.asarray(np.einsum("ij,jk,ik->i", unit[pairs[:, 0]], w, unit[pairs[:, 1]]))


def trained(
    folder: Path, config: CALConfig, emb: np.ndarray, pairs: np.ndarray, device: str, on_progress: OnProgress
) -> CALModel:
    """A CAL model trained on `pairs` (no validation) in `folder`, unless it is already there."""
    if not (folder / MODEL).exists():
        fit(CALTask(config, emb, pairs), folder, device=device, on_progress=on_progress)
    return cal_model(folder)


def cal_model(folder: Path) -> CALModel:
    """The trained CAL model in `folder`."""
    model = load_module(folder, CALModel)
    assert isinstance(model, CALModel)
    return model


def split_model(
    run: Run, inputs: Inputs, config: CALConfig, split: Split, device: str, on_progress: OnProgress
) -> tuple[np.ndarray, CALModel, CALConfig, dict[str, Any]]:
    """The embedding, a trained model, its chosen config and its selection record for (split,
    seed): the run's own model when it was trained on exactly that split, else one chosen on the
    split's validation pairs and trained now under `evaluation/`."""
    emb, _ = embed(inputs.features, split.fit, config.pca_dim)
    if run.model == "cal" and config.split == split.kind and config.seed == split.seed:
        return emb, cal_model(run.dir), config, run.record.get("selection") or {}
    folder = run.dir / "evaluation" / f"{split.kind}-seed{split.seed}"
    seeded = config.replace(seed=split.seed, split=split.kind)

    def make_task(c: ModelConfig) -> CALTask:
        assert isinstance(c, CALConfig)
        return cal_task(inputs, c)

    chosen, selection = fit_or_load(seeded, make_task, folder, device=device, on_progress=on_progress)
    assert isinstance(chosen, CALConfig)
    return emb, cal_model(folder), chosen, selection


def graphsage_vectors(
    run: Run, inputs: Inputs, config: CALConfig, split: Split, device: str, on_progress: OnProgress
) -> tuple[np.ndarray, dict[str, Any]]:
    """GraphSAGE's node embeddings over the split's training graph and its selection record: the
    run's own model when it is a GraphSAGE run on exactly that split, else one trained now."""
    from kgctl.models.graphsage import GraphSAGEModel
    from kgctl.models.graphsage.task import (
        GraphSAGE,
        GraphSAGEConfig,
        GraphSAGETask,
        graphsage_task,
    )

    mine = {**run.config, "seed": split.seed, "split": split.kind}
    own = run.model == "graphsage" and run.config["split"] == split.kind and run.config["seed"] == split.seed
    folder = run.dir if own else run.dir / "evaluation" / f"graphsage-{split.kind}-seed{split.seed}"
    gconfig = (
        GraphSAGEConfig(**mine)
        if run.model == "graphsage"
        else GraphSAGEConfig(**{**config.shared(), "seed": split.seed, "split": split.kind})
    )
    selection = run.record.get("selection") or {}
    if not own:

        def make_task(c: ModelConfig) -> GraphSAGETask:
            assert isinstance(c, GraphSAGEConfig)
            return graphsage_task(inputs, c)

        _, selection = fit_or_load(gconfig, make_task, folder, device=device, on_progress=on_progress)
    vectors = GraphSAGEModel(gconfig).node_vectors(load_module(folder, GraphSAGE), inputs, "cpu")
    return vectors.numpy(), selection


def honest(
    run: Run, inputs: Inputs, config: CALConfig, kind: str, seed: int, device: str, on_progress: OnProgress
) -> dict[str, Any]:
    """Held-out figures of every method for one split and seed."""
    split = make_split(inputs, config, kind, seed)
    emb, model, chosen, selection = split_model(run, inputs, config, split, device, on_progress)
    sage, sage_selection = graphsage_vectors(run, inputs, config, split, device, on_progress)
    score = Scorer(inputs, split, emb, model, chosen, sage)
    rng = np.random.default_rng(seed)
    negative_sets = {
        "random": negatives(inputs, split, NEGATIVE_RATIO, rng),
        "degree_matched": degree_matched_negatives(inputs, split, score.degree, NEGATIVE_RATIO, rng),
    }
    pos_cos = cosine_scores(emb, split.test)
    neg_cos = {name: cosine_scores(emb, neg) for name, neg in negative_sets.items()}
    mean_degree = (score.degree[split.test[:, 0]] + score.degree[split.test[:, 1]]) / 2
    result: dict[str, Any] = {
        "split": split.counts(),
        "negatives": {k: len(v) for k, v in negative_sets.items()},
        "selection": {"cal": selection, "graphsage": sage_selection},
        "methods": {},
    }
    val_neg = validation_negatives(inputs, split, NEGATIVE_RATIO, rng) if len(split.validation) else None
    ambiguous = ambiguous_pairs(inputs, split)
    result["ambiguous_pairs"] = len(ambiguous)
    rows = cal_rows(score.fx, torch.from_numpy(emb), chosen.transform)
    result["hubness"] = {h: partner_hits(rows, inputs.n, split.validation, split.train, h) for h in HUBNESS}
    for method in METHODS:
        pos = score(method, split.test)
        neg_scores = {name: score(method, neg) for name, neg in negative_sets.items()}
        figures: dict[str, Any] = {
            name: metrics.ranking(pos, neg_scores[name], pos_cos, neg_cos[name]) for name in negative_sets
        }
        figures["spearman_mean_degree"] = metrics.spearman(mean_degree, pos)
        if val_neg is not None:
            figures["validation_auc"] = metrics.auc(score(method, split.validation), score(method, val_neg))
        if len(ambiguous) >= metrics.CB_MIN:  # below-threshold known pairs: never negatives
            figures["ambiguous_auc"] = metrics.auc(score(method, ambiguous), neg_scores["random"])
        result["methods"][method] = figures
    result["plot_data"] = {
        "split": split,
        "score": score,
        "negatives": negative_sets["random"],
        "mean_degree": mean_degree,
    }
    return result


def reference(run: Run, inputs: Inputs, config: CALConfig) -> dict[str, Any]:
    """The paper's protocol on the run's own model: its training pairs against uniform negatives
    that exclude only the positives; AUC and cross-boundary AUC (|cos| < 0.2). Transductive:
    a reproduction check, not a held-out result."""
    split = make_split(inputs, config, config.split, config.seed)
    emb, _ = embed(inputs.features, split.fit, config.pca_dim)
    fx = encode(cal_model(run.dir), torch.from_numpy(emb))
    neg = reference_negatives(inputs, inputs.positives)
    out: dict[str, Any] = {
        "protocol": "reference (transductive: training pairs; negatives exclude only positives)",
        "positives": len(split.train),
        "negatives": len(neg),
    }
    pos_cos, neg_cos = cosine_scores(emb, split.train), cosine_scores(emb, neg)
    x = torch.from_numpy(emb)
    for method, pos, negs in (
        (
            "cal",
            pair_scores(fx, x, torch.from_numpy(split.train), config.transform).numpy(),
            pair_scores(fx, x, torch.from_numpy(neg), config.transform).numpy(),
        ),
        ("cosine", pos_cos, neg_cos),
    ):
        out[method] = {
            "auc": metrics.auc(pos, negs),
            "cb_auc": metrics.cross_boundary_auc(pos, negs, pos_cos, neg_cos, 0.2),
        }
    return out


def summarise(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± SD over seeds of every scalar figure, per method and negative set."""
    summary: dict[str, Any] = {}
    for method in METHODS:
        rows = [r["methods"][method] for r in per_seed]
        entry: dict[str, Any] = {}
        for neg in ("random", "degree_matched"):
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
    inputs: Inputs,
    config: CALConfig,
    *,
    splits: tuple[str, ...] = ("edge", "node"),
    seeds: tuple[int, ...] = SEEDS,
    device: str = "auto",
    on_progress: OnProgress = silent,
    thresholds: dict[float, Inputs] | None = None,
) -> dict[str, Any]:
    """Both protocols (the reference one for a CAL run only), and a threshold sweep when given
    inputs per threshold; the plots go into the run folder. `config`: CAL's settings."""
    result: dict[str, Any] = {
        "seeds": list(seeds),
        "negative_ratio": NEGATIVE_RATIO,
        "reference": reference(run, inputs, config) if run.model == "cal" else None,
        "held_out": {},
    }
    plots: list[str] = []
    for kind in splits:
        per_seed = [honest(run, inputs, config, kind, seed, device, on_progress) for seed in seeds]
        plots += plot(run.dir / "plots", kind, per_seed[0].pop("plot_data"))
        for r in per_seed[1:]:
            r.pop("plot_data")
        result["held_out"][kind] = {
            "summary": summarise(per_seed),
            "per_seed": dict(zip(map(str, seeds), per_seed, strict=True)),
        }
    if thresholds:
        final = CALConfig(**final_settings(config, run.record.get("selection") if run.model == "cal" else None))
        result["threshold_sweep"] = threshold_sweep(
            thresholds, final, run.dir / "evaluation", seeds=seeds, device=device, on_progress=on_progress
        )
    result["plots"] = plots
    return result


def threshold_sweep(
    by_threshold: dict[float, Inputs],
    config: CALConfig,
    folder: Path,
    *,
    seeds: tuple[int, ...] = SEEDS,
    test_fraction: float = 0.2,
    device: str = "auto",
    on_progress: OnProgress = silent,
) -> dict[str, Any]:
    """One model per positives threshold, every one scored on the same held-out pairs
    (methods/cal.md §8.6): per seed, `test_fraction` of the strictest threshold's pairs, removed
    from every threshold's training pairs, against one negative set that no known pair joins."""
    thresholds = sorted(by_threshold)
    strict = by_threshold[thresholds[-1]]
    for t in thresholds:
        inputs = by_threshold[t]
        if not (np.array_equal(inputs.genes, strict.genes) and np.array_equal(inputs.known, strict.known)):
            raise KgctlError(f"threshold {t:g}: the inputs come from a different view or gene set")
    n = strict.n
    emb, _ = embed(strict.features, np.ones(n, dtype=bool), config.pca_dim)
    unseen = np.zeros(n, dtype=bool)  # an edge split: every gene seen
    per_seed: dict[str, Any] = {}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        pos = strict.positives
        test = pos[np.sort(rng.permutation(len(pos))[: round(test_fraction * len(pos))])]
        neg = negatives(strict, Split("edge", seed, test[:0], test[:0], test, unseen), NEGATIVE_RATIO, rng)
        held = pair_keys(test, n)
        rows: dict[str, Any] = {}
        for t in thresholds:
            inputs = by_threshold[t]
            train_pairs = inputs.positives[~np.isin(pair_keys(inputs.positives, n), held)]
            split = Split("edge", seed, train_pairs, test[:0], test, unseen)
            seeded = config.replace(seed=seed, min_score=t, split="edge")
            out = folder / f"threshold-{t:g}-seed{seed}"
            model = trained(out, seeded, emb, train_pairs, device, on_progress)
            score = Scorer(inputs, split, emb, model, seeded)
            figures = {}
            for method in SWEPT:
                pos, negs = score(method, test), score(method, neg)
                figures[method] = {"auc": metrics.auc(pos, negs), "auprc": metrics.auprc(pos, negs)}
            rows[f"{t:g}"] = {"train_pairs": len(train_pairs), "methods": figures}
        per_seed[str(seed)] = {"test": len(test), "negatives": len(neg), "thresholds": rows}
    summary = {
        f"{t:g}": {
            m: {
                k: metrics.mean_sd([r["thresholds"][f"{t:g}"]["methods"][m][k] for r in per_seed.values()])
                for k in ("auc", "auprc")
            }
            for m in SWEPT
        }
        for t in thresholds
    }
    return {
        "protocol": f"fixed held-out set: {test_fraction:g} of the pairs passing "
        f"{thresholds[-1]:g}, held out of every threshold's training pairs",
        "thresholds": thresholds,
        "seeds": list(seeds),
        "positives": {f"{t:g}": len(by_threshold[t].positives) for t in thresholds},
        "view_fingerprint": strict.meta.get("view_fingerprint"),
        "summary": summary,
        "per_seed": per_seed,
    }


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The figures a person reads first: held-out AUC mean ± SD per split and method."""
    out: dict[str, Any] = {}
    for kind, block in result["held_out"].items():
        out[kind] = {
            m: {
                "auc": block["summary"][m]["random"]["auc"],
                "auc_degree_matched": block["summary"][m]["degree_matched"]["auc"],
                "cb_auc": block["summary"][m]["random"]["cb_auc"],
            }
            for m in METHODS
        }
    for t, row in result.get("threshold_sweep", {}).get("summary", {}).items():
        out.setdefault("threshold_sweep", {})[t] = {m: {"auc": row[m]["auc"]} for m in SWEPT}
    ref = result["reference"]
    if ref:
        out["reference_transductive"] = {
            m: {"auc": ref[m]["auc"], "cb_auc": ref[m]["cb_auc"]["auc"]} for m in ("cal", "cosine")
        }
    return out


def plot(folder: Path, kind: str, data: dict[str, Any]) -> list[str]:
    """ROC of every method, CAL and cosine score distributions, and score against mean degree
    for the test positives (first seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    split, score, neg = data["split"], data["score"], data["negatives"]
    paths = []
    fig, ax = plt.subplots(figsize=(5, 5))
    for method in METHODS:
        pos, negs = score(method, split.test), score(method, neg)
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
    for ax, method in zip(axes, ("cal", "cosine"), strict=True):
        ax.hist(score(method, neg), bins=50, alpha=0.6, density=True, label="negatives")
        ax.hist(score(method, split.test), bins=50, alpha=0.6, density=True, label="test positives")
        ax.set(title=f"{method} ({kind} split)", xlabel="score")
        ax.legend(fontsize=8)
    paths.append(_save(fig, folder / f"scores-{kind}.png"))
    fig, ax = plt.subplots(figsize=(5, 4))
    for method in ("cal", "cosine"):
        ax.scatter(data["mean_degree"], score(method, split.test), s=4, alpha=0.5, label=method)
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
    return f"seed {seed} epoch {selection.get('epoch')}" + (f" {settings}" if settings else "")


def _fmt(stat: dict[str, Any] | None) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    return f"{stat['mean']:.3f}" + (f" ± {stat['sd']:.3f}" if stat.get("sd") is not None else "")


def report(r: dict[str, Any]) -> list[str]:
    """The evaluation as text: the reference protocol, each held-out split's table of methods,
    the ambiguous band and the threshold sweep (or the evidence check)."""
    if r.get("kind") == "evidence":
        from kgctl.models.cal.evidence import evidence_report

        return evidence_report(r)
    ref = r["reference"]
    lines = [f"Run {r['run_id']}: seeds {', '.join(map(str, r['seeds']))}"]
    if ref:
        lines.append(f"Reference protocol (transductive, {ref['positives']:,} training pairs, not held out):")
        for m in ("cal", "cosine"):
            cb = ref[m]["cb_auc"]["auc"]
            lines.append(f"  {m:<8} AUC {ref[m]['auc']:.3f}   CB AUC {cb if cb is None else round(cb, 3)}")
    for kind, block in r["held_out"].items():
        first = next(iter(block["per_seed"].values()))
        counts = first["split"]
        lines.append(f"Held-out {kind} split ({counts['test']:,} test pairs, {counts['unseen_genes']} unseen genes):")
        lines.append(f"  {'method':<16}{'AUC':>16}{'AUPRC':>16}{'CB AUC':>16}{'AUC deg-matched':>18}{'ρ(degree)':>16}")
        for m, s in block["summary"].items():
            lines.append(
                f"  {m:<16}{_fmt(s['random']['auc']):>16}{_fmt(s['random']['auprc']):>16}"
                f"{_fmt(s['random']['cb_auc']):>16}{_fmt(s['degree_matched']['auc']):>18}"
                f"{_fmt(s['spearman_mean_degree']):>16}"
            )
        band = [f"{m} {_fmt(s['ambiguous_auc'])}" for m, s in block["summary"].items() if "ambiguous_auc" in s]
        if band:
            lines.append(
                f"  known pairs below the threshold ({first['ambiguous_pairs']:,}, never negatives) "
                "against negatives, AUC: " + ", ".join(band)
            )
        for method in ("cal", "graphsage"):
            picks = [_picked(seed, r_["selection"].get(method) or {}) for seed, r_ in block["per_seed"].items()]
            lines.append(f"  {method} chosen on validation: " + "; ".join(picks))
        hits = {h: metrics.mean_sd([r_["hubness"][h] for r_ in block["per_seed"].values()]) for h in HUBNESS}
        lines.append("  CAL per-gene validation hits@10: " + ", ".join(f"{h} {_fmt(v)}" for h, v in hits.items()))
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
