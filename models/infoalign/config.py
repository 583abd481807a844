"""InfoAlign's settings (methods/infoalign.md §5): the defaults are CPU-sized; `published.toml`
beside this file holds the published pretraining run's settings for a GPU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kgctl.core.options import setting
from kgctl.models.config import ModelConfig

PUBLISHED = Path(__file__).with_name("published.toml")


@dataclass
class InfoAlignConfig(ModelConfig):
    epochs: int = setting(20, "Pretraining epochs (one walk per molecule per step).")
    batch_size: int = setting(512, "Molecules per step (each starts one walk).")
    lr: float = setting(5e-4, "AdamW learning rate.")
    weight_decay: float = setting(1e-8, "AdamW weight decay.")
    checkpoint_every: int = setting(5, "Epochs between checkpoints (and one at the end).")
    hidden: int = setting(128, "Width of the GIN, μ and σ (the published model: 300).")
    layers: int = setting(3, "GIN layers (the published model: 5).")
    dropout: float = setting(0.5, "Dropout in the encoder and the decoders.")
    walk_length: int = setting(4, "Steps of each walk from a molecule (positions 0..L).")
    beta: float = setting(1e-9, "Weight of the minimality term KL(q(z|x) ‖ N(0, I)).")
    dataset: str = setting("", "A Dataset id whose per-gene vectors are the genes' targets (e.g. DepMap gene effect).")
    fingerprint_radius: int = setting(4, "Radius of the Morgan bits the molecule decoder rebuilds.")
    fingerprint_bits: int = setting(1024, "Width of those Morgan bits.")
    holdout_targets: float = setting(
        0.2,
        "Share of the molecules with TARGETS edges whose edges are removed before pretraining "
        "(the held-out drug-target evaluation); 0 keeps them all.",
    )

    def checks(self) -> list[tuple[bool, str]]:
        return super().checks() + [
            (self.hidden >= 8 and self.layers >= 1, "hidden >= 8 and layers >= 1"),
            (0 <= self.dropout < 1, "dropout in [0, 1)"),
            (self.walk_length >= 0 and self.beta >= 0, "walk_length >= 0 and beta >= 0"),
            (
                self.fingerprint_radius >= 0 and self.fingerprint_bits >= 8,
                "fingerprint_radius >= 0 and fingerprint_bits >= 8",
            ),
            (0 <= self.holdout_targets < 1, "holdout_targets in [0, 1)"),
        ]
