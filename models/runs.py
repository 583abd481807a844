"""The run lifecycle for every model: new, train, resume, evaluate, predict (and write back),
delete. A run is a folder (`<data_dir>/runs/<run id>/`: `run.json`, inputs, checkpoints, history,
evaluation, plots, predictions) mirrored as a `ModelRun` node; it records what it wrote to the
graph, and `delete` removes exactly that."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from kgctl import __version__
from kgctl.core.errors import KgctlError
from kgctl.core.progress import OnProgress, silent
from kgctl.core.provenance import Provenance, code_version, now
from kgctl.graph.connection import Connection
from kgctl.graph.writeback import (
    delete_embeddings,
    delete_relationships,
    write_embeddings,
    write_relationships,
)
from kgctl.models.base import Inputs, Model, Prediction, Task
from kgctl.models.config import ModelConfig
from kgctl.models.registry import create, model_class
from kgctl.models.selection import final_settings, fit_selected
from kgctl.models.trainer import load_module, resolve_device

RUN_FILE = "run.json"
INPUTS = "inputs.npz"
PREDICTIONS = "predictions.parquet"
RUN_ID = re.compile(r"^[a-z][a-z0-9_]*-\d{8}-\d{6}-[0-9a-f]{6}$")
FORMAT = 2  # run folders of the model platform; 1 (no `format`): CAL's own, before it


def runs_dir(data_dir: Path) -> Path:
    return data_dir / "runs"


def views_dir(data_dir: Path) -> Path:
    return data_dir / "views"


@dataclass
class Run:
    """A run's folder and its record (`run.json`), saved after every change."""

    dir: Path
    record: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.record["id"])

    @property
    def model(self) -> str:
        return str(self.record["model"])

    @property
    def views(self) -> Path:
        """The views folder of the data dir the run lives in."""
        return views_dir(self.dir.parent.parent)

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.record["config"])

    def save(self) -> None:
        tmp = self.dir / f".{RUN_FILE}.tmp"
        tmp.write_text(json.dumps(self.record, indent=1, default=str))
        tmp.replace(self.dir / RUN_FILE)

    def update(self, **fields: Any) -> None:
        self.record.update(fields)
        self.save()


def new_run(data_dir: Path, model: str, config: dict[str, Any]) -> Run:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    run_id = f"{model}-{stamp}-{secrets.token_hex(3)}"
    folder = runs_dir(data_dir) / run_id
    folder.mkdir(parents=True)
    run = Run(
        folder,
        {
            "id": run_id,
            "model": model,
            "format": FORMAT,
            "status": "created",
            "created_at": now(),
            "code_version": code_version(),
            "config": config,
            "metrics": {},
        },
    )
    run.save()
    return run


def load_run(data_dir: Path, run_id: str) -> Run:
    """The run with this id; an id that is not a run id (a path, `..`) is refused before any
    file is touched."""
    if not RUN_ID.match(run_id):
        raise KgctlError(f"{run_id!r} is not a run id (like cal-20261130-181500-1a2b3c; `kgctl runs list` shows them)")
    folder = runs_dir(data_dir) / run_id
    if not (folder / RUN_FILE).exists():
        known = [r.id for r in list_runs(data_dir)][:10]
        hint = f"; runs: {', '.join(known)}" if known else "; no runs yet (kgctl train <model>)"
        raise KgctlError(f"no run {run_id!r} in {runs_dir(data_dir)}{hint}")
    return Run(folder, json.loads((folder / RUN_FILE).read_text()))


def list_runs(data_dir: Path) -> list[Run]:
    """Runs, newest first."""
    found = [
        Run(p.parent, json.loads(p.read_text()))
        for p in runs_dir(data_dir).glob(f"*/{RUN_FILE}")
        if RUN_ID.match(p.parent.name)
    ]
    return sorted(found, key=lambda r: (r.record["created_at"], r.id), reverse=True)


def record_model_run(conn: Connection, run: Run) -> None:
    """Mirror the run as a `ModelRun` node; nested fields are JSON strings (Neo4j has no maps)."""
    r = run.record
    props = {
        "model": r["model"],
        "status": r["status"],
        "created_at": r["created_at"],
        "code_version": r["code_version"],
        "device": r.get("device"),
        "view": r.get("view"),
        "config": json.dumps(r["config"], sort_keys=True),
        "selection": json.dumps(r.get("selection"), sort_keys=True),
        "data": json.dumps(r.get("data", {}), sort_keys=True),
        "metrics": json.dumps(r.get("metrics", {}), sort_keys=True, default=str),
        "written": json.dumps(r.get("written", {}), sort_keys=True),
        "data_fingerprint": r.get("data", {}).get("view_fingerprint"),
        "task_sha256": r.get("data", {}).get("task_sha256"),
        "written_back_at": r.get("written", {}).get("at"),
    }
    conn.query(
        "MERGE (m:ModelRun {id: $id}) SET m += $props, m.updated_at = datetime()",
        {"id": run.id, "props": props},
        write=True,
    )


def model_of(run: Run) -> Model:
    """The registered model of a run, with the run's own config."""
    if run.record.get("format") != FORMAT:
        raise KgctlError(
            f"run {run.id} was recorded by kgctl {run.record.get('code_version')}, before "
            "the model platform: train it again (`kgctl runs delete` still removes "
            "what it wrote)"
        )
    cls = model_class(run.model)
    return cls(cls.config_class(**run.config))


def train(
    conn: Connection,
    data_dir: Path,
    name: str,
    config: ModelConfig,
    *,
    device: str = "auto",
    nproc: int = 1,
    stop_after: int | None = None,
    on_progress: OnProgress = silent,
) -> Run:
    """Export the model's view, build its inputs and task, train, and record the run (folder and
    ModelRun). The folder keeps everything evaluation and prediction need."""
    model = create(name, config)
    inputs = model.build_inputs(conn, views_dir(data_dir))
    run = new_run(data_dir, name, config.to_dict())
    inputs.save(run.dir / INPUTS)
    task = model.task(inputs)
    run.update(
        status="training",
        view=model.view,
        device=resolve_device(device),
        data={**model.describe(inputs, task), "task_sha256": task.fingerprint()},
    )
    record_model_run(conn, run)
    return _fit(conn, run, model, inputs, device, nproc, stop_after, False, on_progress)


def resume(
    conn: Connection,
    data_dir: Path,
    run_id: str,
    *,
    device: str = "auto",
    nproc: int = 1,
    stop_after: int | None = None,
    on_progress: OnProgress = silent,
) -> Run:
    """Continue an interrupted run from its last checkpoint: the same inputs, split and config,
    checked against the run's training-data checksum."""
    run = load_run(data_dir, run_id)
    if run.record["status"] == "trained":
        raise KgctlError(f"run {run_id} has finished training; nothing to resume")
    model = model_of(run)
    inputs = model.load_inputs(run.dir / INPUTS)
    if model.task(inputs).fingerprint() != run.record.get("data", {}).get("task_sha256"):
        raise KgctlError(f"run {run_id}: the training data no longer match their checksum")
    return _fit(conn, run, model, inputs, device, nproc, stop_after, True, on_progress)


def _fit(
    conn: Connection,
    run: Run,
    model: Model,
    inputs: Inputs,
    device: str,
    nproc: int,
    stop_after: int | None,
    resume: bool,
    on_progress: OnProgress,
) -> Run:
    def make_task(config: ModelConfig) -> Task:
        return create(run.model, config).task(inputs)

    try:
        selected = fit_selected(
            model.config,
            make_task,
            run.dir,
            device=device,
            nproc=nproc,
            resume=resume,
            stop_after=stop_after,
            on_progress=on_progress,
        )
    except BaseException:
        run.update(status="interrupted")
        record_model_run(conn, run)
        raise
    result = selected.result
    result.pop("history", None)
    done = result["complete"]
    run.update(
        status="trained" if done else "interrupted",
        device=result["device"],
        config=selected.config.to_dict() if done else run.config,
        selection=selected.record() if done else None,
        metrics={**run.record.get("metrics", {}), "training": result},
        history_file="history.json",
        epochs=result["epochs_done"],
    )
    record_model_run(conn, run)
    return run


def trained_run(data_dir: Path, run_id: str) -> tuple[Run, Model]:
    """A trained run and its model; a run of an earlier kgctl, of an unregistered model or not
    trained to the end is a clear error."""
    run = load_run(data_dir, run_id)
    model = model_of(run)
    if run.record["status"] != "trained":
        raise KgctlError(
            f"run {run_id} is {run.record['status']}; finish it with `kgctl train {run.model} --resume {run_id}`"
        )
    return run, model


def evaluate(
    conn: Connection,
    data_dir: Path,
    run_id: str,
    options: dict[str, Any],
    *,
    evaluator: str | None = None,
    device: str = "auto",
    on_progress: OnProgress = silent,
) -> dict[str, Any]:
    """A registered evaluator's figures of a trained run (the model's first evaluator unless one
    is named): `<kind>.json` in the folder (`evaluation`, or the evaluator's own kind, e.g.
    `evidence`), its headline on the run record and its ModelRun."""
    from kgctl.models.evaluators import Context, evaluator_class

    run, model = trained_run(data_dir, run_id)
    name = evaluator or (model.evaluators[0] if model.evaluators else "")
    if name not in model.evaluators:
        raise KgctlError(
            f"{run.model} runs are evaluated by {', '.join(model.evaluators) or 'no evaluator'}, not {name!r}"
        )
    cls = evaluator_class(name)
    chosen = cls()
    typed = cls.parse(options)
    inputs = model.load_inputs(run.dir / INPUTS)
    result = chosen.evaluate(Context(run, model, inputs, conn, resolve_device(device), on_progress), typed)
    figures = result.to_dict()
    path = run.dir / f"{cls.kind}.json"
    path.write_text(json.dumps(figures, indent=1, default=str))
    run.update(metrics={**run.record["metrics"], cls.kind: chosen.headline(result)})
    record_model_run(conn, run)
    return {
        "run_id": run_id,
        "model": run.model,
        "evaluator": name,
        "kind": cls.kind,
        "options": typed.to_dict(),
        **figures,
        "evaluation_file": str(path),
    }


def predict(
    conn: Connection | None,
    data_dir: Path,
    run_id: str,
    options: dict[str, Any],
    *,
    device: str = "auto",
    write_back: bool = False,
    allow_split: bool = False,
) -> dict[str, Any]:
    """Score with a trained run into `predictions.parquet`; with `write_back`, replace what the
    run wrote to the graph (idempotent), as the model's `writes` declares. A run that left part
    of its data out (a split) is written back only with `allow_split`."""
    run, model = trained_run(data_dir, run_id)
    left_out = model.left_out()
    if write_back and left_out and not allow_split:
        raise KgctlError(
            f"run {run_id}: {left_out}, so its predictions miss what it never saw. Train "
            f"the final model with `kgctl train {run.model} --from-run {run_id} {model.all_data}`, "
            "or pass --allow-split to write this run back anyway"
        )
    kind = resolve_device(device)
    module = load_module(run.dir, model.build_module, kind)
    prediction = model.predict(run, model.load_inputs(run.dir / INPUTS), module, options, kind)
    if prediction.edges is not None:
        pq.write_table(prediction.edges, run.dir / PREDICTIONS)
    run.update(prediction=prediction.facts)
    written = None
    if write_back:
        if conn is None:
            raise KgctlError("write-back needs a connection to the graph")
        written = write(conn, run, model, prediction)
    return {
        "run_id": run_id,
        "model": run.model,
        "prediction": prediction.facts,
        "file": str(run.dir / PREDICTIONS) if prediction.edges is not None else None,
        "written": written,
        "highlights": prediction.highlights,
    }


def settings_from(data_dir: Path, run_id: str, name: str) -> ModelConfig:
    """The settings a trained run chose on validation, for a final model: its config with the
    selected combination and best epoch, without search or early stopping."""
    run, model = trained_run(data_dir, run_id)
    if run.model != name:
        raise KgctlError(f"--from-run {run_id} is a {run.model} run, not {name}")
    return type(model.config)(**final_settings(model.config, run.record.get("selection")))


def licence_of(run: Run) -> str:
    """The licences of the data a run learned from (derived data keeps its inputs' terms)."""
    licences = run.record.get("data", {}).get("licences") or ["unknown"]
    return "; ".join(sorted(set(licences)))


def write(conn: Connection, run: Run, model: Model, prediction: Prediction) -> dict[str, Any]:
    """Write a prediction back as the model declares, and record on the run what was written."""
    started = time.perf_counter()
    writes = model.writes
    at = now()
    # Recorded first: a write-back killed part-way leaves this, so `runs show` says so and
    # `runs delete` still finds what it wrote; a re-run replaces the run's edges (no duplicates).
    intent: dict[str, Any] = {"status": "writing", "started_at": at}
    if writes.relationship and prediction.edges is not None:
        intent["relationships"] = {"type": writes.relationship}
    if writes.embedding_label and prediction.embeddings is not None:
        intent["embeddings"] = {"label": writes.embedding_label}
    run.update(written=intent)
    record_model_run(conn, run)
    written: dict[str, Any] = {"status": "complete", "at": at}
    if writes.relationship and prediction.edges is not None:
        assert writes.start_label and writes.end_label
        prov = Provenance(f"kgctl {run.model}", __version__, run.id, licence_of(run), at)
        count = write_relationships(
            conn, writes.relationship, writes.start_label, writes.end_label, prediction.edges, prov, run.model
        )
        written["relationships"] = {
            "type": writes.relationship,
            "start_label": writes.start_label,
            "end_label": writes.end_label,
            "count": count,
        }
    if writes.embedding_label and prediction.embeddings is not None:
        assert prediction.embedding_ids is not None
        written["embeddings"] = write_embeddings(
            conn, writes.embedding_label, run.model, run.id, prediction.embedding_ids, prediction.embeddings
        )
    written["seconds"] = round(time.perf_counter() - started, 2)
    run.update(written=written)
    record_model_run(conn, run)
    return written


def what_it_wrote(run: Run) -> dict[str, Any]:
    """The run's record of its write-back. Runs from before the model platform were CAL's and
    recorded only `written_back`: its edges and gene embeddings."""
    if "written_back" in run.record and "written" not in run.record:
        return {"relationships": {"type": "PREDICTED_ASSOCIATION"}, "embeddings": {"label": "Gene"}}
    return dict(run.record.get("written", {}))


def delete(conn: Connection | None, data_dir: Path, run_id: str, keep_files: bool = False) -> dict[str, Any]:
    """Remove what the run wrote (its relationships, the embeddings it still owns), its ModelRun
    node and, unless `keep_files`, its folder."""
    run = load_run(data_dir, run_id)
    removed: dict[str, Any] = {"run_id": run_id, "model": run.model}
    if conn is not None:
        written = what_it_wrote(run)
        rels = written.get("relationships")
        removed["relationships"] = delete_relationships(conn, rels["type"], run_id) if rels else 0
        emb = written.get("embeddings")
        removed["embeddings"] = delete_embeddings(conn, emb["label"], run.model, run_id) if emb else 0
        removed["model_run_nodes"] = conn.query(
            "MATCH (m:ModelRun {id: $id}) DETACH DELETE m RETURN count(*) AS n", {"id": run_id}, write=True
        )[0]["n"]
    if not keep_files:
        shutil.rmtree(run.dir)
    removed["files"] = None if keep_files else str(run.dir)
    return removed
