"""Export round trip against a real Neo4j: counts, features and id maps back to the graph, the
PyG Data, the cache, and the real STRING view."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kgctl.graph.connection import Connection
from kgctl.graph.export import HeteroView, View, export_view, load_view
from kgctl.graph.walks import CSRGraph, path_weights, random_walks
from kgctl.ingest.pipeline import ingest
from kgctl.testing import generators
from kgctl.testing.fixtures import TestServer

INFO = "#string_protein_id\tpreferred_name\n" + "".join(f"9606.P{i}\tG{i}\n" for i in range(6))
HEADER = (
    "protein1 protein2 neighborhood fusion cooccurence coexpression experimental database textmining combined_score\n"
)
LINKS = {(0, 1): 900, (0, 2): 400, (1, 2): 700, (3, 4): 150}  # G5 has no links


def as_view(view: View | HeteroView) -> View:
    assert isinstance(view, View)
    return view


def as_hetero(view: View | HeteroView) -> HeteroView:
    assert isinstance(view, HeteroView)
    return view


@pytest.fixture
def small(graph: Connection, tmp_path: Path) -> Connection:
    (tmp_path / "info.txt").write_text(INFO)
    body = "".join(f"9606.P{a} 9606.P{b} 0 0 0 0 0 0 0 {s}\n" for (a, b), s in LINKS.items())
    (tmp_path / "links.txt").write_text(HEADER + body)
    ingest(graph, "string", [tmp_path / "info.txt", tmp_path / "links.txt"], {}, rejects_dir=tmp_path)
    graph.query(
        "CREATE (:Dataset {id: 'eff@1', vector_label: 'Gene', vector_property: 'effect', features: ['c1', 'c2']})",
        write=True,
    )
    graph.query(
        "UNWIND keys($v) AS g MATCH (n:Gene {id: g}) SET n.effect = $v[g]",
        {"v": {"G0": [0.5, -1.0], "G2": [2.0, 0.0], "G4": [-0.25, 1.5]}},
        write=True,
    )
    return graph


def test_round_trip_counts_features_and_id_map(small: Connection, tmp_path: Path) -> None:
    out = tmp_path / "view"
    view = as_view(export_view(small, "gene-association", out, dataset="eff@1"))
    assert view.node_ids == [f"G{i}" for i in range(6)]
    assert view.meta["relationships"] == {"Gene|INTERACTS_WITH|Gene": 4}
    assert view.meta["feature_names"] == {"Gene": ["c1", "c2"]}
    assert view.x is not None and view.x.shape == (6, 2)
    assert view.x[0].tolist() == [0.5, -1.0] and view.x[4].tolist() == [-0.25, 1.5]
    assert all(math.isnan(v) for v in view.x[1])
    src, dst, score = view.edges["INTERACTS_WITH"]
    got = {(view.node_ids[s], view.node_ids[d]): float(w) for s, d, w in zip(src, dst, score, strict=True)}
    assert got == {(f"G{a}", f"G{b}"): float(s) for (a, b), s in LINKS.items()}
    data = view.to_pyg()
    assert data.num_nodes == 6 and data.edge_index.shape == (2, 8) and data.x.shape == (6, 2)
    assert data.node_ids[int(data.edge_index[0, 0])] in {"G0", "G1", "G3"}
    assert sorted(data.edge_weight.tolist()) == sorted([float(s) for s in LINKS.values()] * 2)
    again = as_view(load_view(out))
    assert again.x is not None and again.node_ids == view.node_ids
    assert np.array_equal(again.x, view.x, equal_nan=True)
    assert all(
        np.array_equal(a, b) for a, b in zip(again.edges["INTERACTS_WITH"], view.edges["INTERACTS_WITH"], strict=True)
    )


def test_cache_and_min_score(small: Connection, tmp_path: Path) -> None:
    out = tmp_path / "view"
    first = export_view(small, "gene-association", out)
    assert not first.meta.get("cached")
    assert export_view(small, "gene-association", out).meta["cached"]  # unchanged graph
    filtered = export_view(small, "gene-association", out, min_score=700)  # other options
    assert not filtered.meta.get("cached") and filtered.meta["relationships"] == {"Gene|INTERACTS_WITH|Gene": 2}
    small.query(
        "MATCH (a:Gene {id: 'G5'}), (b:Gene {id: 'G0'}) CREATE (b)-[:INTERACTS_WITH {combined_score: 800}]->(a)",
        write=True,
    )
    changed = export_view(small, "gene-association", out, min_score=700)
    assert not changed.meta.get("cached") and changed.meta["relationships"] == {"Gene|INTERACTS_WITH|Gene": 3}


def test_cache_covers_only_what_the_view_reads(small: Connection, tmp_path: Path) -> None:
    out = tmp_path / "view"
    first = export_view(small, "gene-association", out, dataset="eff@1")
    # A model's write-back (scored edges, embeddings, a ModelRun) and a source the view does not
    # read leave the view's cache valid.
    small.query(
        "MATCH (a:Gene {id: 'G0'}), (b:Gene {id: 'G5'}) "
        "CREATE (a)-[:PREDICTED_ASSOCIATION {score: 0.9, run: 'cal-x'}]->(b) "
        "SET a.embedding_cal = [0.1, 0.2] CREATE (:ModelRun {id: 'cal-x'})",
        write=True,
    )
    ingest(small, "molecules", [write_molecules(tmp_path)], {}, rejects_dir=tmp_path)
    assert export_view(small, "gene-association", out, dataset="eff@1").meta["cached"]
    # The context view reads molecules: the same ingest is news to it.
    context = export_view(small, "context", tmp_path / "ctx")
    small.query("MATCH (m:Molecule) SET m.name = 'renamed'", write=True)
    assert export_view(small, "context", tmp_path / "ctx").meta["cached"]
    ingest(small, "molecules", [write_molecules(tmp_path, extra=True)], {}, rejects_dir=tmp_path)
    assert not export_view(small, "context", tmp_path / "ctx").meta.get("cached")
    assert context.meta["nodes"]["Molecule"] == 1
    # A new ingest of what it reads (here the features' Dataset) invalidates it.
    small.query("MATCH (d:Dataset {id: 'eff@1'}) SET d.licence = 'CC-BY-4.0'", write=True)
    ingest(small, "string", [tmp_path / "info.txt", tmp_path / "links.txt"], {"min_score": 800}, rejects_dir=tmp_path)
    again = export_view(small, "gene-association", out, dataset="eff@1")
    assert not again.meta.get("cached") and again.meta["licences"] == ["CC-BY-4.0"]
    assert first.meta["fingerprint"] != again.meta["fingerprint"]


def write_molecules(folder: Path, extra: bool = False) -> Path:
    rows = ["smiles\tpert_iname", "CCO\tethanol"] + (["c1ccccc1\tbenzene"] if extra else [])
    path = folder / ("molecules-2.tsv" if extra else "molecules.tsv")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_cli_json(small: Connection, neo4j_server: TestServer, tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "kgctl.cli",
        "export",
        "gene-association",
        "--out",
        str(tmp_path / "v"),
        "--dataset",
        "eff@1",
        "--json",
    ]
    proc = subprocess.run(cmd, env=neo4j_server.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"] and out["nodes"] == {"Gene": 6} and out["n_features"] == {"Gene": 2}
    assert not out["cached"]
    assert "Warning" not in proc.stderr


@pytest.mark.slow
def test_real_string_view(graph: Connection, shared_data: Path, tmp_path: Path) -> None:
    d = shared_data / "string"
    files = [
        d / "9606.protein.info.v12.0.subset.txt.gz",
        d / "9606.protein.links.full.v12.0.subset.txt.gz",
    ]
    ingest(graph, "string", files, {}, rejects_dir=tmp_path)
    view = as_view(export_view(graph, "gene-association", tmp_path / "view"))
    assert len(view.node_ids) == 19_699 and view.meta["relationships"] == {"Gene|INTERACTS_WITH|Gene": 170_298}
    src, dst, score = view.edges["INTERACTS_WITH"]
    names = [(view.node_ids[i], view.node_ids[j]) for i, j in zip(src, dst, strict=True)]
    pairs = dict(zip(names, score, strict=True))
    expected = graph.query(
        "MATCH (a:Gene {id: 'CES1'})-[r:INTERACTS_WITH]-(b:Gene {id: 'CYP2E1'}) RETURN r.combined_score AS s"
    )[0]["s"]
    assert pairs[("CES1", "CYP2E1")] == expected


def test_context_view_round_trip_and_walks(graph: Connection, tmp_path: Path) -> None:
    graph.query(
        "CREATE (m1:Molecule {id: 'M1', fingerprint: $f1}), (m2:Molecule {id: 'M2', fingerprint: $f2}), "
        "(g1:Gene {id: 'G1'}), (g2:Gene {id: 'G2'}), (g3:Gene {id: 'G3'}), "
        "(e1:ExpressionProfile {id: 'E1', features: [1.0, 2.0]}), "
        "(e2:ExpressionProfile {id: 'E2', features: [0.5, 0.0]}), "
        "(c1:MorphologyProfile {id: 'C1', features: [3.0]}), "
        "(m1)-[:TARGETS]->(g1), (m2)-[:TARGETS]->(g2), (m1)-[:PERTURBS]->(e1), "
        "(m2)-[:PERTURBS]->(c1), (g3)-[:PERTURBS]->(e2), (g1)-[:INTERACTS_WITH]->(g2), "
        "(m1)-[:SIMILAR_TO {similarity: 0.85}]->(m2), (e1)-[:SIMILAR_TO {similarity: 0.9}]->(e2)",
        {"f1": bytes([0b10000000, 1]), "f2": bytes([0, 255])},
        write=True,
    )
    view = as_hetero(export_view(graph, "context", tmp_path / "ctx"))
    assert view.meta["nodes"] == {
        "Molecule": 2,
        "Gene": 3,
        "ExpressionProfile": 2,
        "MorphologyProfile": 1,
    }
    assert view.meta["relationships"] == {
        "Molecule|TARGETS|Gene": 2,
        "Molecule|PERTURBS|MorphologyProfile": 1,
        "Molecule|PERTURBS|ExpressionProfile": 1,
        "Gene|PERTURBS|ExpressionProfile": 1,
        "Gene|INTERACTS_WITH|Gene": 1,
        "Molecule|SIMILAR_TO|Molecule": 1,
        "ExpressionProfile|SIMILAR_TO|ExpressionProfile": 1,
    }
    bits, profiles = view.x["Molecule"], view.x["ExpressionProfile"]
    assert bits is not None and profiles is not None and view.x["Gene"] is None
    assert bits.shape == (2, 16) and bits[0, 0] == 1 and bits[0, 15] == 1
    assert profiles.tolist() == [[1.0, 2.0], [0.5, 0.0]]
    src, dst, w = view.edges[("Molecule", "SIMILAR_TO", "Molecule")]
    assert (
        view.nodes["Molecule"][src[0]],
        view.nodes["Molecule"][dst[0]],
        round(float(w[0]), 2),
    ) == ("M1", "M2", 0.85)
    data = view.to_pyg()
    assert data["Molecule", "TARGETS", "Gene"].edge_index.shape == (2, 2) and data["Gene"].num_nodes == 3
    edge_index, weight, node_type, labels = view.homogeneous()
    assert edge_index.shape == (2, 16) and labels == list(view.nodes)
    walker = CSRGraph.from_edge_index(edge_index, int(node_type.numel()), weight, node_type)
    walks = random_walks(walker, torch.arange(2), 4, walks_per_node=50, seed=0)  # from the molecules
    weights = path_weights(walks, weight)  # edge ids index the homogeneous edge list
    assert bool((weights[:, 1:] <= 1.0).all()) and float(weights[:, 1].min()) >= 0.85
    again = as_hetero(export_view(graph, "context", tmp_path / "ctx"))
    assert again.meta["cached"] and again.meta["relationships"] == view.meta["relationships"]
    cached_profiles = again.x["ExpressionProfile"]
    assert cached_profiles is not None and np.array_equal(cached_profiles, profiles)


def test_transcripts_view(graph: Connection, tmp_path: Path) -> None:
    fasta, gtf = generators.transcripts(
        tmp_path / "gencode.v44.pc_transcripts.fa",
        tmp_path / "gencode.v44.annotation.gtf",
        genes=["TP53", "BRCA1", "EGFR"],
        isoforms=2,
    )
    ingest(graph, "transcripts", [fasta, gtf], {}, rejects_dir=tmp_path)
    graph.query(
        "MATCH (a:Gene {id: 'TP53'}), (b:Gene {id: 'EGFR'}) CREATE (a)-[:ORTHOLOG_OF {type: 'test'}]->(b)", write=True
    )
    view = as_hetero(export_view(graph, "transcripts", tmp_path / "tx"))
    assert view.meta["nodes"] == {"Transcript": 6, "Gene": 3}
    assert view.meta["relationships"] == {
        "Transcript|ISOFORM_OF|Gene": 6,
        "Gene|ORTHOLOG_OF|Gene": 1,
    }
    table = view.tables["Transcript"].to_pydict()
    truth = {
        r["id"]: r
        for r in graph.query(
            "MATCH (t:Transcript)-[:ISOFORM_OF]->(g:Gene) "
            "RETURN t.id AS id, t.sequence AS seq, t.cds_start AS cds, g.id AS gene"
        )
    }
    for i, tid in enumerate(view.nodes["Transcript"]):
        assert table["sequence"][i] == truth[tid]["seq"] and table["cds_start"][i] == truth[tid]["cds"]
        assert table["length"][i] == len(truth[tid]["seq"])
    src, dst, _ = view.edges[("Transcript", "ISOFORM_OF", "Gene")]
    assert {(view.nodes["Transcript"][s], view.nodes["Gene"][d]) for s, d in zip(src, dst, strict=True)} == {
        (tid, r["gene"]) for tid, r in truth.items()
    }
    again = as_hetero(load_view(tmp_path / "tx"))
    assert again.tables["Transcript"].equals(view.tables["Transcript"]) and again.nodes == view.nodes
    data = view.to_pyg()
    assert data["Transcript", "ISOFORM_OF", "Gene"].edge_index.shape == (2, 6)
