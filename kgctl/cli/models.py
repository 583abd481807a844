"""`kgctl models`: the registered models with the view each reads, what it writes back and the
evaluators that apply, and the registered evaluators, pair baselines, probe heads, and per kind of
item the label sets, baselines and retrieval tasks, as `pykeen ls` lists PyKEEN's."""

from __future__ import annotations

import dataclasses

import click

from kgctl.cli.output import Result, json_command


def _render(r: Result) -> None:
    for m in r["models"]:
        click.echo(f"{m['name']:<12} {m['description']}")
        click.echo(
            f"{'':<12} reads the {m['view']} view; writes "
            f"{', '.join(v for v in m['writes'].values() if v) or 'nothing'}"
        )
        click.echo(
            f"{'':<12} config {m['config']} ({len(m['config_fields'])} fields); "
            f"evaluators {', '.join(m['evaluators']) or '-'}; "
            f"predict {' '.join('--' + o for o in m['predict_options']) or '-'}"
        )
    click.echo("Evaluators (kgctl evaluate RUN --evaluator NAME):")
    for e in r["evaluators"]:
        click.echo(f"  {e['name']:<12} {e['description']} Options: {' '.join('--' + o for o in e['options']) or '-'}")
    click.echo("Pair baselines (beside every gene-association model): " + ", ".join(r["pair_baselines"]))
    click.echo("Probe heads: " + ", ".join(r["probe_heads"]))
    for kind, parts in r["by_item_kind"].items():
        click.echo(f"Items of kind {kind!r} (models: {', '.join(parts['models']) or '-'}):")
        for what in ("label_sets", "baselines", "retrieval_tasks"):
            click.echo(
                f"  {what.replace('_', ' ') + ':':<17} " + "; ".join(f"{n} ({d})" for n, d in parts[what].items())
            )


@click.command("models")
@json_command(_render)
def models() -> Result:
    """List the registered models, evaluators, baselines, probe label sets and retrieval tasks.

    Each model with the view it reads, what it writes back and the evaluators that apply; per kind of item a model encodes, the probe's label sets and baselines and the retrieval tasks. Built-in models and those of installed packages (entry point group `kgctl.models`).
    """
    from kgctl.graph.writeback import vector_index_name
    from kgctl.models.association.scorers import scorers
    from kgctl.models.evaluators import available as evaluators
    from kgctl.models.probing.heads import HEADS
    from kgctl.models.probing.labels import FEATURES, LABEL_SETS, PREDICTORS
    from kgctl.models.registry import available
    from kgctl.models.retrieval import TASKS

    kinds = sorted({cls.item_kind for cls in available().values() if cls.item_kind})
    return {
        "models": [
            {
                "name": name,
                "description": cls.description,
                "view": cls.view,
                "writes": {
                    **cls.writes.describe(name),
                    "vector_index": vector_index_name(cls.writes.embedding_label, name)
                    if cls.writes.embedding_label
                    else None,
                },
                "module": cls.__module__,
                "config": cls.config_class.__name__,
                "config_fields": [f.name for f in dataclasses.fields(cls.config_class)],
                "evaluators": list(cls.evaluators),
                "predict_options": [o.name for o in cls.predict_options],
            }
            for name, cls in available().items()
        ],
        "evaluators": [
            {"name": name, "description": cls.description, "options": [o.name for o in cls.options()]}
            for name, cls in evaluators().items()
        ],
        "pair_baselines": list(scorers()),
        "probe_heads": list(HEADS),
        "by_item_kind": {
            kind: {
                "models": [n for n, cls in available().items() if cls.item_kind == kind],
                "label_sets": {s.name: s.description for s in LABEL_SETS.of_kind(kind)},
                "baselines": {b.name: b.description for b in FEATURES.of_kind(kind)}
                | {p.name: p.description for p in PREDICTORS.of_kind(kind)},
                "retrieval_tasks": {t.name: t.description for t in TASKS.of_kind(kind)},
            }
            for kind in kinds
        },
    }
