"""IsoCLR's settings (methods/isoclr.md): the defaults are CPU-sized; `published.toml` beside this
file holds the published 6-track medium run's settings for a GPU."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kgctl.core.options import setting
from kgctl.models.config import ModelConfig

ENCODERS = ("tiny", "small", "medium")
POOLING = ("masked", "plain")
PUBLISHED = Path(__file__).with_name("published.toml")


@dataclass
class IsoCLRConfig(ModelConfig):
    epochs: int = setting(30, "Training epochs (one pair per positive group each).")
    batch_size: int = setting(128, "Pairs per step (the negatives are the rest of the batch).")
    lr: float = setting(1e-3, "AdamW learning rate.")
    weight_decay: float = setting(1e-6, "AdamW weight decay.")
    checkpoint_every: int = setting(5, "Epochs between checkpoints (and one at the end).")
    encoder: str = setting(
        "small",
        "Dilated ResNet size: tiny (32-128 filters, 1 block a stage), small (64-256, 2 a "
        "stage, 0.8 M) or medium (64-512, 3/4/6/3, 4.9 M).",
        ENCODERS,
    )
    kernel: int = setting(2, "Convolution kernel width (the published runs use 2).")
    tracks: int = setting(6, "Input tracks: 6 (nucleotides, codon starts, splice sites) or 4.")
    dropout: float = setting(0.1, "Dropout inside the residual blocks.")
    projection: str = setting("256,256,128", "Widths of the projection head's three layers (pretraining only).")
    temperature: float = setting(0.1, "Temperature of the decoupled contrastive loss.")
    mask: float = setting(0.15, "Share of each view's positions zeroed (both views, training).")
    weight_c: float = setting(
        0.4, "Transcript-count weight ln(n + c) of a group's pair, normalised to mean 1 (<0: off)."
    )
    ortholog_prob: float = setting(
        0.5, "Chance that a pair's partner comes from an orthologous gene, when there is one."
    )
    max_length: int = setting(12288, "Transcripts longer than this are left out of training (as IsoCLR does).")
    pooling: str = setting("masked", "Mean over true positions (masked) or over the padding too (plain).", POOLING)
    corpus: str = setting(
        "",
        "Pretrain on the sequences of this file instead of the graph's transcripts: a 3'UTR "
        "MPRA table (siegel_3utr_mpra) or the 5'UTR variant CSV; its labels are never read.",
    )

    def widths(self) -> tuple[int, ...]:
        return tuple(int(w) for w in self.projection.split(","))

    def checks(self) -> list[tuple[bool, str]]:
        try:
            widths_ok = len(self.widths()) == 3 and min(self.widths()) >= 1
        except ValueError:
            widths_ok = False
        return super().checks() + [
            (widths_ok, "projection: three positive comma-separated widths"),
            (self.kernel >= 1 and self.tracks in (4, 6), "kernel >= 1 and tracks 4 or 6"),
            (0 <= self.dropout < 1 and 0 <= self.mask < 1, "dropout and mask in [0, 1)"),
            (self.temperature > 0 and 0 <= self.ortholog_prob <= 1, "temperature > 0 and ortholog_prob in [0, 1]"),
            (self.max_length >= 32, "max_length >= 32"),
            (self.batch_size >= 2, "batch_size >= 2 (the batch holds the negatives)"),
        ]
