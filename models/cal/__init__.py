"""CAL, contrastive association learning (methods/cal.md): a map from a gene's expression
embedding into a space where interacting genes are close. `train_run` is `kgctl train cal`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection
from kgctl.models.cal.config import CALConfig, load_config
from kgctl.models.cal.data import Inputs, collect_inputs, embed, make_split
from kgctl.models.cal.train import resolve_device, train
from kgctl.models.runs import Run, load_run, new_run, record_model_run

__all__ = ["CALConfig", "load_config", "train_run", "resume_run", "inputs_by_threshold"]


def _view_dir(data_dir: Path, config: CALConfig) -> Path:
    return data_dir / "views" / f"gene-association-{config.relationship}"


def inputs_by_threshold(conn: Connection, data_dir: Path, config: CALConfig,
                        thresholds: tuple[float, ...]) -> dict[float, Inputs]:  # fmt: skip
    """The run's inputs again with positives at each score threshold (for a threshold sweep)."""
    if config.channel is not None:
        raise KgctlError("a threshold sweep needs positives chosen by score, not a channel filter")
    return {
        t: collect_inputs(conn, config.replace(min_score=t), _view_dir(data_dir, config))
        for t in thresholds
    }


def train_run(conn: Connection, data_dir: Path, config: CALConfig, *, device: str = "auto",
              nproc: int = 1, progress: bool = True, stop_after: int | None = None) -> Run:  # fmt: skip
    """Export the view, build the inputs and split, train, and record the run (folder and
    ModelRun node). The run's folder keeps everything evaluation and prediction need."""
    run = new_run(data_dir, "cal", config.to_dict())
    inputs = collect_inputs(conn, config, _view_dir(data_dir, config))
    inputs.save(run.dir / "inputs.npz")
    split = make_split(inputs, config, config.split, config.seed)
    emb, info = embed(inputs.features, split.fit, config.pca_dim)
    run.update(status="training", device=resolve_device(device),
               data={**inputs.meta, "split": split.counts(), "embedding_dim": info["dim"],
                     "explained_variance": round(info["explained_variance"], 4),
                     "embedding_sha256": info["sha256"], "pca_fit_genes": info["fit_genes"]})  # fmt: skip
    record_model_run(conn, run)
    return _fit(
        conn, run, emb, split.train, config, device, nproc, progress, stop_after, resume=False
    )


def resume_run(conn: Connection, data_dir: Path, run_id: str, *, device: str = "auto", nproc: int = 1,
               progress: bool = True) -> Run:  # fmt: skip
    """Continue an interrupted run from its last checkpoint (same split, same embedding)."""
    run = load_run(data_dir, run_id)
    config = CALConfig(**run.config)
    inputs = Inputs.load(run.dir / "inputs.npz")
    split = make_split(inputs, config, config.split, config.seed)
    emb, info = embed(inputs.features, split.fit, config.pca_dim)
    if info["sha256"] != run.record["data"]["embedding_sha256"]:
        raise KgctlError(f"run {run_id}: the embedding no longer matches its checksum")
    return _fit(conn, run, emb, split.train, config, device, nproc, progress, None, resume=True)


def _fit(conn: Connection, run: Run, emb: np.ndarray, pairs: np.ndarray, config: CALConfig, device: str, nproc: int,
         progress: bool, stop_after: int | None, resume: bool) -> Run:  # fmt: skip
    try:
        result = train(emb, pairs, config, run.dir, device=device, nproc=nproc, resume=resume,
                       stop_after=stop_after, progress=progress)  # fmt: skip
    except BaseException:
        run.update(status="interrupted")
        record_model_run(conn, run)
        raise
    history = result.pop("history")
    run.update(status="trained" if result["complete"] else "interrupted", device=result["device"],
               metrics={**run.record.get("metrics", {}), "training": result},
               history_file="history.json", epochs=len(history))  # fmt: skip
    record_model_run(conn, run)
    return run
