"""The shared trainer on any task: seeded and deterministic, a stopped run resumes to exactly
the weights of an uninterrupted one, DistributedDataParallel over two CPU processes reports
progress through the parent's callback, the schedule comes from the config, and (on a GPU) bf16
autocast trains and resumes alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from kgctl.core.errors import KgctlError
from kgctl.models.association.data import unordered
from kgctl.models.cal.config import CALConfig
from kgctl.models.cal.task import CALTask
from kgctl.models.trainer import CHECKPOINT, MODEL, fit, shard

CONFIG = CALConfig(dataset="d", pca_dim=8, hidden_dim=32, layers=2, epochs=4, batch_size=32, checkpoint_every=1)


def task(config: CALConfig = CONFIG, n: int = 120, seed: int = 0) -> CALTask:
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, config.pca_dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return CALTask(config, emb, unordered(rng.integers(0, n, size=(4 * n, 2)), n))


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return dict(torch.load(folder / MODEL, weights_only=False)["state_dict"])


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_training_is_deterministic_and_resumes_to_the_same_weights(tmp_path: Path) -> None:
    whole = fit(task(), tmp_path / "whole", device="cpu").result
    assert whole["complete"] and whole["epochs_done"] == 4 and np.isfinite(whole["final_loss"])
    assert set(whole["final"]) == {"accuracy", "alpha"}  # the task's figures and facts
    fit(task(), tmp_path / "again", device="cpu")
    assert same(weights(tmp_path / "whole"), weights(tmp_path / "again"))
    part = fit(task(), tmp_path / "part", device="cpu", stop_after=2).result
    assert not part["complete"] and (tmp_path / "part" / CHECKPOINT).exists()
    assert not (tmp_path / "part" / MODEL).exists()
    resumed = fit(task(), tmp_path / "part", device="cpu", resume=True).result
    assert resumed["complete"] and resumed["resumed_from_epoch"] == 2
    assert same(weights(tmp_path / "whole"), weights(tmp_path / "part"))
    assert [e["loss"] for e in resumed["history"]] == [e["loss"] for e in whole["history"]]


def test_two_processes_on_cpu_report_progress_to_the_caller(tmp_path: Path) -> None:
    heard: list[tuple[float, float | None, str]] = []
    result = fit(
        task(CONFIG.replace(epochs=2)), tmp_path, device="cpu", nproc=2, on_progress=lambda *a: heard.append(a)
    ).result
    assert result["complete"] and result["backend"] == "gloo" and result["nproc"] == 2
    assert result["history"][-1]["steps"] >= 1 and np.isfinite(result["final_loss"])
    assert heard[0][:2] == (0, 2) and heard[-1][:2] == (2, 2) and "epoch 2/2" in heard[-1][2]


def test_schedule_and_in_memory_training() -> None:
    cosine = fit(task(), None, device="cpu").result["history"]
    constant = fit(task(CONFIG.replace(schedule="constant")), None, device="cpu").result["history"]
    assert cosine[-1]["lr"] == pytest.approx(0.0) and cosine[0]["lr"] < CONFIG.lr
    assert {e["lr"] for e in constant} == {CONFIG.lr}
    with pytest.raises(KgctlError, match="in memory takes one process"):
        fit(task(), None, device="cpu", nproc=2)
    with pytest.raises(KgctlError, match="schedule must be one of cosine, constant"):
        CONFIG.replace(schedule="linear")


def test_shard_gives_every_process_the_same_steps() -> None:
    batch = torch.arange(10)
    parts = [shard(batch, rank, 3) for rank in range(3)]
    assert [p.tolist() for p in parts] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


@pytest.mark.gpu
def test_cuda_bf16_trains_and_resumes_to_the_same_weights(tmp_path: Path) -> None:
    def run(out: Path, **kw: Any) -> dict[str, Any]:
        return fit(task(), out, device="cuda", **kw).result

    whole = run(tmp_path / "whole")
    assert whole["precision"] == "bf16 autocast" and np.isfinite(whole["final_loss"])
    run(tmp_path / "part", stop_after=2)
    run(tmp_path / "part", resume=True)
    assert same(weights(tmp_path / "whole"), weights(tmp_path / "part"))
