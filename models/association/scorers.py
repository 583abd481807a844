"""Scores of gene pairs, and the registry of pair baselines (as PyKEEN registers its models): a
baseline is fit on one split's training data and then scores any pair, beside every registered
gene-association model on the same pairs. Built-in baselines register in `baselines.py`; a model
package may register its own (CAL registers the bilinear form trained with its loss)."""

from __future__ import annotations

import itertools
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np

from kgctl.core.errors import KgctlError
from kgctl.models import metrics
from kgctl.models.association.config import AssociationConfig
from kgctl.models.association.data import Inputs, Split
from kgctl.models.config import ModelConfig
from kgctl.models.neighbours import Rows

PairScore = Callable[[np.ndarray], np.ndarray]  # int [P, 2] gene indices -> float [P]


@dataclass
class Scores:
    """A fitted method's scores: `pairs` of any [P, 2] set; `rows` of blocks of the all-pairs
    matrix (for rankings and predictions); `vectors`, the genes' embedding where it has one."""

    pairs: PairScore
    rows: Rows | None = None
    vectors: np.ndarray | None = None


@dataclass
class SplitData:
    """What a baseline may learn from for one split and seed: the split's training pairs (never
    its validation or test pairs), the input embedding fit on its training genes, the data
    settings, and the configs the compared models chose on its validation pairs (by name)."""

    inputs: Inputs
    split: Split
    emb: np.ndarray
    data: AssociationConfig
    chosen: dict[str, ModelConfig] = field(default_factory=dict)
    validation: tuple[np.ndarray, np.ndarray] | None = None  # the split's validation pairs, their negatives


class PairScorer(ABC):
    """A registered pair baseline: `fit` on a split's training data, returning its `Scores`.
    `grid` holds the settings chosen on the split's validation pairs, as a model's `search` is
    (the first value of each is the default, used where a split has no validation pairs)."""

    name: ClassVar[str]
    description: ClassVar[str]
    grid: ClassVar[dict[str, tuple[Any, ...]]] = {}

    def __init__(self, **settings: Any) -> None:
        self.settings = {key: values[0] for key, values in self.grid.items()} | settings

    @abstractmethod
    def fit(self, data: SplitData) -> Scores: ...


def fit_chosen(cls: type[PairScorer], data: SplitData) -> tuple[Scores, dict[str, Any]]:
    """The scorer fit at every combination of its grid on the training pairs, the one with the
    best validation AUC kept, and the record of the choice (every candidate's AUC)."""
    combos = [dict(zip(cls.grid, values, strict=True)) for values in itertools.product(*cls.grid.values())]
    if len(combos) <= 1 or data.validation is None or not len(data.validation[0]):
        chosen = combos[0] if combos else {}
        return cls(**chosen).fit(data), {"settings": chosen}
    positives, negatives = data.validation
    best: tuple[float, Scores, dict[str, Any]] | None = None
    candidates = []
    for combo in combos:
        scores = cls(**combo).fit(data)
        auc = metrics.auc(scores.pairs(positives), scores.pairs(negatives))
        candidates.append({"settings": combo, "validation_auc": round(auc, 4)})
        if best is None or auc > best[0]:
            best = (auc, scores, combo)
    assert best is not None
    return best[1], {"settings": best[2], "metric": "validation_auc", "value": best[0], "candidates": candidates}


SCORERS: dict[str, type[PairScorer]] = {}
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
S = TypeVar("S", bound=type[PairScorer])


def register_scorer(cls: S) -> S:
    """Class decorator: add a pair baseline to the registry (its name is its column in every table)."""
    if not NAME.match(getattr(cls, "name", "")):
        raise KgctlError(f"pair scorer {cls.__name__}: `name` must match {NAME.pattern}")
    if cls.name in SCORERS and SCORERS[cls.name] is not cls:
        raise KgctlError(f"pair scorer {cls.__name__}: a scorer named {cls.name!r} is already registered")
    SCORERS[cls.name] = cls
    return cls


def scorers() -> dict[str, type[PairScorer]]:
    """Every registered pair baseline, built-in and from model packages, in registration order."""
    from kgctl.models.registry import available

    available()  # model packages register their scorers on import
    return dict(SCORERS)
