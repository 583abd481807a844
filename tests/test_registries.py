"""Every registered model and ingest adapter has tests of its own (marked `model(name)` or
`adapter(name)`), and registration refuses a model whose declaration the platform cannot serve."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from kgctl.core.errors import KgctlError
from kgctl.ingest.base import ADAPTERS, adapter_class
from kgctl.models.base import Writes
from kgctl.models.cal import CAL
from kgctl.models.registry import available, register
from kgctl.testing.fixtures import cli_json, run_cli

TESTS = Path(__file__).parent
PLUGIN = TESTS / "plugin"  # a third-party model package with its entry point


def marked(kind: str) -> set[str]:
    """Names given to `pytest.mark.<kind>(...)` anywhere in the test files."""
    found: set[str] = set()
    for path in TESTS.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == kind
                and ast.unparse(node.func.value) == "pytest.mark"
            ):
                found |= {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return found


def test_every_registered_model_has_tests() -> None:
    missing = sorted(set(available()) - marked("model"))
    assert not missing, f"registered models without tests marked pytest.mark.model(...): {missing}"


def test_every_registered_adapter_has_tests() -> None:
    adapter_class("string")  # importing the package registers every adapter
    missing = sorted(set(ADAPTERS) - marked("adapter"))
    assert not missing, f"adapters without tests marked pytest.mark.adapter(...): {missing}"


@pytest.mark.slow
@pytest.mark.model("cal")
def test_a_third_party_model_registers_through_its_entry_point() -> None:
    env = {**os.environ, "PYTHONPATH": str(PLUGIN)}
    listed = cli_json(env, "models")["models"]
    plugin = {m["name"]: m for m in listed}["linear_map"]
    assert plugin["module"] == "kgctl_example_plugin" and plugin["predict_options"] == [
        "top-k",
        "min-score",
    ]
    assert plugin["writes"]["embedding"] == "Gene.embedding_linear_map" and plugin["evaluators"] == [
        "pairs",
        "evidence",
    ]
    proc = run_cli(env, "train", "linear_map", "--help")
    assert proc.returncode == 0 and "--dim INTEGER" in proc.stdout and "--pca-dim" in proc.stdout
    assert "linear_map" not in available()  # not installed in this process: nothing leaks


@pytest.mark.model("cal")
def test_registration_checks_the_declaration() -> None:
    class Bad(CAL):
        name = "bad"
        writes = Writes("LIKES", "Gene", "Gene")

    with pytest.raises(KgctlError, match="unknown relationship type 'LIKES'"):
        register(Bad)

    class Elsewhere(CAL):
        name = "elsewhere"
        view = "no-such-view"

    with pytest.raises(KgctlError, match="unknown view 'no-such-view'"):
        register(Elsewhere)

    class Clash(CAL):
        name = "cal"

    with pytest.raises(KgctlError, match="already registered"):
        register(Clash)
    assert available()["cal"] is CAL


@pytest.mark.model("cal")
def test_evaluator_registration_and_options_are_checked() -> None:
    from dataclasses import dataclass
    from typing import ClassVar

    from kgctl.core.options import setting
    from kgctl.models.association.evaluate import Pairs, PairsOptions
    from kgctl.models.evaluators import EvaluationResult, Evaluator, EvaluatorOptions, register_evaluator

    @dataclass
    class Listy(EvaluatorOptions):
        values: list[str] = setting((), "Not a type the command line can generate.")

    class Bad(Evaluator[EvaluatorOptions, EvaluationResult]):
        name = "Bad Name"
        description = "x"
        options_class: ClassVar[type] = EvaluatorOptions

    with pytest.raises(KgctlError, match="`name` must match"):
        register_evaluator(Bad)
    Bad.name = "bad"
    Bad.options_class = dict
    with pytest.raises(KgctlError, match="`options_class` must be a dataclass"):
        register_evaluator(Bad)
    Bad.options_class = Listy
    with pytest.raises(TypeError, match="is not str, int, float, bool"):
        register_evaluator(Bad)
    assert Pairs.parse({"seeds": "1,2", "splits": None}) == PairsOptions(seeds="1,2")
    with pytest.raises(KgctlError, match="evaluator pairs takes no option --rf-trees"):
        Pairs.parse({"rf_trees": 3})
    with pytest.raises(KgctlError, match="--seeds: 42 is not str"):
        Pairs.parse({"seeds": 42})
    from kgctl.models.probing.evaluate import Probe

    with pytest.raises(KgctlError, match="--head: 'svm' is not one of , ridge, logistic, mlp"):
        Probe.parse({"head": "svm"})
