"""What every gene-association model reads: the gene features, the positive pairs and the split
(each model's own settings subclass `AssociationConfig`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kgctl.core.options import setting
from kgctl.graph.schema import STRING_CHANNELS
from kgctl.models.config import ModelConfig

SPLITS = ("edge", "node", "none")
HUBNESS = ("zscore", "csls", "none")
RELATIONSHIPS = ("INTERACTS_WITH", "CO_ESSENTIAL")
DEFAULT_MIN_SCORE = {"INTERACTS_WITH": 700.0}


@dataclass
class AssociationConfig(ModelConfig):
    """What every gene-association model reads: the features, the positives and the split."""

    dataset: str = setting(
        "",
        "Dataset id of the gene features (required; `MATCH (d:Dataset) RETURN d.id`). Several, "
        "comma-separated, are combined: the first decides the genes, each adds a standardised block.",
    )
    relationship: str = setting("INTERACTS_WITH", "Positives' relationship type.", RELATIONSHIPS)
    min_score: float | None = setting(None, "Positives score at least this (default 700 for STRING).")
    channel: str | None = setting(None, "Or positives by a STRING channel, e.g. experiments.", STRING_CHANNELS)
    min_channel: float = setting(700.0, "... at least this on the channel.")
    max_missing: float = setting(0.2, "Genes with a larger share of missing features are left out.")
    pca_dim: int = setting(50, "PCA dimension of the input embedding.")
    split: str = setting("edge", "Train on an edge split, a node split or all positives.", SPLITS)
    test_fraction: float = setting(0.2, "Edge split: the share of test pairs.")
    validation_fraction: float = setting(0.1, "The share of validation pairs.")
    unseen_fraction: float = setting(0.3, "Node split: the share of genes held out.")
    patience: int = setting(
        20,
        "Stop after this many epochs without a better validation AUC (0: never early); "
        "the best epoch's weights are kept either way.",
    )
    hubness: str = setting(
        "zscore",
        "Per-gene rankings corrected for hub genes: each partner's scores standardised "
        "over all genes (zscore), CSLS, or raw scores (none).",
        HUBNESS,
    )

    def checks(self) -> list[tuple[bool, str]]:
        return super().checks() + [
            (
                self.channel is None or self.relationship == "INTERACTS_WITH",
                "channel filters apply to INTERACTS_WITH only",
            ),
            (self.pca_dim >= 2, "pca_dim >= 2"),
            (
                0 < self.test_fraction < 1 and 0 <= self.validation_fraction < 1 - self.test_fraction,
                "fractions out of range",
            ),
            (0 < self.unseen_fraction < 1, "unseen_fraction must be in (0, 1)"),
        ]

    @property
    def threshold(self) -> float | None:
        """The positives' score threshold: `min_score`, else 700 for STRING's combined score
        (CO_ESSENTIAL edges are already selected when they are built)."""
        if self.min_score is not None:
            return self.min_score
        return DEFAULT_MIN_SCORE.get(self.relationship)

    def shared(self) -> dict[str, Any]:
        """The data settings every association model reads (not the trainer's), to build another
        model on the same data."""
        own = set(AssociationConfig.__dataclass_fields__) - set(ModelConfig.__dataclass_fields__)
        return {name: getattr(self, name) for name in sorted(own)}
