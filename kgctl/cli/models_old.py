"""`kgctl train`, `evaluate`, `predict`, `runs` and `query`: models trained on views of the graph,
their evaluation, predictions written back, and named Cypher queries over them."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.table import Table

from kgctl.cli.output import Result, connect_with_spinner, json_command, spinner
from kgctl.core.errors import KgctlError
from kgctl.core.settings import Settings, load_settings
from kgctl.graph.connection import Connection

DEVICE = click.Choice(["auto", "cpu", "cuda"])
T = TypeVar("T")


@contextmanager
def graph() -> Iterator[tuple[Settings, Connection]]:
    settings = load_settings()
    with connect_with_spinner(settings) as conn:
        yield settings, conn


# ---- kgctl train ------------------------------------------------------------------------------
def _render_train(r: Result) -> None:
    t = r["metrics"]["training"]
    procs = f" × {t['nproc']} processes" if t["nproc"] > 1 else ""
    click.echo(
        f"Run {r['id']}: {r['status']}, {t['epochs_done']} epochs on {t['device']}{procs} "
        f"in {t['seconds']:.1f} s ({t['seconds_per_epoch']} s/epoch)"
    )
    click.echo(
        f"  loss {t['final_loss']:.4f}, in-batch accuracy {t['final_accuracy']:.3f}, alpha {t['alpha']:.3f}"
    )
    d = r["data"]
    click.echo(
        f"  {d['genes']:,} genes, {d['positive_pairs']:,} positive pairs ({d['rule']}), split {d['split']}"
    )
    click.echo(f"  next: kgctl evaluate {r['id']}   kgctl predict {r['id']} --write-back")


@click.group("train")
def train_group() -> None:
    """Train a model on a view exported from the graph."""


@train_group.command("cal")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="TOML file with CAL settings (top level or a [cal] table).",
)
@click.option("--dataset", help="Dataset id of the gene features (overrides the config).")
@click.option("--epochs", type=click.IntRange(1), help="Epochs (overrides the config).")
@click.option("--seed", type=int, help="Model and split seed (overrides the config).")
@click.option(
    "--split",
    type=click.Choice(["edge", "node", "none"]),
    help="Train on an edge split, a node split or all positives.",
)
@click.option("--device", type=DEVICE, default="auto", show_default=True)
@click.option(
    "--nproc",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="DistributedDataParallel processes (gloo on CPU, NCCL on GPUs).",
)
@click.option(
    "--resume", "resume_id", metavar="RUN", help="Continue an interrupted run from its checkpoint."
)
@click.option(
    "--stop-after",
    type=click.IntRange(1),
    help="Stop after this many epochs in all (resume later).",
)
@json_command(_render_train)
def train_cal(config_file: Path | None, dataset: str | None, epochs: int | None, seed: int | None,
              split: str | None, device: str, nproc: int, resume_id: str | None,
              stop_after: int | None) -> Result:  # fmt: skip
    """Train CAL: gene features from a Dataset, positives from INTERACTS_WITH or CO_ESSENTIAL.

    Exports the gene-association view, reduces the features by exact PCA fit on training genes,
    trains f(x) = normalize(α·x + (1−α)·g(x)) with InfoNCE, checkpoints, and records a ModelRun.
    """
    from kgctl.models.cal import load_config, resume_run, train_run

    with graph() as (settings, conn):
        if resume_id:
            run = resume_run(conn, settings.paths.data_dir, resume_id, device=device, nproc=nproc)
        else:
            config = load_config(
                config_file, dataset=dataset, epochs=epochs, seed=seed, split=split
            )
            run = train_run(conn, settings.paths.data_dir, config, device=device, nproc=nproc,
                            stop_after=stop_after)  # fmt: skip
    return {**run.record, "dir": str(run.dir)}


# ---- kgctl evaluate ---------------------------------------------------------------------------
def _fmt(stat: dict[str, Any] | None) -> str:
    if not stat or stat.get("mean") is None:
        return "–"
    return f"{stat['mean']:.3f}" + (f" ± {stat['sd']:.3f}" if stat.get("sd") is not None else "")


def _comma_list(text: str, option: str, cast: Callable[[str], T], what: str) -> tuple[T, ...]:
    try:
        return tuple(cast(v.strip()) for v in text.split(",") if v.strip())
    except ValueError:
        raise KgctlError(f"{option}: {text!r} is not a comma-separated list of {what}") from None


def _render_evaluate(r: Result) -> None:
    ref = r["reference"]
    click.echo(f"Run {r['run_id']}: seeds {', '.join(map(str, r['seeds']))}")
    click.echo(
        f"Reference protocol (transductive, {ref['positives']:,} training pairs, not held out):"
    )
    for m in ("cal", "cosine"):
        cb = ref[m]["cb_auc"]["auc"]
        click.echo(
            f"  {m:<8} AUC {ref[m]['auc']:.3f}   CB AUC {cb if cb is None else round(cb, 3)}"
        )
    for kind, block in r["held_out"].items():
        counts = next(iter(block["per_seed"].values()))["split"]
        click.echo(
            f"Held-out {kind} split ({counts['test']:,} test pairs, {counts['unseen_genes']} unseen genes):"
        )
        click.echo(
            f"  {'method':<16}{'AUC':>16}{'AUPRC':>16}{'CB AUC':>16}{'AUC deg-matched':>18}{'ρ(degree)':>16}"
        )
        for m, s in block["summary"].items():
            click.echo(f"  {m:<16}{_fmt(s['random']['auc']):>16}{_fmt(s['random']['auprc']):>16}"
                       f"{_fmt(s['random']['cb_auc']):>16}{_fmt(s['degree_matched']['auc']):>18}"
                       f"{_fmt(s['spearman_mean_degree']):>16}")  # fmt: skip
        band = [
            f"{m} {_fmt(s['ambiguous_auc'])}"
            for m, s in block["summary"].items()
            if "ambiguous_auc" in s
        ]
        if band:
            n = next(iter(block["per_seed"].values()))["ambiguous_pairs"]
            click.echo(f"  known pairs below the threshold ({n:,}, never negatives) against negatives, AUC: "
                       + ", ".join(band))  # fmt: skip
    sweep = r.get("threshold_sweep")
    if sweep:
        first = next(iter(sweep["per_seed"].values()))
        click.echo(f"Threshold sweep ({sweep['protocol']}; {first['test']:,} test pairs), AUC:")
        methods = list(next(iter(sweep["summary"].values())))
        click.echo(f"  {'threshold':<12}{'positives':>10}" + "".join(f"{m:>18}" for m in methods))
        for t, row in sweep["summary"].items():
            click.echo(f"  {t:<12}{sweep['positives'][t]:>10,}"
                       + "".join(f"{_fmt(row[m]['auc']):>18}" for m in methods))  # fmt: skip
    if r["plots"]:
        click.echo(
            f"Plots: {', '.join(Path(p).name for p in r['plots'])} in {Path(r['plots'][0]).parent}"
        )


@click.command("evaluate")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--seeds",
    default="42,123,456",
    show_default=True,
    help="Comma-separated seeds (model and split).",
)
@click.option(
    "--splits", default="edge,node", show_default=True, help="Held-out splits to evaluate."
)
@click.option(
    "--thresholds",
    default="",
    metavar="T1,T2,…",
    help="Also train one model per positives score threshold (e.g. 400,700,900) and score them "
    "all on one fixed held-out set of the strictest threshold's pairs.",
)
@click.option("--device", type=DEVICE, default="auto", show_default=True)
@json_command(_render_evaluate)
def evaluate(run_id: str, seeds: str, splits: str, thresholds: str, device: str) -> Result:
    """Evaluate a run: the paper's protocol, and held-out splits with baselines beside it.

    Trains one model per split and seed (the run's own where it matches), scores held-out pairs
    against negatives that exclude every known interaction (and degree-matched ones) with
    cosine, degree-product, bilinear and random-walk-embedding baselines; writes
    evaluation.json and PNG plots into the run folder and the headline metrics onto the
    ModelRun.
    """
    from kgctl.models.cal.evaluate import evaluate as run_evaluation
    from kgctl.models.cal.evaluate import headline
    from kgctl.models.runs import load_run, record_model_run

    seed_list = _comma_list(seeds, "--seeds", int, "integers")
    threshold_list = _comma_list(thresholds, "--thresholds", float, "numbers")
    split_list = _comma_list(splits, "--splits", str, "names")
    if not seed_list or not split_list or set(split_list) - {"edge", "node"}:
        raise KgctlError("--seeds needs at least one seed and --splits a subset of edge,node")
    settings = load_settings()
    run = load_run(settings.paths.data_dir, run_id)
    if run.record["status"] != "trained":
        raise KgctlError(
            f"run {run_id} is {run.record['status']}; finish it with kgctl train cal --resume {run_id}"
        )
    with graph() as (_, conn):
        by_threshold = None
        if threshold_list:
            from kgctl.models.cal import CALConfig, inputs_by_threshold

            by_threshold = inputs_by_threshold(conn, settings.paths.data_dir,
                                               CALConfig(**run.config), threshold_list)  # fmt: skip
        result = run_evaluation(run, splits=split_list, seeds=seed_list, device=device,
                                thresholds=by_threshold)  # fmt: skip
        run.update(metrics={**run.record["metrics"], "evaluation": headline(result)})
        record_model_run(conn, run)
    return {"run_id": run_id, **result, "evaluation_file": str(run.dir / "evaluation.json")}


# ---- kgctl predict ----------------------------------------------------------------------------
def _render_predict(r: Result) -> None:
    p = r["prediction"]
    click.echo(f"Run {r['run_id']}: scored {p['pairs_scored']:,} ordered pairs in {p['scoring_seconds']:.1f} s; "
               f"top {p['top_k']} per gene in {r['file']}")  # fmt: skip
    if r.get("written_back"):
        w = r["written_back"]
        click.echo(f"  wrote {w['relationships']:,} PREDICTED_ASSOCIATION edges and {w['embeddings']:,} "
                   f"embedding_cal vectors (index {w['vector_index']}) in {w['seconds']:.1f} s")  # fmt: skip
    for row in r["top_novel"]:
        click.echo(
            f"  {row['gene']:<10} {row['partner']:<10} score {row['score']:.3f}  cos {row['input_cosine']:+.3f}"
        )


@click.command("predict")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--top-k", type=click.IntRange(1), default=10, show_default=True, help="Partners kept per gene."
)
@click.option(
    "--write-back",
    is_flag=True,
    help="Write PREDICTED_ASSOCIATION edges and embedding_cal to Neo4j.",
)
@click.option("--device", type=DEVICE, default="auto", show_default=True)
@json_command(_render_predict)
def predict(run_id: str, top_k: int, write_back: bool, device: str) -> Result:
    """Score every gene pair with a trained run and keep each gene's top K partners.

    Pairs are scored in row blocks, so memory stays far below the full N×N matrix. The table
    goes to predictions.parquet in the run folder; --write-back replaces the run's edges in the
    graph (re-running is idempotent) and sets embedding_cal with a vector index.
    """
    from kgctl.models.cal.predict import novel
    from kgctl.models.cal.predict import predict as run_predict
    from kgctl.models.cal.predict import write_back as run_write_back
    from kgctl.models.cal.train import resolve_device
    from kgctl.models.runs import load_run, record_model_run

    settings = load_settings()
    run = load_run(settings.paths.data_dir, run_id)
    if run.record["status"] != "trained":
        raise KgctlError(f"run {run_id} is {run.record['status']}; only trained runs predict")
    with spinner("Scoring all gene pairs"):
        table, fx = run_predict(run, top_k, resolve_device(device))
    written = None
    if write_back:
        with graph() as (_, conn), spinner("Writing predictions to Neo4j"):
            written = run_write_back(conn, run, table, fx)
            record_model_run(conn, run)
    best = novel(table).slice(0, 10)
    return {"run_id": run_id, "prediction": run.record["prediction"], "file": str(run.dir / "predictions.parquet"),
            "written_back": written, "top_novel": best.to_pylist()}  # fmt: skip


# ---- kgctl runs -------------------------------------------------------------------------------
@click.group("runs")
def runs_group() -> None:
    """List, show and delete model runs."""


def _render_runs(r: Result) -> None:
    if not r["runs"]:
        click.echo("No runs yet (kgctl train cal).")
    for run in r["runs"]:
        written = " written back" if run.get("written_back") else ""
        click.echo(f"{run['id']}  {run['model']}  {run['status']}{written}  {run['created_at']}")


@runs_group.command("list")
@json_command(_render_runs)
def runs_list() -> Result:
    """List runs, newest first."""
    from kgctl.models.runs import list_runs

    runs = list_runs(load_settings().paths.data_dir)
    return {"runs": [{k: r.record.get(k) for k in ("id", "model", "status", "created_at", "written_back")}
                     for r in runs]}  # fmt: skip


@runs_group.command("show")
@click.argument("run_id", metavar="RUN")
@json_command(lambda r: click.echo(json.dumps(r, indent=1, default=str)))
def runs_show(run_id: str) -> Result:
    """Show a run's record: config, data, metrics, what it wrote."""
    from kgctl.models.runs import load_run

    run = load_run(load_settings().paths.data_dir, run_id)
    return {**run.record, "dir": str(run.dir)}


def _render_delete(r: Result) -> None:
    click.echo(f"Deleted run {r['run_id']}: {r.get('relationships', 0):,} PREDICTED_ASSOCIATION edges, "
               f"{r.get('embeddings', 0):,} embeddings, {r.get('model_run_nodes', 0)} ModelRun node"
               + (f"; removed {r['files']}" if r["files"] else ""))  # fmt: skip


@runs_group.command("delete")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--keep-files",
    is_flag=True,
    help="Keep the run folder; remove only what it wrote to the graph.",
)
@json_command(_render_delete)
def runs_delete(run_id: str, keep_files: bool) -> Result:
    """Remove exactly what a run wrote: its predicted edges, its embeddings, its ModelRun."""
    from kgctl.models.runs import delete_run, load_run

    settings = load_settings()
    load_run(settings.paths.data_dir, run_id)  # a clear error before connecting
    with graph() as (settings, conn):
        return delete_run(conn, settings.paths.data_dir, run_id, keep_files)


# ---- kgctl query ------------------------------------------------------------------------------
def render_rows(rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1, default=str))
    elif fmt == "csv":
        buffer = io.StringIO()
        if rows:
            writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        click.echo(buffer.getvalue(), nl=False)
    else:
        table = Table(show_edge=False)
        for column in rows[0] if rows else ["(no rows)"]:
            table.add_column(column)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        from rich.console import Console

        Console().print(table)


def _parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise KgctlError(f"--param {pair!r}: write it as name=value")
        out[key.strip()] = value
    return out


@click.command("query")
@click.argument("name", required=False)
@click.option(
    "--param", "params", multiple=True, metavar="K=V", help="A query parameter (repeatable)."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@json_command(lambda r: render_rows(r["rows"], r["format"]) if "rows" in r else _render_queries(r))
def query(name: str | None, params: tuple[str, ...], fmt: str) -> Result:
    """Run a named query from queries/ (without NAME: list them with their parameters).

    Parameters are typed from the query's header and passed to Neo4j as parameters.
    """
    from kgctl import queries

    if name is None:
        return {"queries": [{"name": q.name, "description": q.description,
                             "params": [{"name": p.name, "type": p.type, "help": p.help,
                                         "default": None if p.default is queries.REQUIRED else p.default,
                                         "required": p.default is queries.REQUIRED} for p in q.params]}
                            for q in queries.available().values()]}  # fmt: skip
    given = _parse_params(params)
    queries.get(name).bind(given)  # a clear error before connecting
    with graph() as (_, conn):
        _, rows = queries.run(conn, name, given)
    return {"query": name, "format": fmt, "rows": rows}


def _render_queries(r: Result) -> None:
    for q in r["queries"]:
        args = " ".join(f"{p['name']}=<{p['type']}>" if p["required"] else f"[{p['name']}={p['default']}]"
                        for p in q["params"])  # fmt: skip
        click.echo(f"{q['name']:<18} {q['description']}")
        click.echo(f"{'':<18} params: {args}")


COMMANDS: tuple[click.Command, ...] = (train_group, evaluate, predict, runs_group, query)
