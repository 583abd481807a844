"""The model registry: built-in models register on import, third-party ones through the
`kgctl.models` entry-point group (`[project.entry-points."kgctl.models"] mine = "pkg.mod:Mine"`).
Registration checks the declaration, so a model cannot write labels or types the schema lacks."""

from __future__ import annotations

import importlib
import re
from importlib.metadata import entry_points
from typing import TypeVar

from kgctl.core.errors import KgctlError
from kgctl.graph.schema import check_label, check_relationship_type
from kgctl.graph.views import VIEWS
from kgctl.models.base import Model
from kgctl.models.config import ModelConfig

ENTRY_POINT_GROUP = "kgctl.models"
BUILT_IN = (
    "kgctl.models.cal",
    "kgctl.models.graphsage",
    "kgctl.models.infoalign",
    "kgctl.models.isoclr",
)
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MODELS: dict[str, type[Model]] = {}
_loaded = False
M = TypeVar("M", bound=type[Model])


def register(cls: M) -> M:
    """Class decorator: check the model's declaration and add it to the registry."""
    where = f"model {cls.__name__}"
    if not NAME.match(getattr(cls, "name", "")):
        raise KgctlError(f"{where}: `name` must match {NAME.pattern}")
    if not (isinstance(cls.config_class, type) and issubclass(cls.config_class, ModelConfig)):
        raise KgctlError(f"{where}: `config_class` must subclass ModelConfig")
    if cls.view not in VIEWS:
        raise KgctlError(f"{where}: unknown view {cls.view!r} (views: {', '.join(VIEWS)})")
    w = cls.writes
    if w.relationship is not None:
        check_relationship_type(w.relationship)
        check_label(w.start_label or "")
        check_label(w.end_label or "")
    if w.embedding_label is not None:
        check_label(w.embedding_label)
    if cls.name in MODELS and MODELS[cls.name] is not cls:
        raise KgctlError(f"{where}: a model named {cls.name!r} is already registered")
    MODELS[cls.name] = cls
    return cls


def available() -> dict[str, type[Model]]:
    """Every registered model, built-in and from entry points, by name."""
    global _loaded
    if not _loaded:
        _loaded = True
        for module in BUILT_IN:
            importlib.import_module(module)
        for point in entry_points(group=ENTRY_POINT_GROUP):
            try:
                register(point.load())
            except Exception as exc:  # a broken plug-in is one clear line naming its entry point
                raise KgctlError(f"entry point {point.name} = {point.value}: {exc}") from exc
    return dict(sorted(MODELS.items()))


def model_class(name: str) -> type[Model]:
    models = available()
    if name not in models:
        raise KgctlError(f"unknown model {name!r}; registered: {', '.join(models) or 'none'}")
    return models[name]


def create(name: str, config: ModelConfig) -> Model:
    return model_class(name)(config)
