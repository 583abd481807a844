"""Scores of gene pairs, and the registry of pair baselines (as PyKEEN registers its models): a
baseline is fit on one split's training data and then scores any pair, beside every registered
gene-association model on the same pairs. Built-in baselines register in `baselines.py`; a model
package may register its own (CAL registers the bilinear form trained with its loss)."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

import numpy as np

from kgctl.core.errors import KgctlError
from kgctl.core.progress import OnProgress, silent
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
    device: str = "cpu"
    on_progress: OnProgress = silent


class PairScorer(ABC):
    """A registered pair baseline: `fit` on a split's training data, returning its `Scores`."""

    name: ClassVar[str]
    description: ClassVar[str]

    @abstractmethod
    def fit(self, data: SplitData) -> Scores: ...


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
