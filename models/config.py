"""What every model's config has: the shared trainer's settings (seeded epochs, AdamW, the
learning-rate schedule, checkpoints), with type-checked loading from TOML and overrides."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from kgctl.core.errors import KgctlError
from kgctl.core.options import check_value, setting

SCHEDULES = ("cosine", "constant")


@dataclass
class ModelConfig:
    """Subclasses add their own fields (each a `setting` with help) and extend `checks`."""

    seed: int = setting(42, "Seed of the weights, the batches and the split.")
    epochs: int = setting(100, "Training epochs.")
    batch_size: int = setting(512, "Examples per step, shared by the --nproc processes.")
    lr: float = setting(3e-4, "AdamW learning rate.")
    weight_decay: float = setting(1e-4, "AdamW weight decay.")
    schedule: str = setting("cosine", "Learning rate per epoch: cosine to 0, or constant.", SCHEDULES)
    schedule_epochs: int = setting(
        0,
        "Length of the cosine schedule in epochs (0: `epochs`). A final model trained --from-run "
        "keeps the selected run's, so it follows that run's learning rates up to the chosen epoch.",
    )
    checkpoint_every: int = setting(10, "Epochs between checkpoints (and one at the end).")
    patience: int = setting(
        0,
        "With validation data: stop after this many epochs without a better validation "
        "figure (0: never early); the best epoch's weights are kept either way.",
    )
    search: str = setting(
        "",
        "Settings to choose among on validation, e.g. 'transform=half,both;temperature="
        "0.05,0.1': one model per combination, the best kept, every one recorded.",
    )

    def __post_init__(self) -> None:
        name = type(self).__name__
        for f in dataclasses.fields(self):
            setattr(self, f.name, check_value(type(self), f.name, getattr(self, f.name), name))
        for ok, message in self.checks():
            if not ok:
                raise KgctlError(f"{name}: {message}")

    def checks(self) -> list[tuple[bool, str]]:
        """(condition, message) pairs that must all hold."""
        return [
            (self.epochs >= 1 and self.checkpoint_every >= 1, "epochs and checkpoint_every >= 1"),
            (self.patience >= 0, "patience >= 0"),
            (
                self.schedule_epochs == 0 or self.schedule_epochs >= self.epochs,
                "schedule_epochs is 0 or at least epochs (a cosine schedule past its end rises again)",
            ),
            (self.batch_size >= 1, "batch_size >= 1"),
            (self.lr > 0 and self.weight_decay >= 0, "lr > 0 and weight_decay >= 0"),
        ]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> Self:
        """A copy with the non-None `changes`."""
        return type(self)(**{**self.to_dict(), **{k: v for k, v in changes.items() if v is not None}})

    @classmethod
    def load(cls, path: Path | None, section: str, **overrides: Any) -> Self:
        """Defaults, then the TOML file (top level or a `[section]` table), then the non-None
        overrides; unknown keys and wrong types are reported with the file and key."""
        values: dict[str, Any] = {}
        if path is not None:
            try:
                raw = tomllib.loads(path.read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise KgctlError(f"{path}: {exc}") from exc
            table = raw.get(section, raw)
            values = {k: check_value(cls, k, v, str(path)) for k, v in table.items()}
        return cls(**values).replace(**overrides)
