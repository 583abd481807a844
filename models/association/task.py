"""The training problem every gene-association model shares: an input embedding, training pairs,
and validation pairs with their negatives whose AUC the trainer selects by."""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from kgctl.models import metrics
from kgctl.models.association.config import AssociationConfig
from kgctl.models.association.data import Split
from kgctl.models.base import Task


class PairTask(Task):
    """A gene-pair task of any association model: the embedding, the training pairs (indices into
    it), the split and embedding facts the run records, and validation pairs with their negatives
    (never test pairs), whose AUC the trainer selects by."""

    selection_metric = "validation_auc"

    def __init__(
        self,
        name: str,
        config: AssociationConfig,
        module_args: dict[str, Any],
        emb: np.ndarray,
        pairs: np.ndarray,
        split: Split | None,
        embedding: dict[str, Any] | None,
        validation: tuple[np.ndarray, np.ndarray] | None,
    ) -> None:
        super().__init__(name, config, module_args)
        self.emb, self.pairs = emb, pairs
        self.split, self.embedding, self.validation = split, embedding or {}, validation

    def fingerprint(self) -> str:
        checked = [self.emb, self.pairs.astype(np.int64), *(self.validation or ())]
        return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in checked)).hexdigest()

    def has_validation(self) -> bool:
        return self.validation is not None and len(self.validation[0]) > 0

    @abstractmethod
    def score_pairs(self, module: nn.Module, pair_sets: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The module's score of every pair of each set, in evaluation mode."""

    def validate(self, module: nn.Module) -> float | None:
        """AUC of the validation pairs against their negatives."""
        if not self.has_validation():
            return None
        assert self.validation is not None
        pos, neg = self.score_pairs(module, self.validation)
        return metrics.auc(pos, neg)
