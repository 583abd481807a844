"""CAL's configuration: the reference hyper-parameters (methods/cal.md §4) as defaults, read from
a TOML file (`kgctl train cal --config FILE`) with unknown keys and wrong types reported."""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from kgctl.core.errors import KgctlError
from kgctl.graph.schema import STRING_CHANNELS

SPLITS = ("edge", "node", "none")
LOSSES = ("in-batch", "random-negatives")
TRANSFORMS = ("both", "half")
RELATIONSHIPS = ("INTERACTS_WITH", "CO_ESSENTIAL")
DEFAULT_MIN_SCORE = {"INTERACTS_WITH": 700.0}
CHANNELS = STRING_CHANNELS


@dataclass
class CALConfig:
    dataset: str = ""  # Dataset id of the gene features (`MATCH (d:Dataset) RETURN d.id`)
    relationship: str = "INTERACTS_WITH"  # positives: INTERACTS_WITH or CO_ESSENTIAL
    min_score: float | None = None  # positives score at least this; default 700 for STRING
    channel: str | None = None  # or a STRING channel filter, e.g. "experiments" ...
    min_channel: float = 700.0  # ... at least this
    max_missing: float = 0.2  # genes with more missing features are left out
    pca_dim: int = 50
    hidden_dim: int = 1024
    layers: int = 3
    transform: str = "both"  # both sides through f (symmetric), or the reference's half
    loss: str = "in-batch"  # or random-negatives (pool of f(X) without gradient)
    negatives: int = 511  # random-negatives: K per anchor
    temperature: float = 0.05
    batch_size: int = 512
    epochs: int = 100
    lr: float = 3e-4
    weight_decay: float = 1e-4
    seed: int = 42  # model seed; also the split's seed
    split: str = "edge"  # what the model trains on: edge split, node split, or all positives
    test_fraction: float = 0.2  # edge split: test pairs; node split: 0.3 of genes held out
    validation_fraction: float = 0.1
    unseen_fraction: float = 0.3
    checkpoint_every: int = 10

    def __post_init__(self) -> None:
        checks = [
            (self.relationship in RELATIONSHIPS, f"relationship must be one of {', '.join(RELATIONSHIPS)}"),
            (self.channel is None or self.channel in CHANNELS, f"channel must be one of {', '.join(CHANNELS)}"),
            (self.channel is None or self.relationship == "INTERACTS_WITH", "channel filters apply to INTERACTS_WITH only"),
            (self.split in SPLITS, f"split must be one of {', '.join(SPLITS)}"),
            (self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}"),
            (self.transform in TRANSFORMS, f"transform must be one of {', '.join(TRANSFORMS)}"),
            (self.loss == "in-batch" or self.transform == "both", "random negatives need transform = both"),
            (self.pca_dim >= 2 and self.hidden_dim >= 1 and self.layers >= 1, "pca_dim >= 2, hidden_dim and layers >= 1"),
            (self.epochs >= 1 and self.batch_size >= 8, "epochs >= 1 and batch_size >= 8"),
            (self.temperature > 0 and self.lr > 0, "temperature and lr must be positive"),
            (0 < self.test_fraction < 1 and 0 <= self.validation_fraction < 1 - self.test_fraction, "fractions out of range"),
            (0 < self.unseen_fraction < 1, "unseen_fraction must be in (0, 1)"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise KgctlError(f"CAL config: {message}")

    @property
    def threshold(self) -> float | None:
        """The positives' score threshold: `min_score`, else 700 for STRING's combined score
        (CO_ESSENTIAL edges are already selected when they are built)."""
        if self.min_score is not None:
            return self.min_score
        return DEFAULT_MIN_SCORE.get(self.relationship)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def replace(self, **changes: Any) -> CALConfig:
        return CALConfig(
            **{**self.to_dict(), **{k: v for k, v in changes.items() if v is not None}}
        )


def load_config(path: Path | None, **overrides: Any) -> CALConfig:
    """Defaults, then the TOML file (top level or a [cal] table), then non-None overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise KgctlError(f"{path}: {exc}") from exc
        values = raw.get("cal", raw)
        known = {f.name: f for f in fields(CALConfig)}
        for key, value in values.items():
            if key not in known:
                raise KgctlError(f"{path}: unknown key {key!r} (known: {', '.join(known)})")
            default = getattr(CALConfig(), key)
            if (
                default is not None
                and not isinstance(value, type(default))
                and not (isinstance(default, float) and isinstance(value, int))
            ):
                raise KgctlError(f"{path}: {key} must be {type(default).__name__}, not {value!r}")
    return CALConfig(**values).replace(**overrides)
