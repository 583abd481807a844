"""The contract every registered model passes, as PyKEEN's `ModelTestCase`: a test class per model
(`TestCAL(ModelContract)`, …) with separate tests, and a meta-test that every registered model and
evaluator has its tests. `FastContract` needs no Neo4j: deterministic batches, as many batches on
every DDP rank, inputs that survive the run folder, a finite first loss. `ModelContract` trains on
its view's generated example graph in a real Neo4j (a fresh clone without ../shared runs every
model's): stop and resume to the weights of an uninterrupted run, embed, evaluate with the model's
first evaluator, predict and write back what it declares (with provenance, idempotent), and delete,
which leaves the graph as it was before the runs."""

from __future__ import annotations

import ast
import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection
from kgctl.graph.writeback import embedding_property, vector_index_name
from kgctl.models import runs
from kgctl.models.base import Model, Task
from kgctl.models.config import ModelConfig
from kgctl.models.evaluators import available as evaluators
from kgctl.models.evaluators import evaluator_class
from kgctl.models.registry import available
from kgctl.models.trainer import MODEL
from kgctl.testing.fixtures import VIEW_EXAMPLES, VIEW_TOYS, TestServer, graph_counts, wipe


def snapshot(conn: Connection) -> dict[str, Any]:
    """Counts, property keys and vector indexes: what a delete must restore."""
    keys = conn.query("CALL db.propertyKeys() YIELD propertyKey RETURN collect(propertyKey) AS k")[0]["k"]
    in_use = [
        k
        for k in keys
        if conn.query(
            "MATCH (n) WHERE n[$k] IS NOT NULL RETURN 1 AS x LIMIT 1 UNION "
            "MATCH ()-[r]->() WHERE r[$k] IS NOT NULL RETURN 1 AS x LIMIT 1",
            {"k": k},
        )
    ]
    vector = conn.query("SHOW VECTOR INDEXES YIELD name RETURN collect(name) AS n")[0]["n"]
    return {"counts": graph_counts(conn), "properties": sorted(in_use), "vector_indexes": sorted(vector)}


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return dict(torch.load(folder / MODEL, weights_only=False)["state_dict"])


def same(a: Any, b: Any) -> bool:
    """Deep equality of batches and inputs: tensors, arrays, containers and dataclasses."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and bool(np.array_equal(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return isinstance(b, list | tuple) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        return type(a) is type(b) and all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    return bool(a == b)


class FastContract:
    """Per-model checks without Neo4j, on the view's toy inputs (`VIEW_TOYS`)."""

    name: ClassVar[str]

    def model(self) -> Model:
        cls = available()[self.name]
        return cls(cls.config_class(**cls.test_config))

    def task(self, model: Model) -> Task:
        task = model.task(VIEW_TOYS[model.view](model.config))
        task.to(torch.device("cpu"))
        return task

    def test_batches_are_deterministic(self) -> None:
        model = self.model()
        first, again = list(self.task(model).batches(1, 0, 1)), list(self.task(model).batches(1, 0, 1))
        assert first and same(first, again)

    def test_every_rank_takes_the_same_number_of_batches(self) -> None:
        task = self.task(self.model())
        assert len(list(task.batches(0, 0, 2))) == len(list(task.batches(0, 1, 2)))

    def test_inputs_survive_the_run_folder(self, tmp_path: Path) -> None:
        model = self.model()
        inputs = VIEW_TOYS[model.view](model.config)
        inputs.save(tmp_path / "inputs.npz")
        assert same(model.load_inputs(tmp_path / "inputs.npz"), inputs)

    def test_the_first_loss_is_finite(self) -> None:
        model = self.model()
        task = self.task(model)
        torch.manual_seed(0)
        module = task.build_module()
        task.start_epoch(module, 0, 0)
        loss, figures = task.loss(module, next(iter(task.batches(0, 0, 1))))
        assert torch.isfinite(loss) and all(torch.isfinite(v) for v in figures.values())


@dataclass
class Trained:
    """A model trained on its example graph: an uninterrupted run and one stopped after an epoch."""

    conn: Connection
    data_dir: Path
    model: Model
    before: dict[str, Any]
    whole: runs.Run
    part: runs.Run


class ModelContract(FastContract):
    """The contract against a real Neo4j (slow tests), besides the fast layer; they run in order
    on one trained pair of runs, and the last deletes them."""

    @pytest.fixture(scope="class")
    @classmethod
    def trained(cls, neo4j_server: TestServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
        model_class = available()[cls.name]
        folder = tmp_path_factory.mktemp(cls.name)
        with neo4j_server.connect() as conn:
            wipe(conn)
            params = VIEW_EXAMPLES[model_class.view](conn, folder)
            config: ModelConfig = model_class.config_class(**{**model_class.test_config, **params})
            assert config.epochs >= 2, "the contract stops after one epoch and resumes"
            before = snapshot(conn)
            data_dir = folder / "kgctl"
            whole = runs.train(conn, data_dir, cls.name, config, device="cpu")
            part = runs.train(conn, data_dir, cls.name, config, device="cpu", stop_after=1)
            yield Trained(conn, data_dir, model_class(config), before, whole, part)

    @pytest.mark.slow
    def test_stop_and_resume_reach_the_weights_of_one_run(self, trained: Trained) -> None:
        assert trained.whole.record["status"] == "trained" and trained.whole.record["view"] == trained.model.view
        assert trained.part.record["status"] == "interrupted" and not (trained.part.dir / MODEL).exists()
        resumed = runs.resume(trained.conn, trained.data_dir, trained.part.id, device="cpu")
        assert resumed.record["metrics"]["training"]["resumed_from_epoch"] == 1
        a, b = weights(trained.whole.dir), weights(trained.part.dir)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    @pytest.mark.slow
    def test_embed_has_a_row_per_node_and_is_deterministic(self, trained: Trained) -> None:
        run, model = trained.whole, trained.model
        inputs = model.load_inputs(run.dir / runs.INPUTS)
        vectors = model.embed(run, inputs)
        assert vectors.ndim == 2 and np.isfinite(vectors).all()
        assert np.array_equal(vectors, model.embed(run, inputs))
        prediction = runs.predict(None, trained.data_dir, run.id, {}, device="cpu")["prediction"]
        assert prediction  # the predicted embeddings are the same rows (written back below)

    @pytest.mark.slow
    def test_evaluate_with_the_first_evaluator(self, trained: Trained) -> None:
        run, model = trained.whole, trained.model
        evaluation = runs.evaluate(trained.conn, trained.data_dir, run.id, {}, device="cpu")
        evaluator = evaluator_class(evaluation["evaluator"])()
        assert evaluation["evaluator"] == model.evaluators[0] and evaluator.report(evaluation)
        assert (run.dir / f"{evaluator.kind}.json").exists()
        recorded = trained.conn.query("MATCH (m:ModelRun {id: $id}) RETURN m.metrics AS m", {"id": run.id})
        assert json.loads(recorded[0]["m"])[evaluator.kind]

    @pytest.mark.slow
    def test_predict_writes_back_what_it_declares(self, trained: Trained) -> None:
        conn, data_dir, run, model = trained.conn, trained.data_dir, trained.whole, trained.model
        if model.left_out():  # trained without its held-out data: written back only when asked
            with pytest.raises(KgctlError, match="--allow-split"):
                runs.predict(conn, data_dir, run.id, {}, device="cpu", write_back=True)
        first = runs.predict(conn, data_dir, run.id, {}, device="cpu", write_back=True, allow_split=True)
        again = runs.predict(conn, data_dir, run.id, {}, device="cpu", write_back=True, allow_split=True)
        runs.predict(conn, data_dir, trained.part.id, {}, device="cpu", write_back=True, allow_split=True)
        writes, name = model.writes, model.name
        if writes.relationship:
            count = first["written"]["relationships"]["count"]
            assert count > 0 and again["written"]["relationships"]["count"] == count
            rows = conn.query(
                f"MATCH (:{writes.start_label})-[p:{writes.relationship}]->(:{writes.end_label}) "
                "WHERE p.run = $id RETURN count(p) AS n, collect(DISTINCT [p.source, p.source_version, "
                "p.licence, p.model]) AS prov, min(p.created_at) AS at",
                {"id": run.id},
            )[0]
            assert rows["n"] == count and len(rows["prov"]) == 1 and None not in rows["prov"][0]
            assert rows["prov"][0][3] == name and rows["at"] is not None
        if writes.embedding_label:
            prop = embedding_property(name)
            owned = conn.query(
                f"MATCH (n:{writes.embedding_label}) WHERE n.{prop}_run = $id RETURN count(n) AS n",
                {"id": trained.part.id},
            )[0]["n"]
            assert owned == first["written"]["embeddings"]["count"] > 0  # the later write-back owns them
            assert len(model.embed(run, model.load_inputs(run.dir / runs.INPUTS))) == owned
            indexes = conn.query("SHOW VECTOR INDEXES YIELD name RETURN collect(name) AS n")[0]["n"]
            assert vector_index_name(writes.embedding_label, name) in indexes

    @pytest.mark.slow
    def test_delete_restores_the_graph(self, trained: Trained) -> None:
        for run in (trained.whole, trained.part):
            runs.delete(trained.conn, trained.data_dir, run.id)
            assert not run.dir.exists()
        assert snapshot(trained.conn) == trained.before
        assert not runs.list_runs(trained.data_dir)


@pytest.mark.model("cal")
class TestCAL(ModelContract):
    name = "cal"


@pytest.mark.model("graphsage")
class TestGraphSAGE(ModelContract):
    name = "graphsage"


@pytest.mark.model("infoalign")
class TestInfoAlign(ModelContract):
    name = "infoalign"


@pytest.mark.model("isoclr")
class TestIsoCLR(ModelContract):
    name = "isoclr"


def contract_classes() -> dict[str, type[FastContract]]:
    return {
        c.name: c
        for c in globals().values()
        if isinstance(c, type) and issubclass(c, ModelContract) and "name" in vars(c)
    }


def test_every_registered_model_has_a_contract_class() -> None:
    missing = sorted(set(available()) - set(contract_classes()))
    assert not missing, f"registered models without a ModelContract test class here: {missing}"


def test_every_registered_evaluator_is_exercised_by_a_test() -> None:
    """Each evaluator's name appears as `evaluator="NAME"` / `--evaluator NAME` in a test, or is
    the first evaluator of a model (which its contract class runs)."""
    tests = Path(__file__).parent
    named: set[str] = {m.evaluators[0] for m in available().values() if m.evaluators}
    for path in tests.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.keyword) and node.arg == "evaluator" and isinstance(node.value, ast.Constant):
                named.add(str(node.value.value))
            if isinstance(node, ast.Call):
                values = [a.value for a in node.args if isinstance(a, ast.Constant)]
                named |= {str(values[i + 1]) for i, v in enumerate(values[:-1]) if v == "--evaluator"}
    missing = sorted(set(evaluators()) - named)
    assert not missing, f"registered evaluators that no test runs: {missing}"
