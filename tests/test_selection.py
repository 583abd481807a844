"""Choosing on validation, for any model: the trainer keeps the best validated epoch and stops
early, a search grid is parsed strictly, every candidate is trained and recorded, the best by
validation is kept, and an interrupted search resumes to the same choice and weights."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from kgctl.core.errors import KgctlError
from kgctl.models.base import Task
from kgctl.models.config import ModelConfig
from kgctl.models.selection import final_settings, fit_selected, grid
from kgctl.models.trainer import MODEL, fit


class Scripted(Task):
    """A one-weight model whose validation figure follows a script, one value per epoch (for a
    candidate, shifted by `offset`); it snapshots the weights it is validated with."""

    def __init__(self, config: ModelConfig, script: list[float], offset: float = 0.0, validates: bool = True) -> None:
        super().__init__("scripted", config, {})
        self.script, self.offset, self.validates = script, offset, validates
        self.seen: list[Tensor] = []

    def build_module(self) -> nn.Module:
        return nn.Linear(1, 1)

    def to(self, device: torch.device) -> None:
        self.x = torch.linspace(-1, 1, 16)[:, None]

    def batches(self, epoch: int, rank: int, world: int) -> Iterator[Tensor]:
        yield self.x

    def loss(self, module: nn.Module, batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return ((module(batch) - 3 * batch) ** 2).mean(), {}

    def fingerprint(self) -> str:
        return "scripted"

    def start_epoch(self, module: nn.Module, epoch: int, rank: int) -> None:
        self.epoch = epoch

    def has_validation(self) -> bool:
        return self.validates

    def validate(self, module: nn.Module) -> float | None:
        if not self.validates:
            return None
        self.seen.append(next(module.parameters()).detach().clone())
        return self.script[self.epoch] + self.offset


def test_trainer_keeps_the_best_epoch_and_stops_when_validation_stops_improving(
    tmp_path: Path,
) -> None:
    config = ModelConfig(epochs=10, patience=2, lr=0.1, schedule="constant")
    task = Scripted(config, [0.1, 0.5, 0.4, 0.3, 0.9, 0.2, 0.1, 0.1, 0.1, 0.1])
    result = fit(task, tmp_path, device="cpu").result
    selection = result["selection"]
    assert (selection["epoch"], selection["value"], selection["stopped_early"]) == (2, 0.5, True)
    assert result["epochs_done"] == 4 and result["complete"]  # epochs 3 and 4 did not improve
    kept = torch.load(tmp_path / MODEL, weights_only=False)
    assert torch.equal(kept["state_dict"]["weight"], task.seen[1])  # epoch 2's weights
    assert [e["validation"] for e in result["history"]] == [0.1, 0.5, 0.4, 0.3]
    # Without patience every epoch runs, and the best of them (epoch 5) is kept.
    late = Scripted(config.replace(patience=0), task.script)
    again = fit(late, tmp_path / "all", device="cpu").result
    assert again["epochs_done"] == 10 and again["selection"]["epoch"] == 5


def test_search_grid_is_parsed_strictly() -> None:
    from kgctl.models.cal.config import CALConfig

    config = CALConfig(dataset="d", search="transform=half,both; temperature=0.05,0.1")
    combos = grid(config)
    assert len(combos) == 4 and {"transform": "both", "temperature": 0.1} in combos
    assert grid(config.replace(search="mask=true,false")) == [{"mask": True}, {"mask": False}]
    assert grid(config.replace(search="")) == [{}]
    for bad, says in (
        ("colour=red", "not 'setting=value,value'"),
        ("seed=1,2", "seed and epochs excluded"),
        ("transform=sideways", "transform must be one of"),
        ("temperature=hot", "not a float"),
        ("transform", "not 'setting=value,value'"),
    ):
        with pytest.raises(KgctlError, match=says):
            grid(config.replace(search=bad))


def test_search_trains_every_candidate_keeps_the_best_and_resumes(tmp_path: Path) -> None:
    from kgctl.models.cal.config import CALConfig

    config = CALConfig(
        dataset="d", epochs=4, lr=0.1, schedule="constant", patience=0, search="temperature=0.05,0.1,0.2"
    )
    script = [0.2, 0.6, 0.5, 0.4]
    offsets = {0.05: 0.0, 0.1: 0.2, 0.2: -0.1}

    def make(c: ModelConfig) -> Task:
        assert isinstance(c, CALConfig)
        return Scripted(c, script, offsets[c.temperature])

    chosen = fit_selected(config, make, tmp_path / "whole", device="cpu")
    record = chosen.record()
    assert record["settings"] == {"temperature": 0.1} and record["epoch"] == 2
    assert [c["validation"] for c in record["candidates"]] == pytest.approx([0.6, 0.8, 0.5])
    final = final_settings(chosen.config, record)
    assert (final["epochs"], final["schedule_epochs"], final["search"]) == (2, 4, "")
    # Stopped after one epoch of the first candidate, then resumed: the same choice and weights.
    part = fit_selected(config, make, tmp_path / "part", device="cpu", stop_after=1)
    assert not part.result["complete"] and not (tmp_path / "part" / MODEL).exists()
    resumed = fit_selected(config, make, tmp_path / "part", device="cpu", resume=True)
    assert resumed.record()["settings"] == record["settings"]
    a = torch.load(tmp_path / "whole" / MODEL, weights_only=False)["state_dict"]
    b = torch.load(tmp_path / "part" / MODEL, weights_only=False)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(KgctlError, match="needs validation data"):
        fit_selected(config, lambda c: Scripted(c, script, validates=False), tmp_path / "none")


def test_from_run_follows_the_selected_runs_learning_rates() -> None:
    """A final model stopped at the chosen epoch keeps the selected run's schedule length, so its
    learning rate at every epoch is the selected run's (not a cosine compressed into fewer epochs)."""
    config = ModelConfig(epochs=10, lr=0.1, schedule="cosine", search="", patience=3)
    final = ModelConfig(**final_settings(config, {"epoch": 3}))
    assert (final.epochs, final.schedule_epochs, final.patience) == (3, 10, 0)
    selected = fit(Scripted(config, [0.5] * 10), None, device="cpu").result["history"]
    again = fit(Scripted(final, [0.5] * 3), None, device="cpu").result["history"]
    assert [e["lr"] for e in again] == pytest.approx([e["lr"] for e in selected[:3]])
    compressed = fit(Scripted(config.replace(epochs=3, patience=0), [0.5] * 3), None, device="cpu").result["history"]
    assert compressed[-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # what the old rule did: no steps left
    assert again[-1]["lr"] > 0.07


def test_cal_warns_when_it_memorises() -> None:
    from kgctl.models.cal.config import CALConfig
    from kgctl.models.cal.task import CALTask

    task = CALTask(CALConfig(dataset="d", batch_size=512), np.zeros((4, 2), np.float32), np.zeros((1000, 2), np.int64))
    memorised: list[dict[str, Any]] = [{"loss": 0.15, "accuracy": 1.0}]
    (warning,) = task.warnings(memorised)
    assert "memorising" in warning and "accuracy reached 1.000" in warning and "far below chance" in warning
    assert task.warnings([{"loss": 4.1, "accuracy": 0.07}]) == []  # the reference's end state
    assert "far below chance" in task.warnings([{"loss": 1.0, "accuracy": 0.5}])[0]


def test_cal_warns_when_it_has_learned_little() -> None:
    from kgctl.models.cal.config import CALConfig
    from kgctl.models.cal.task import CALTask

    task = CALTask(CALConfig(dataset="d", batch_size=512), np.zeros((4, 2), np.float32), np.zeros((1000, 2), np.int64))
    (warning,) = task.warnings([{"loss": 6.259, "accuracy": 0.02}] * 4)  # the written-back model of issue 31
    assert "learned little" in warning and "near chance (ln batch = 6.24) after 4 epochs" in warning
    assert task.warnings([{"loss": 5.9, "accuracy": 0.05}]) == []
