"""`kgctl build`: derived edges written to a real Neo4j with exact pairs and scores, recorded
parameters and provenance, and a re-build that replaces the earlier one."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection
from kgctl.graph.derive import build_coessentiality, build_similarity
from kgctl.ingest.pipeline import ingest
from kgctl.testing.fixtures import TestServer

EFFECT = "DepMap gene_effect@test"


@pytest.fixture
def effects(graph: Connection) -> Connection:
    # G = max(0, -effect): A [1,2,0], B [1,1,0], C [0,0,0], D [.5,0,1] → G·Gᵀ: A–B 3, A–D .5, B–D .5
    vectors = {"A": [-1, -2, 0.5], "B": [-1, -1, 0], "C": [1, 2, 3], "D": [-0.5, math.nan, -1]}
    graph.query(
        "CREATE (:Dataset {id: $id, vector_label: 'Gene', vector_property: 'depmap_gene_effect',"
        " features: ['ACH-1', 'ACH-2', 'ACH-3'], n_features: 3, licence: 'CC-BY-4.0'})",
        {"id": EFFECT},
        write=True,
    )
    graph.query("UNWIND keys($v) AS g CREATE (:Gene {id: g, depmap_gene_effect: $v[g]})", {"v": vectors}, write=True)
    return graph


def edges(conn: Connection, rel: str, key: str) -> dict[tuple[str, str], float]:
    rows = conn.query(f"MATCH (a)-[r:{rel}]->(b) RETURN a.id AS a, b.id AS b, r.{key} AS s")
    return {(r["a"], r["b"]): round(r["s"], 4) for r in rows}


def test_reference_coessentiality_top_n(effects: Connection) -> None:
    result = build_coessentiality(effects, dataset=EFFECT, method="reference", top=2)
    assert result["relationships"] == 2
    assert edges(effects, "CO_ESSENTIAL", "score") == {("A", "B"): 3.0, ("A", "D"): 0.5}
    r = effects.query("MATCH ()-[r:CO_ESSENTIAL]->() RETURN properties(r) AS r LIMIT 1")[0]["r"]
    assert r["method"] == "reference" and r["selection"] == "top" and r["top"] == 2
    assert r["source"] == "kgctl build" and r["run"] == result["run_id"] and r["created_at"]
    assert r["licence"] == "CC-BY-4.0"  # the DepMap dataset's terms carry over to derived edges
    run = effects.query("MATCH (r:IngestRun {id: $id}) RETURN properties(r) AS r", {"id": result["run_id"]})[0]["r"]
    assert run["adapter"] == "build:co_essential" and run["relationships_written"] == 2


def test_pearson_rebuild_replaces_the_earlier_edges(effects: Connection) -> None:
    build_coessentiality(effects, dataset=EFFECT, method="pearson", threshold=-1.0)
    assert len(edges(effects, "CO_ESSENTIAL", "score")) == 6
    build_coessentiality(effects, dataset=EFFECT, method="reference", top=1)  # another method stays
    build_coessentiality(effects, dataset=EFFECT, method="pearson", threshold=0.99)
    found = effects.query(
        "MATCH (a)-[r:CO_ESSENTIAL]->(b) RETURN a.id AS a, b.id AS b, r.method AS m, r.score AS s ORDER BY m, a, b"
    )
    # A = [-1,-2,.5] and B = [-1,-1,0]: r = 0.9449 < 0.99; D's missing value is its mean
    assert [(r["a"], r["b"], r["m"]) for r in found] == [("A", "B", "reference")]


def test_profile_knn_and_molecule_tanimoto(graph: Connection) -> None:
    graph.query(
        "CREATE (:Dataset {id: 'expr@1', vector_label: 'ExpressionProfile', vector_property: 'features'})", write=True
    )
    profiles = {"p0": [1, 0, 0], "p1": [0.6, 0.8, 0], "p2": [0, 1, 0], "p3": [0.1, 0, 1]}
    graph.query(
        "UNWIND keys($v) AS p CREATE (:ExpressionProfile {id: p, dataset: 'expr@1', features: $v[p]})",
        {"v": profiles},
        write=True,
    )
    graph.query("CREATE (:ExpressionProfile {id: 'other', dataset: 'x@1', features: [1, 0, 0]})", write=True)
    result = build_similarity(graph, dataset="expr@1", k=1)
    assert result["relationships"] == 3
    assert edges(graph, "SIMILAR_TO", "similarity") == {("p0", "p1"): 0.6, ("p1", "p2"): 0.8, ("p0", "p3"): 0.0995}
    fps = {"m1": bytes([0b11110000]), "m2": bytes([0b11000000]), "m3": bytes([0b00001111])}
    graph.query("UNWIND keys($f) AS m CREATE (:Molecule {id: m, fingerprint: $f[m]})", {"f": fps}, write=True)
    result = build_similarity(graph, dataset=None, molecules=True, threshold=0.5)
    assert result["metric"] == "tanimoto" and result["relationships"] == 1
    rows = graph.query(
        "MATCH (a:Molecule)-[r:SIMILAR_TO]->(b) RETURN a.id AS a, b.id AS b, r.similarity AS s, r.metric AS m"
    )
    assert rows == [{"a": "m1", "b": "m2", "s": 0.5, "m": "tanimoto"}]


def test_unknown_dataset_names_the_known_ones(effects: Connection) -> None:
    with pytest.raises(KgctlError, match=r"no Dataset 'nope' in the graph; known: DepMap gene_effect@test"):
        build_coessentiality(effects, dataset="nope")


@pytest.mark.slow
def test_cli_json(effects: Connection, neo4j_server: TestServer) -> None:
    cmd = [
        sys.executable,
        "-m",
        "kgctl.cli",
        "build",
        "coessentiality",
        "--dataset",
        EFFECT,
        "--method",
        "reference",
        "--top",
        "1",
        "--json",
    ]
    proc = subprocess.run(cmd, env=neo4j_server.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"] and out["relationships"] == 1 and out["score_max"] == 3.0
    proc = subprocess.run(
        cmd[:6] + ["nope", "--json"], env=neo4j_server.env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1 and "no Dataset 'nope'" in proc.stderr and "Traceback" not in proc.stderr


def test_real_depmap_coessentiality_matches_a_brute_force(graph: Connection, shared_data: Path, tmp_path: Path) -> None:
    effect = shared_data / "depmap" / "CRISPRGeneEffect.subset.csv.gz"
    ingest(graph, "depmap", [effect], {}, rejects_dir=tmp_path)
    dataset = graph.query("MATCH (d:Dataset {kind: 'gene-effect'}) RETURN d.id AS id")[0]["id"]
    frame = pd.read_csv(effect, index_col=0)
    frame.columns = [c.split(" (")[0].upper() for c in frame.columns]
    # the reference: G = max(0, -effect) with missing → 0, G·Gᵀ, top 500 pairs
    g = np.maximum(0.0, -frame.fillna(0.0).to_numpy()).T
    scores = g @ g.T
    upper = np.triu_indices(len(scores), 1)
    best = np.argsort(-scores[upper], kind="stable")[:500]
    names = list(frame.columns)
    expected = {tuple(sorted((names[upper[0][k]], names[upper[1][k]]))): scores[upper][k] for k in best}
    build_coessentiality(graph, dataset=dataset, method="reference", top=500)
    found = edges(graph, "CO_ESSENTIAL", "score")
    assert set(found) == set(expected)
    assert all(found[p] == pytest.approx(expected[p], abs=1e-3) for p in found)
    # Pearson: on genes without missing values it is pandas' correlation
    build_coessentiality(graph, dataset=dataset, method="pearson", threshold=0.6)
    rows = graph.query("MATCH (a)-[r:CO_ESSENTIAL {method: 'pearson'}]->(b) RETURN a.id AS a, b.id AS b, r.score AS s")
    complete = [c for c in frame.columns if not frame[c].isna().any()]
    corr = frame[complete].corr()
    kept = {(r["a"], r["b"]): r["s"] for r in rows if r["a"] in corr and r["b"] in corr}
    truth = {(a, b) for i, a in enumerate(sorted(complete)) for b in sorted(complete)[i + 1 :] if corr.loc[a, b] >= 0.6}
    assert truth and set(kept) == truth
    assert all(kept[p] == pytest.approx(corr.loc[p[0], p[1]], abs=1e-4) for p in kept)
