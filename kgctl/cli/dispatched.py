"""`kgctl evaluate RUN` and `kgctl predict RUN`, dispatched on the run's model (and for evaluate,
on the registered evaluator). Each takes the options its evaluator or model declares; an option of
another one is refused, never silently ignored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from kgctl.cli.options import add_options, refuse, union
from kgctl.cli.output import DEVICE, Result, connected, json_command, progress_bar
from kgctl.core.options import Option
from kgctl.core.settings import load_settings
from kgctl.models.base import Model


def _own(given: dict[str, Any], declared: tuple[Option, ...], whose: str) -> dict[str, Any]:
    """The given options among `declared`; any other given option is refused."""
    own = {o.key for o in declared}
    names = ", ".join(f"--{o.name}" for o in declared) or "none of its own"
    refuse([k for k in given if k not in own], f"{whose} takes {names}")
    return {k: v for k, v in given.items() if k in own and v is not None}


def _model(run_id: str) -> type[Model]:
    from kgctl.models import runs

    _, model = runs.trained_run(load_settings().paths.data_dir, run_id)
    return type(model)


def _dispatched(
    which: str,
    summary: str,
    declared: dict[str, tuple[Option, ...]],
    body: Callable[..., Result],
    render: Callable[[Result], None],
    *extra: Any,
) -> click.Command:
    """`kgctl <which> RUN` with the options of every model or evaluator, --device and `extra`."""
    command = add_options(json_command(render)(body), union(declared.values()), with_default=False)
    for decorator in reversed((*extra, click.option("--device", type=DEVICE, default="auto", show_default=True))):
        command = decorator(command)
    command = click.argument("run_id", metavar="RUN")(command)
    per = "; ".join(f"{n}: {', '.join('--' + o.name for o in opts) or 'none'}" for n, opts in declared.items())
    return click.command(which, help=f"{summary} {per}.")(command)


def _render_evaluate(r: Result) -> None:
    from kgctl.models.evaluators import evaluator_class

    for line in evaluator_class(r["evaluator"])().report(r):
        click.echo(line)


def evaluate_command() -> click.Command:
    """`kgctl evaluate RUN [--evaluator NAME]`, with the options of every registered evaluator."""
    from kgctl.models.evaluators import available as evaluators
    from kgctl.models.registry import available as models

    found = evaluators()
    per_model = "; ".join(f"{n}: {', '.join(m.evaluators)}" for n, m in models().items())

    def run(run_id: str, device: str, evaluator: str | None, **given: Any) -> Result:
        from kgctl.models import runs

        name = evaluator or (_model(run_id).evaluators or ("",))[0]
        cls = found.get(name)
        own = _own(given, cls.options() if cls else (), f"evaluator {name}")  # errors before connecting
        with connected() as (settings, conn), progress_bar() as on_progress:
            return runs.evaluate(
                conn, settings.paths.data_dir, run_id, own, evaluator=name, device=device, on_progress=on_progress
            )

    choose = click.option(
        "--evaluator",
        type=click.Choice(list(found)),
        help=f"The registered evaluator to run (default: the model's first; {per_model}).",
    )
    return _dispatched(
        "evaluate",
        (
            "Evaluate a trained run with a registered evaluator: held-out figures beside baselines.\n\n"
            "Writes evaluation.json (or the evaluator's own file) and plots into the run folder, and the "
            "headline onto the run and its ModelRun. The options are those of the evaluator:"
        ),
        {n: e.options() for n, e in found.items()},
        run,
        _render_evaluate,
        choose,
    )


def _render_predict(r: Result) -> None:
    facts = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in r["prediction"].items())
    click.echo(f"Run {r['run_id']} ({r['model']}): {facts}" + (f"; table in {r['file']}" if r["file"] else ""))
    w = r.get("written")
    if w:
        rels, emb = w.get("relationships"), w.get("embeddings")
        if rels:
            click.echo(
                f"  wrote {rels['count']:,} ({rels['start_label']})-[:{rels['type']}]->({rels['end_label']}) edges"
            )
        if emb:
            click.echo(
                f"  wrote {emb['count']:,} {emb['label']}.{emb['property']} vectors "
                f"(vector index {emb['vector_index']})"
            )
    if r["highlights"]:  # the rows the model puts first (CAL: its best novel pairs)
        click.echo("  " + "\t".join(r["highlights"][0]))
    for row in r["highlights"]:
        click.echo("  " + "\t".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()))


def predict_command() -> click.Command:
    """`kgctl predict RUN`, with the options of every registered model."""
    from kgctl.models.registry import available

    models = available()

    def run(run_id: str, device: str, write_back: bool, allow_split: bool, **given: Any) -> Result:
        from kgctl.models import runs

        model = _model(run_id)
        own = _own(given, model.predict_options, f"predict of a {model.name} run")
        if not write_back:
            return runs.predict(None, load_settings().paths.data_dir, run_id, own, device=device)
        with connected() as (settings, conn):
            return runs.predict(
                conn, settings.paths.data_dir, run_id, own, device=device, write_back=True, allow_split=allow_split
            )

    write_back = click.option(
        "--write-back",
        is_flag=True,
        help="Write what the run's model declares (scored edges, embeddings "
        "with a vector index) to Neo4j, replacing the run's earlier write-back.",
    )
    allow_split = click.option(
        "--allow-split",
        is_flag=True,
        help="Write back a run trained on a split (without its held-out "
        "pairs); by default only a final model on all pairs is written.",
    )
    return _dispatched(
        "predict",
        (
            "Score with a trained run and keep the predictions in the run folder.\n\n--write-back "
            "replaces the run's edges and embeddings in the graph (re-running is idempotent); "
            "`kgctl runs delete RUN` removes them. The options are those of the run's model:"
        ),
        {n: m.predict_options for n, m in models.items()},
        run,
        _render_predict,
        write_back,
        allow_split,
    )
