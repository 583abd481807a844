"""`kgctl evaluate RUN` and `kgctl predict RUN`, dispatched on the run's model. Each takes the
options its models declare; an option of another model is refused, never silently ignored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from kgctl.cli.options import add_options, refuse, union
from kgctl.cli.output import DEVICE, Result, connected, json_command, progress_bar
from kgctl.core.settings import load_settings
from kgctl.models.base import Model


def _own(run_id: str, given: dict[str, Any], which: str) -> dict[str, Any]:
    """The given options of the trained run's model; any other given option is refused."""
    from kgctl.models import runs

    _, model = runs.trained_run(load_settings().paths.data_dir, run_id)
    cls = type(model)
    declared = cls.evaluate_options if which == "evaluate" else cls.predict_options
    own = {o.key for o in declared}
    names = ", ".join(f"--{o.name}" for o in declared) or "none of its own"
    refuse([k for k in given if k not in own], f"{which} of a {cls.name} run takes {names}")
    return {k: v for k, v in given.items() if k in own and v is not None}


def _dispatched(
    which: str,
    summary: str,
    models: dict[str, type[Model]],
    body: Callable[..., Result],
    render: Callable[[Result], None],
    *extra: Any,
) -> click.Command:
    """`kgctl <which> RUN` with every model's `<which>_options`, --device and `extra` options."""
    declared = {n: getattr(m, f"{which}_options") for n, m in models.items()}
    command = add_options(json_command(render)(body), union(declared.values()), with_default=False)
    for decorator in reversed((*extra, click.option("--device", type=DEVICE, default="auto", show_default=True))):
        command = decorator(command)
    command = click.argument("run_id", metavar="RUN")(command)
    per_model = "; ".join(f"{n}: {', '.join('--' + o.name for o in opts) or 'none'}" for n, opts in declared.items())
    return click.command(which, help=f"{summary} The options are those of the run's model: {per_model}.")(command)


def _render_evaluate(r: Result) -> None:
    from kgctl.models.registry import model_class

    for line in model_class(r["model"]).report(r):
        click.echo(line)


def evaluate_command() -> click.Command:
    """`kgctl evaluate RUN`, with the options of every registered model."""
    from kgctl.models.registry import available

    models = available()

    def run(run_id: str, device: str, **given: Any) -> Result:
        from kgctl.models import runs

        own = _own(run_id, given, "evaluate")  # errors before connecting
        with connected() as (settings, conn), progress_bar() as on_progress:
            return runs.evaluate(conn, settings.paths.data_dir, run_id, own, device=device, on_progress=on_progress)

    return _dispatched(
        "evaluate",
        (
            "Evaluate a trained run with its model's protocol: held-out splits beside baselines.\n\n"
            "Writes evaluation.json (and plots) into the run folder and the headline onto the run "
            "and its ModelRun."
        ),
        models,
        run,
        _render_evaluate,
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

        own = _own(run_id, given, "predict")
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
            "`kgctl runs delete RUN` removes them."
        ),
        models,
        run,
        _render_predict,
        write_back,
        allow_split,
    )
