"""What a probe reads, registered by kind of item: label sets (labelled items with the groups their
splits keep whole, or a published split), feature baselines (a head on features any user could
compute, e.g. fingerprints or k-mer counts) and predictor baselines (a whole method, e.g. a
random forest on fingerprints). A model names the kind of item its `encode` reads; the package
that defines an item format registers its sets and baselines."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from kgctl.core.errors import KgctlError
from kgctl.models.evaluators import KindRegistry
from kgctl.models.probing.heads import METRICS, Split

if TYPE_CHECKING:
    from kgctl.models.evaluators import Context
    from kgctl.models.probing.evaluate import ProbeOptions


@dataclass
class Labelled:
    """Items (in the format of their kind: SMILES strings, packed transcripts), labels [n, T]
    (NaN: not measured), the group of each item (scaffold, gene, homology group, overlapping
    fragments) and, for a set with a published split, that split (every seed keeps it)."""

    name: str
    items: Any
    labels: np.ndarray
    groups: np.ndarray
    metric: str
    fixed_split: Split | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise KgctlError(f"{self.name}: metric {self.metric!r} is not one of {', '.join(METRICS)}")
        self.labels = np.asarray(self.labels, dtype=np.float64).reshape(len(self.groups), -1)


class LabelSet(ABC):
    """A registered labelled set of one kind of item, read from a file (`--file`)."""

    name: ClassVar[str]
    kind: ClassVar[str]
    description: ClassVar[str]
    head: ClassVar[str] = "ridge"  # the head its protocol uses unless --head names another
    fractions: ClassVar[str] = "1"  # the shares of the training labels its protocol reads

    @abstractmethod
    def load(self, options: ProbeOptions, ctx: Context) -> Labelled: ...


class FeatureBaseline(ABC):
    """Features of a kind of item that any user could compute; the probe's head runs on them."""

    name: ClassVar[str]
    kind: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def features(self, items: Any) -> np.ndarray: ...


class PredictorBaseline(ABC):
    """A whole baseline method on a kind of item: test predictions [len(split.test), T] from the
    split's training rows (settings chosen on its validation rows where it has any)."""

    name: ClassVar[str]
    kind: ClassVar[str]
    description: ClassVar[str]

    def __init__(self) -> None:
        self.chosen: dict[str, Any] = {}  # the settings the last fit chose on validation

    @abstractmethod
    def fit_predict(self, data: Labelled, split: Split, seed: int, options: ProbeOptions) -> np.ndarray: ...


LABEL_SETS = KindRegistry[LabelSet]("label set")
FEATURES = KindRegistry[FeatureBaseline]("feature baseline")
PREDICTORS = KindRegistry[PredictorBaseline]("predictor baseline")
register_label_set = LABEL_SETS.register
register_features = FEATURES.register
register_predictor = PREDICTORS.register
