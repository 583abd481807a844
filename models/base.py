"""The model contract (in the style of PyKEEN): a registered `Model` declares its name, config,
the view it reads, how it builds inputs from the view and a training `Task` from the inputs, how
its trained modules embed and predict, which registered evaluators apply, and what it writes back.
The shared trainer, evaluators, run lifecycle, write-back, delete and CLI work from these
declarations alone."""

from __future__ import annotations

import dataclasses
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self

import numpy as np

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option
from kgctl.graph.connection import Connection
from kgctl.models.config import ModelConfig

if TYPE_CHECKING:
    import pyarrow as pa
    import torch
    from torch import Tensor, nn

    from kgctl.models.runs import Run


@dataclass(frozen=True)
class Writes:
    """What a model writes back: `relationship` edges from `start_label` to `end_label` nodes
    (scored, ranked, with provenance), and `embedding_<model>` vectors on `embedding_label`
    nodes under a vector index per (label, model). Labels and types come from the schema."""

    relationship: str | None = None
    start_label: str | None = None
    end_label: str | None = None
    embedding_label: str | None = None

    def describe(self, model: str) -> dict[str, Any]:
        return {
            "relationship": f"({self.start_label})-[:{self.relationship}]->({self.end_label})"
            if self.relationship
            else None,
            "embedding": f"{self.embedding_label}.embedding_{model}" if self.embedding_label else None,
        }


class Inputs(Protocol):
    """A model's inputs, built from its view and kept in the run folder, so that training
    workers, evaluation and prediction need no Neo4j."""

    meta: dict[str, Any]

    def save(self, path: Path) -> None: ...

    @classmethod
    def load(cls, path: Path) -> Self: ...


class ArrayInputs:
    """Inputs that are a dataclass of numpy arrays and a `meta` dict: saved as one compressed
    .npz (meta as JSON) and loaded without pickle, so a run folder holds no executable data."""

    meta: dict[str, Any]

    def save(self, path: Path) -> None:
        assert dataclasses.is_dataclass(self)
        arrays = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "meta"}
        np.savez_compressed(path, meta=np.array(json.dumps(self.meta)), **arrays)

    @classmethod
    def load(cls, path: Path) -> Self:
        assert dataclasses.is_dataclass(cls)
        with np.load(path, allow_pickle=False) as f:
            values: dict[str, Any] = {x.name: f[x.name] for x in dataclasses.fields(cls) if x.name != "meta"}
            return cls(**values, meta=json.loads(str(f["meta"])))


class Task(ABC):
    """One training problem for the shared trainer: the data, the module, batches and the loss.
    It is pickled to every DistributedDataParallel process, so it holds arrays, not tensors,
    until `to(device)`."""

    def __init__(self, name: str, config: ModelConfig, module_args: dict[str, Any]) -> None:
        self.name = name
        self.config = config
        self.module_args = module_args

    @abstractmethod
    def build_module(self) -> nn.Module:
        """The module, freshly initialised (the trainer seeds torch first)."""

    @abstractmethod
    def to(self, device: torch.device) -> None:
        """Move the data to the training device."""

    @abstractmethod
    def batches(self, epoch: int, rank: int, world: int) -> Iterator[Any]:
        """This process's batches of one epoch, deterministic for (seed, epoch, rank); every
        process must yield the same number of batches."""

    @abstractmethod
    def loss(self, module: nn.Module, batch: Any) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss of one batch and named scalar figures to average over the epoch."""

    @abstractmethod
    def fingerprint(self) -> str:
        """sha256 of the training data: a resumed run must see the same."""

    def start_epoch(self, module: nn.Module, epoch: int, rank: int) -> None:
        """Per-epoch state (e.g. a pool of negatives), computed under the trainer's autocast."""
        return None

    def epoch_facts(self, module: nn.Module) -> dict[str, float]:
        """Figures of the module to record after each epoch (e.g. a learned gate)."""
        return {}

    selection_metric = "validation"  # what `validate` returns, higher is better

    def has_validation(self) -> bool:
        """Whether `validate` returns figures (settings can be chosen only then)."""
        return False

    def validate(self, module: nn.Module) -> float | None:
        """The figure of the module (in eval mode) on validation data after an epoch; None when
        the task has none. The trainer keeps the best epoch's weights and stops early by it."""
        return None

    def warnings(self, epochs: list[dict[str, Any]]) -> list[str]:
        """Plain-language warnings about a finished training history (e.g. memorisation)."""
        return []


@dataclass
class Prediction:
    """What `predict` returns. `edges`: columns `start`, `end` (node ids), `score`, `rank` and
    any other property columns; `embeddings`: one vector per node of `embedding_ids`."""

    edges: pa.Table | None = None
    embedding_ids: list[str] | None = None
    embeddings: np.ndarray | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    highlights: list[dict[str, Any]] = field(default_factory=list)


class Model(ABC):
    """A registered model. Subclasses set the class attributes and implement the methods."""

    name: ClassVar[str]  # `kgctl train <name>`, `embedding_<name>`
    description: ClassVar[str]  # one line for `kgctl models`
    config_class: ClassVar[type[ModelConfig]]
    view: ClassVar[str]  # the registered view it reads (graph/views.py)
    writes: ClassVar[Writes]
    evaluators: ClassVar[tuple[str, ...]] = ()  # registered evaluators that apply; the first is the default
    item_kind: ClassVar[str | None] = None  # what `encode` reads ("molecule": SMILES; "rna": packed transcripts)
    predict_options: ClassVar[tuple[Option, ...]] = ()
    test_config: ClassVar[dict[str, Any]] = {}  # a few-second config for the contract test
    all_data: ClassVar[str] = "--split none"  # the train option that leaves nothing out

    def __init__(self, config: ModelConfig) -> None:
        if not isinstance(config, self.config_class):
            raise KgctlError(f"{self.name} needs a {self.config_class.__name__}")
        self.config = config

    @abstractmethod
    def build_inputs(self, conn: Connection, views: Path) -> Inputs:
        """Export the view (cached under `views`) and apply the config's rules."""

    @abstractmethod
    def load_inputs(self, path: Path) -> Inputs: ...

    @abstractmethod
    def task(self, inputs: Any) -> Task:
        """The training problem the run's config makes of the inputs (split, embedding)."""

    def left_out(self) -> str | None:
        """What training left out of the data (e.g. a split's held-out pairs), said in a phrase;
        None when it learned from all of it. Write-back asks for --allow-split otherwise."""
        return None

    @abstractmethod
    def describe(self, inputs: Any, task: Any) -> dict[str, Any]:
        """The run's `data` record: the view's fingerprint, counts and checksums."""

    @abstractmethod
    def build_module(self, **module_args: Any) -> nn.Module:
        """The module from the arguments its task recorded (to load a trained one)."""

    @abstractmethod
    def embed(self, run: Run, inputs: Any, device: str = "cpu", *, untrained: bool = False) -> np.ndarray:
        """The trained run's vectors of the nodes it writes embeddings for (the rows of
        `predict`'s `embedding_ids`): what shared evaluators and nearest-neighbour queries read.
        `untrained`: the same architecture freshly initialised (seeded by the run's seed), the
        control every evaluator reports beside the trained encoder."""

    def encode(self, run: Run, items: Any, device: str = "cpu", *, untrained: bool = False) -> np.ndarray:
        """The frozen representation [n, d] of labelled items of `item_kind` that need not be in
        the graph (what the `probe` evaluator reads); `untrained` as in `embed`."""
        raise KgctlError(f"{self.name} encodes no items outside its graph")

    def from_scratch(self, run: Run, data: Any, split: Any, seed: int, steps: int, device: str) -> np.ndarray | None:
        """The probe's from-scratch control: the encoder trained on `split.train` of the labelled
        `data` (a `probing.labels.Labelled`; `split` a `probing.heads.Split`) from random weights,
        its test predictions [len(split.test), T]; None when the model has none."""
        return None

    def fine_tune(
        self, run: Run, data: Any, split: Any, seed: int, device: str
    ) -> tuple[np.ndarray, dict[str, Any]] | None:
        """The probe's fine-tuned row: the trained encoder and a head trained together on
        `split.train` (settings chosen on `split.valid`), its test predictions and what it chose;
        None when the model has none."""
        return None

    def combined_features(self, items: Any, encoded: np.ndarray) -> dict[str, np.ndarray]:
        """Feature sets that join the representation `encoded` of `items` with another (e.g.
        fingerprints), each probed with the same head; none by default."""
        return {}

    def item_subsets(self, inputs: Any, data: Any) -> dict[str, np.ndarray]:
        """Named boolean masks over the labelled items that the probe also scores apart (e.g.
        items the run's graph links to anything, and the rest); none by default."""
        return {}

    def probe_facts(self, inputs: Any, data: Any) -> dict[str, Any]:
        """What the probe reports about the labelled items and the run's graph (e.g. how many
        of them the graph links to anything)."""
        return {}

    @abstractmethod
    def predict(self, run: Run, inputs: Any, module: nn.Module, options: dict[str, Any], device: str) -> Prediction:
        """Scores and embeddings of a trained module, as the `writes` declaration says."""
