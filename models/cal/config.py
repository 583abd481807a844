"""CAL's settings on top of the association family's: the reference hyper-parameters
(methods/cal.md §4) as defaults except where validation chose otherwise (README, "What to expect")."""

from __future__ import annotations

from dataclasses import dataclass

from kgctl.core.options import setting
from kgctl.models.association.config import AssociationConfig

LOSSES = ("in-batch", "random-negatives")
TRANSFORMS = ("both", "half")


@dataclass
class CALConfig(AssociationConfig):
    hidden_dim: int = setting(1024, "Width of the MLP g.")
    layers: int = setting(3, "Hidden blocks of g.")
    transform: str = setting(
        "half",
        "The reference's half transform (one gene through f, scored both ways), or "
        "both genes through f (memorises its training pairs on the real data).",
        TRANSFORMS,
    )
    mask: bool = setting(True, "In-batch loss: mask known partners and repeated genes.")
    loss: str = setting("in-batch", "In-batch InfoNCE, or K random negatives from a pool of f(X).", LOSSES)
    negatives: int = setting(511, "random-negatives: K per anchor.")
    temperature: float = setting(0.05, "InfoNCE temperature τ.")
    search: str = setting(
        "temperature=0.05,0.1",
        "Settings to choose among on validation (e.g. "
        "'transform=half,both;mask=true,false'): one model each, the best kept, all recorded.",
    )

    def checks(self) -> list[tuple[bool, str]]:
        return super().checks() + [
            (self.loss == "in-batch" or self.transform == "both", "random negatives need transform = both"),
            (self.hidden_dim >= 1 and self.layers >= 1, "hidden_dim and layers >= 1"),
            (self.batch_size >= 8, "batch_size >= 8"),
            (self.temperature > 0, "temperature must be positive"),
        ]
