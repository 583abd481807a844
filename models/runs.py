"""The run registry: one folder per training run (`<data_dir>/runs/<run id>/run.json`, inputs,
checkpoints, plots) mirrored as a `ModelRun` node, and `kgctl runs delete`, which removes exactly
what a run wrote to the graph."""

from __future__ import annotations

import json
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kgctl.core.errors import KgctlError
from kgctl.core.provenance import code_version, now
from kgctl.graph.connection import Connection

RUN_FILE = "run.json"
MODELS = ("cal", "infoalign", "isoclr")  # embedding_<model> property names come only from here


def runs_dir(data_dir: Path) -> Path:
    return data_dir / "runs"


@dataclass
class Run:
    """A run's folder and its record (`run.json`), saved after every change."""

    dir: Path
    record: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.record["id"])

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
    run = Run(folder, {"id": run_id, "model": model, "status": "created", "created_at": now(),
                       "code_version": code_version(), "config": config, "metrics": {}})  # fmt: skip
    run.save()
    return run


def load_run(data_dir: Path, run_id: str) -> Run:
    folder = runs_dir(data_dir) / run_id
    if not (folder / RUN_FILE).exists():
        known = [r.id for r in list_runs(data_dir)][:10]
        hint = f"; runs: {', '.join(known)}" if known else "; no runs yet (kgctl train cal)"
        raise KgctlError(f"no run {run_id!r} in {runs_dir(data_dir)}{hint}")
    return Run(folder, json.loads((folder / RUN_FILE).read_text()))


def list_runs(data_dir: Path) -> list[Run]:
    """Runs, newest first."""
    found = [
        Run(p.parent, json.loads(p.read_text())) for p in runs_dir(data_dir).glob(f"*/{RUN_FILE}")
    ]
    return sorted(found, key=lambda r: (r.record["created_at"], r.id), reverse=True)


def record_model_run(conn: Connection, run: Run) -> None:
    """Mirror the run as a `ModelRun` node; nested fields are JSON strings (Neo4j has no maps)."""
    r = run.record
    props = {
        "model": r["model"], "status": r["status"], "created_at": r["created_at"],
        "code_version": r["code_version"], "device": r.get("device"),
        "config": json.dumps(r["config"], sort_keys=True),
        "data": json.dumps(r.get("data", {}), sort_keys=True),
        "metrics": json.dumps(r.get("metrics", {}), sort_keys=True, default=str),
        "data_fingerprint": r.get("data", {}).get("view_fingerprint"),
        "embedding_sha256": r.get("data", {}).get("embedding_sha256"),
        "written_back_at": r.get("written_back", {}).get("at"),
    }  # fmt: skip
    conn.query("MERGE (m:ModelRun {id: $id}) SET m += $props, m.updated_at = datetime()",
               {"id": run.id, "props": props}, write=True)  # fmt: skip


def delete_predictions(conn: Connection, run_id: str) -> None:
    """Every PREDICTED_ASSOCIATION edge the run wrote, in batches."""
    conn.run_autocommit("MATCH ()-[p:PREDICTED_ASSOCIATION {run_id: $id}]->() "
                        "CALL (p) { DELETE p } IN TRANSACTIONS OF 10000 ROWS", {"id": run_id})  # fmt: skip


def delete_run(
    conn: Connection | None, data_dir: Path, run_id: str, keep_files: bool = False
) -> dict[str, Any]:
    """Remove the run's predicted edges, the embeddings it wrote (where still its own), its
    ModelRun node and, unless `keep_files`, its folder."""
    run = load_run(data_dir, run_id)
    removed: dict[str, Any] = {"run_id": run_id}
    if conn is not None:
        delete_predictions(conn, run_id)
        left = conn.query("MATCH ()-[p:PREDICTED_ASSOCIATION {run_id: $id}]->() RETURN count(p) AS n",
                          {"id": run_id})[0]["n"]  # fmt: skip
        if left:
            raise KgctlError(f"{left} PREDICTED_ASSOCIATION edges of {run_id} survived the delete")
        removed["relationships"] = run.record.get("written_back", {}).get("relationships", 0)
        model = run.record["model"]
        if model not in MODELS:
            raise KgctlError(f"{run.dir / RUN_FILE}: unknown model {model!r}")
        removed["embeddings"] = conn.query(
            f"MATCH (g:Gene) WHERE g.embedding_{model}_run = $id "
            f"REMOVE g.embedding_{model}, g.embedding_{model}_run RETURN count(g) AS n",
            {"id": run_id}, write=True)[0]["n"]  # fmt: skip
        removed["model_run_nodes"] = conn.query(
            "MATCH (m:ModelRun {id: $id}) DETACH DELETE m RETURN count(*) AS n", {"id": run_id},
            write=True)[0]["n"]  # fmt: skip
    if not keep_files:
        shutil.rmtree(run.dir)
    removed["files"] = None if keep_files else str(run.dir)
    return removed
