"""The contract every registered model must pass, parametrised over the registry (as PyKEEN's
model tests are): train a few epochs on its view's example graph, stop and resume to the weights
of an uninterrupted run, evaluate, predict and write back what it declares (with provenance,
idempotent), and delete, which leaves the graph as it was before the runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection
from kgctl.graph.writeback import embedding_property, vector_index_name
from kgctl.models import runs
from kgctl.models.evaluators import evaluator_class
from kgctl.models.registry import available
from kgctl.models.trainer import MODEL
from kgctl.testing.fixtures import VIEW_EXAMPLES, graph_counts

MODELS = sorted(available())


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
    return {
        "counts": graph_counts(conn),
        "properties": sorted(in_use),
        "vector_indexes": sorted(vector),
    }


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return dict(torch.load(folder / MODEL, weights_only=False)["state_dict"])


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_model_contract(name: str, graph: Connection, tmp_path: Path) -> None:
    cls = available()[name]
    assert cls.view in VIEW_EXAMPLES, f"add an example graph for view {cls.view!r} to kgctl.testing.fixtures"
    params = VIEW_EXAMPLES[cls.view](graph, tmp_path)
    config = cls.config_class(**{**cls.test_config, **params})
    assert config.epochs >= 2, "the contract stops after one epoch and resumes"
    before = snapshot(graph)
    data_dir = tmp_path / "kgctl"

    whole = runs.train(graph, data_dir, name, config, device="cpu")
    assert whole.record["status"] == "trained" and whole.record["view"] == cls.view
    part = runs.train(graph, data_dir, name, config, device="cpu", stop_after=1)
    assert part.record["status"] == "interrupted" and not (part.dir / MODEL).exists()
    resumed = runs.resume(graph, data_dir, part.id, device="cpu")
    assert resumed.record["metrics"]["training"]["resumed_from_epoch"] == 1
    a, b = weights(whole.dir), weights(part.dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    evaluation = runs.evaluate(graph, data_dir, whole.id, {}, device="cpu")
    evaluator = evaluator_class(evaluation["evaluator"])()
    assert evaluation["evaluator"] == cls.evaluators[0] and evaluator.report(evaluation)
    assert (whole.dir / f"{evaluator.kind}.json").exists()
    recorded = graph.query("MATCH (m:ModelRun {id: $id}) RETURN m.metrics AS m", {"id": whole.id})
    assert json.loads(recorded[0]["m"])["evaluation"]

    if cls(config).left_out():  # trained without its held-out data: written back only when asked
        with pytest.raises(KgctlError, match="--allow-split"):
            runs.predict(graph, data_dir, whole.id, {}, device="cpu", write_back=True)
    first = runs.predict(graph, data_dir, whole.id, {}, device="cpu", write_back=True, allow_split=True)
    again = runs.predict(graph, data_dir, whole.id, {}, device="cpu", write_back=True, allow_split=True)
    runs.predict(graph, data_dir, part.id, {}, device="cpu", write_back=True, allow_split=True)
    writes = cls.writes
    if writes.relationship:
        count = first["written"]["relationships"]["count"]
        assert count > 0 and again["written"]["relationships"]["count"] == count
        rows = graph.query(
            f"MATCH (:{writes.start_label})-[p:{writes.relationship}]->(:{writes.end_label}) "
            "WHERE p.run = $id RETURN count(p) AS n, collect(DISTINCT [p.source, p.source_version, "
            "p.licence, p.model]) AS prov, min(p.created_at) AS at",
            {"id": whole.id},
        )[0]
        assert rows["n"] == count and len(rows["prov"]) == 1 and None not in rows["prov"][0]
        assert rows["prov"][0][3] == name and rows["at"] is not None
    if writes.embedding_label:
        prop = embedding_property(name)
        owned = graph.query(
            f"MATCH (n:{writes.embedding_label}) WHERE n.{prop}_run = $id RETURN count(n) AS n", {"id": part.id}
        )[0]["n"]
        assert owned == first["written"]["embeddings"]["count"] > 0  # the later write-back owns them
        indexes = graph.query("SHOW VECTOR INDEXES YIELD name RETURN collect(name) AS n")[0]["n"]
        assert vector_index_name(writes.embedding_label, name) in indexes

    for run in (whole, part):
        runs.delete(graph, data_dir, run.id)
        assert not run.dir.exists()
    assert snapshot(graph) == before
    assert not runs.list_runs(data_dir)
