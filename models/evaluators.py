"""The evaluator contract and registry (as PyKEEN's evaluators): a registered `Evaluator` declares
its name and typed options (a dataclass of `setting`s, generated into `kgctl evaluate` the way a
model's config is generated into `kgctl train`) and returns a typed result that serialises to the
run's JSON, its headline and its report. Models name the evaluators that apply to them (the first
is their default); `kgctl evaluate RUN --evaluator NAME` runs one."""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option, config_options, field_types
from kgctl.core.progress import OnProgress, silent
from kgctl.graph.connection import Connection

if TYPE_CHECKING:
    from kgctl.models.base import Model
    from kgctl.models.runs import Run

BUILT_IN = ("kgctl.models.association", "kgctl.models.probing", "kgctl.models.retrieval")  # shared evaluators
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass
class Context:
    """What an evaluator reads: the trained run, its model (with the run's config), the inputs
    kept in the run folder, the graph, the device and the progress callback."""

    run: Run
    model: Model
    inputs: Any
    conn: Connection
    device: str = "cpu"
    on_progress: OnProgress = silent


@dataclass
class EvaluatorOptions:
    """An evaluator's options: subclass with `setting(default, help)` fields of str, int, float
    or bool (comma-separated lists are strings, parsed by the evaluator with `comma_list`)."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class EvaluationResult:
    """An evaluator's typed result: a dataclass of figures that serialises to plain JSON."""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass
class MethodsResult(EvaluationResult):
    """The common shape of a protocol's result: figures per method (the model, its controls and
    the baselines, on the same data) and facts about the data and protocol, written flat."""

    task: str
    methods: dict[str, Any]
    facts: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, **self.facts, "methods": self.methods}


Opts = TypeVar("Opts", bound=EvaluatorOptions)
Res = TypeVar("Res", bound=EvaluationResult)


class Evaluator(ABC, Generic[Opts, Res]):
    """A registered evaluation protocol. `kind` names the run file and metrics key it writes
    (`evaluation.json` unless a protocol keeps its own, e.g. `evidence`)."""

    name: ClassVar[str]
    description: ClassVar[str]
    options_class: ClassVar[type]  # an EvaluatorOptions dataclass (checked at registration)
    result_class: ClassVar[type[EvaluationResult]] = MethodsResult
    kind: ClassVar[str] = "evaluation"

    @classmethod
    def options(cls) -> tuple[Option, ...]:
        """The command-line options, from the options dataclass (`--name`, typed, with help)."""
        return config_options(cls.options_class)

    @classmethod
    def parse(cls, given: dict[str, Any]) -> EvaluatorOptions:
        """The typed options from the given ones (None means not given); an unknown name or a
        value of the wrong type is an error naming the option."""
        fields = field_types(cls.options_class)
        unknown = sorted(set(given) - set(fields))
        if unknown:
            raise KgctlError(
                f"evaluator {cls.name} takes no option {', '.join('--' + u.replace('_', '-') for u in unknown)}"
            )
        choices = {f.name: tuple(f.metadata.get("choices") or ()) for f in dataclasses.fields(cls.options_class)}
        for key, value in given.items():
            allowed = choices[key]
            if value is not None and allowed and value not in allowed:
                raise KgctlError(f"--{key.replace('_', '-')}: {value!r} is not one of {', '.join(allowed)}")
            plain = fields[key][0]
            ok = isinstance(value, plain) or (plain is float and isinstance(value, int))
            if value is not None and (not ok or (plain is not bool and isinstance(value, bool))):
                raise KgctlError(f"--{key.replace('_', '-')}: {value!r} is not {plain.__name__}")
        options = cls.options_class(**{k: v for k, v in given.items() if v is not None})
        assert isinstance(options, EvaluatorOptions)
        return options

    @abstractmethod
    def evaluate(self, ctx: Context, options: Opts) -> Res:
        """Figures of a trained run (held out, beside baselines)."""

    def headline(self, result: Res) -> dict[str, Any]:
        """The figures recorded on the run and its ModelRun (default: the whole result)."""
        return result.to_dict()

    def report(self, result: dict[str, Any]) -> list[str]:
        """The result (as its JSON dict, with `run_id`) as lines of text for a person."""
        return json.dumps(result, indent=1, default=str).splitlines()


EVALUATORS: dict[str, type[Evaluator[Any, Any]]] = {}
E = TypeVar("E", bound=type[Evaluator[Any, Any]])


def register_evaluator(cls: E) -> E:
    """Class decorator: check an evaluator's declaration and add it to the registry."""
    where = f"evaluator {cls.__name__}"
    if not NAME.match(getattr(cls, "name", "")):
        raise KgctlError(f"{where}: `name` must match {NAME.pattern}")
    for attr, base in (("options_class", EvaluatorOptions), ("result_class", EvaluationResult)):
        value = getattr(cls, attr, None)
        if not (isinstance(value, type) and issubclass(value, base) and dataclasses.is_dataclass(value)):
            raise KgctlError(f"{where}: `{attr}` must be a dataclass subclassing {base.__name__}")
    field_types(cls.options_class)  # str, int, float, bool only: what the CLI can generate
    if cls.name in EVALUATORS and EVALUATORS[cls.name] is not cls:
        raise KgctlError(f"{where}: an evaluator named {cls.name!r} is already registered")
    EVALUATORS[cls.name] = cls
    return cls


def available() -> dict[str, type[Evaluator[Any, Any]]]:
    """Every registered evaluator, from the model packages and the shared families, by name."""
    from kgctl.models.registry import available as models

    models()
    for module in BUILT_IN:
        importlib.import_module(module)
    return dict(sorted(EVALUATORS.items()))


class Kinded(Protocol):
    name: ClassVar[str]
    kind: ClassVar[str]
    description: ClassVar[str]


K = TypeVar("K", bound=Kinded)
C = TypeVar("C", bound=type)


class KindRegistry(Generic[K]):
    """Components of shared evaluators registered per kind of item (a model's `item_kind`): label
    sets, baselines, retrieval tasks. The package that defines an item format registers them."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.entries: dict[str, type[K]] = {}

    def register(self, cls: C) -> C:
        """Class decorator: add a component with a `name` and a `kind`."""
        name = getattr(cls, "name", "")
        if not NAME.match(name.replace("-", "_")) or not getattr(cls, "kind", ""):
            raise KgctlError(f"{self.what} {cls.__name__}: needs a `kind` and a `name` matching {NAME.pattern}")
        if name in self.entries and self.entries[name] is not cls:
            raise KgctlError(f"a {self.what} named {name!r} is already registered")
        self.entries[name] = cls
        return cls

    def of_kind(self, kind: str) -> list[K]:
        """The components of one kind of item, instantiated, in registration order."""
        return [cls() for cls in self.entries.values() if cls.kind == kind]

    def named(self, name: str, kind: str) -> K:
        """The component of that name and kind (the first of the kind when `name` is empty)."""
        found = {c.name: c for c in self.of_kind(kind)}
        chosen = name or next(iter(found), "")
        if chosen not in found:
            raise KgctlError(f"no {kind} {self.what} {chosen!r}; registered: {', '.join(found) or 'none'}")
        return found[chosen]


def item_kind(model: Model, evaluator: str) -> str:
    """The kind of item a model's `encode`/`embed` reads, which the shared evaluators need."""
    if model.item_kind is None:
        raise KgctlError(f"{model.name} declares no item_kind: the {evaluator} evaluator does not apply")
    return model.item_kind


def evaluator_class(name: str) -> type[Evaluator[Any, Any]]:
    found = available()
    if name not in found:
        raise KgctlError(f"unknown evaluator {name!r}; registered: {', '.join(found) or 'none'}")
    return found[name]
