"""IsoCLR: the six tracks of a hand-made transcript, the pair sampler, the loss against a direct
computation, the frozen encoder, grouped splits and overlap groups, the real UTR sets, and (with
Neo4j) pretraining on the generated transcriptome beating the from-scratch encoder on the
low-data half-life probe, the written-back edges and the isoforms-diverging query."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from kgctl import queries
from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection
from kgctl.models import runs
from kgctl.models.isoclr import IsoCLRConfig
from kgctl.models.isoclr.config import PUBLISHED
from kgctl.models.isoclr.data import from_corpus
from kgctl.models.isoclr.datasets import overlap_groups, utr3_mpra, utr5_mrl
from kgctl.models.isoclr.encoding import kmer_counts, six_tracks
from kgctl.models.isoclr.model import IsoCLRNet, dcl_loss
from kgctl.models.isoclr.probe import embed, length_batches
from kgctl.models.isoclr.rna import needs_file
from kgctl.models.isoclr.task import PairSampler, mask_positions
from kgctl.models.probing.evaluate import ProbeOptions
from kgctl.models.probing.heads import fold_of, group_split, ridge_path
from kgctl.testing.fixtures import ingest_files, toy_transcripts
from kgctl.testing.generators import transcriptome

pytestmark = pytest.mark.model("isoclr")


def test_six_tracks_of_a_hand_made_transcript() -> None:
    # 5'UTR "GC", CDS at 3..11 (ATG AAA TAA), 3'UTR "GGN"; exons end at 4, 9 and 14
    x = six_tracks("GCATGAAATAAGGN", cds_start=3, cds_end=11, exon_ends=[4, 9, 14])
    assert x.shape == (14, 6) and x.dtype == np.uint8
    assert "".join("ACGT"[i] for i in x[:13, :4].argmax(1)) == "GCATGAAATAAGG"
    assert x[13, :4].sum() == 0  # N: no base
    assert np.flatnonzero(x[:, 4]).tolist() == [2, 5, 8]  # first nucleotide of each codon
    assert np.flatnonzero(x[:, 5]).tolist() == [3, 8, 13]  # last nucleotide of each exon
    assert six_tracks("ACGU")[3, 3] == 1  # U reads as T
    assert not six_tracks("ACG")[:, 4:].any()  # no CDS, no exons: empty structure tracks


def test_kmer_counts() -> None:
    counts = kmer_counts(["AAAC", "ANAA"], 2)
    assert counts.shape == (2, 16)
    assert counts[0, 0] == pytest.approx(2 / 4) and counts[0, 1] == pytest.approx(1 / 4)
    assert counts[1].sum() == pytest.approx(1 / 4)  # only "AA"; k-mers with N are skipped


def test_pair_sampler_never_pairs_a_transcript_with_itself() -> None:
    inputs = toy_transcripts()
    sampler = PairSampler(inputs, max_length=1000, ortholog_prob=0.5, weight_c=0.4)
    assert sorted(sampler.units.tolist()) == [0, 1, 2]  # gene 3 has no partner
    assert sampler.left_out["genes_without_pair"] == 1
    homology = inputs.homology()
    assert homology[1] == homology[2] != homology[0]
    kinds = set()
    rng = np.random.default_rng(1)
    for _ in range(200):
        a, b, w = sampler.draw(rng)
        assert len(a) == 3 and (a != b).all()
        ga, gb = inputs.gene_of[a], inputs.gene_of[b]
        assert (homology[ga] == homology[gb]).all()  # same gene or orthologs, never unrelated
        kinds |= {("isoform" if x == y else "ortholog") for x, y in zip(ga, gb, strict=True)}
    assert kinds == {"isoform", "ortholog"}
    # ln(n + c) normalised to mean 1 over the units: the 3-transcript groups weigh the same
    assert sampler.weights.mean() == pytest.approx(1.0)
    # too long to train on: left out, and gene 0 keeps two isoforms
    short = PairSampler(inputs, max_length=55, ortholog_prob=0.5, weight_c=0.4)
    assert short.left_out["too_long"] == 3 and 0 in short.units.tolist()
    never = PairSampler(inputs, max_length=1000, ortholog_prob=0.0, weight_c=0.4)
    a, b, _ = never.draw(rng)
    g = inputs.gene_of
    assert all(g[x] == g[y] for x, y in zip(a, b, strict=True) if g[x] != 1)  # gene 1 has only orthologs


def test_dcl_loss_matches_a_direct_computation() -> None:
    torch.manual_seed(0)
    z1, z2, w, tau = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0.5, 1.0, 1.5, 1.0]), 0.1
    loss, _ = dcl_loss(z1, z2, w, tau)
    u1 = [v / v.norm() for v in z1]
    u2 = [v / v.norm() for v in z2]

    def one(a: list[torch.Tensor], b: list[torch.Tensor], i: int) -> float:
        same = sum(math.exp(float(a[i] @ a[j]) / tau) for j in range(4) if j != i)
        cross = sum(math.exp(float(a[i] @ b[j]) / tau) for j in range(4) if j != i)
        return -float(w[i]) * float(a[i] @ b[i]) / tau + math.log(same) + math.log(cross)

    direct = 0.5 * (sum(one(u1, u2, i) for i in range(4)) / 4 + sum(one(u2, u1, i) for i in range(4)) / 4)
    assert float(loss) == pytest.approx(direct, rel=1e-4)


def test_masking_stays_inside_each_sequence() -> None:
    torch.manual_seed(0)
    x = torch.ones(2, 100, 6, dtype=torch.uint8)
    x[1, 60:] = 0
    lengths = torch.tensor([100, 60])
    masked = mask_positions(x, lengths, 0.5)
    zeroed = (masked.sum(-1) == 0) & (x.sum(-1) > 0)
    assert 30 < int(zeroed[0].sum()) < 70 and 15 < int(zeroed[1].sum()) < 45
    assert (masked[:, :, 0] == masked[:, :, 5]).all()  # a masked position loses every track


def test_masked_pooling_ignores_padding() -> None:
    torch.manual_seed(0)
    net = IsoCLRNet(size="tiny", widths=(8, 8, 4)).eval()
    x = torch.from_numpy(six_tracks("ACGT" * 40))[None]
    padded = torch.cat([x, torch.zeros(1, 160, 6, dtype=torch.uint8)], 1)
    length = torch.tensor([160])
    with torch.no_grad():
        alone, longer = net(x, length), net(padded, length)
    assert torch.allclose(alone, longer, atol=1e-5)


def test_the_frozen_encoder_stays_frozen() -> None:
    """Embedding for a probe runs in eval mode: parameters and BatchNorm buffers unchanged."""
    inputs = toy_transcripts()
    net = IsoCLRNet(size="tiny", widths=(8, 8, 4), dropout=0.5).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    first = embed(net, inputs)
    again = embed(net, inputs)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert np.array_equal(first, again)  # no dropout
    assert net.training  # the caller's mode is given back


def test_length_batches_bound_padding() -> None:
    lengths = np.array([10, 10, 20, 50, 400, 5000])
    parts = length_batches(lengths, 3, np.arange(6), budget=1000)
    assert [p.tolist() for p in parts] == [[0, 1, 2], [3, 4], [5]]  # padded to 5000: alone


def test_group_split_and_folds_keep_groups_whole() -> None:
    groups = np.repeat(np.arange(50), np.arange(50) % 4 + 1)
    for seed in range(3):
        pool, test = group_split(groups, seed)
        assert not set(groups[pool]) & set(groups[test])
        assert 0.1 < len(test) / len(groups) <= 0.2
    folds = fold_of(groups, 3)
    for g in np.unique(groups):
        assert len(set(folds[groups == g])) == 1


def test_ridge_path_recovers_a_linear_signal() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5))
    y = x @ np.array([1.0, -2.0, 0.0, 0.5, 0.0]) + 0.01 * rng.normal(size=200)
    predicted = ridge_path(x[:150], y[:150], x[150:], np.array([1e-3, 1e6]))
    assert np.corrcoef(predicted[:, 0], y[150:])[0, 1] > 0.99
    assert np.std(predicted[:, 1]) < 0.05 * np.std(y)  # a huge penalty predicts the mean


def test_overlap_groups_join_tiles_not_low_complexity() -> None:
    rng = np.random.default_rng(0)
    utr = "".join(rng.choice(list("ACGT"), 400))
    other = "".join(rng.choice(list("ACGT"), 160))
    tiles = [utr[0:160], utr[100:260], utr[200:360], other, "A" * 60 + other[:100]]
    variant = tiles[0][:80] + ("A" if tiles[0][80] != "A" else "C") + tiles[0][81:]
    groups = overlap_groups([*tiles, variant, "A" * 160, "A" * 100 + utr[300:360]])
    assert groups[0] == groups[1] == groups[2] == groups[5]  # tiles and a variant of one UTR
    assert groups[3] == groups[4] != groups[0]
    assert len({groups[6], groups[7]} & {groups[0], groups[3]}) == (groups[7] == groups[0])


def test_config_checks_and_published_settings() -> None:
    with pytest.raises(KgctlError, match="projection"):
        IsoCLRConfig(projection="256,128")
    with pytest.raises(KgctlError, match="tracks"):
        IsoCLRConfig(tracks=5)
    published = IsoCLRConfig.load(PUBLISHED, "isoclr")
    assert (published.encoder, published.batch_size, published.temperature) == ("medium", 768, 0.1)
    assert published.widths() == (2048, 2048, 512)
    medium = sum(p.numel() for p in IsoCLRNet(size="medium").encoder.parameters())
    assert 4.5e6 < medium < 5.3e6  # about the 4.9 M of IsoCLR-medium


def test_real_utr_sets(shared_data: Path) -> None:
    utr3 = utr3_mpra(shared_data / "rna" / "siegel_3utr_mpra.txt.gz")
    assert len(utr3.sequences) == 31_054 and int(np.isfinite(utr3.labels["jurkat"]).sum()) == 30_253
    assert int(np.isfinite(utr3.labels["beas2b"]).sum()) == 7_613
    sizes = np.bincount(utr3.groups)
    assert 3_000 < len(sizes) < 20_000 and sizes.max() < 500  # tiles grouped, not one giant group
    utr5 = utr5_mrl(shared_data / "rna" / "snv_phenotype_log_diff.csv.gz")
    assert len(utr5.sequences) == 3_002 and len(np.unique(utr5.groups)) <= 883
    corpus = from_corpus(shared_data / "rna" / "snv_phenotype_log_diff.csv.gz")
    assert corpus.n == 3_002 and corpus.meta["licences"] == ["GPL-3.0"]
    assert (corpus.lengths == 50).all() and corpus.sequence(0) == utr5.sequences[0]


@pytest.mark.slow
@pytest.mark.neo4j
def test_pretraining_beats_scratch_on_the_low_data_half_life_probe(graph: Connection, tmp_path: Path) -> None:
    made = transcriptome(tmp_path / "tx", genes=160, cds_codons=(40, 120), seed=0)
    result = ingest_files(graph, "transcripts", made.transcript_files, tmp_path)
    assert result["rows_rejected"] == 0
    mouse = graph.query(
        "MATCH (t:Transcript)-[:ISOFORM_OF]->(m:Gene)<-[:ORTHOLOG_OF]-(h:Gene) "
        "RETURN count(DISTINCT m) AS m, collect(DISTINCT m.species)[0] AS s, "
        "collect(DISTINCT h.species)[0] AS hs"
    )[0]
    assert mouse["m"] == 80 and mouse["s"] == "10090" and mouse["hs"] == "9606"
    data_dir = tmp_path / "kgctl"
    config = IsoCLRConfig(encoder="tiny", epochs=10, batch_size=64, projection="64,64,32", seed=3)
    run = runs.train(graph, data_dir, "isoclr", config, device="cpu")
    data = run.record["data"]
    assert data["genes_with_orthologs"] == 160 and data["positive_genes"] >= 130
    training = run.record["metrics"]["training"]
    assert math.isfinite(training["final_loss"]) and 0 < training["final"]["accuracy"] < 1
    options = {
        "labels": "half-life",
        "file": str(made.half_life),
        "probe_seeds": "0",
        "fractions": "0.1",
        "scratch_steps": 200,
    }
    result = runs.evaluate(graph, data_dir, run.id, options, evaluator="probe", device="cpu")
    methods = {m: v["0.1"]["pearson_r"]["mean"] for m, v in result["methods"].items()}
    print(methods, result["train_sizes"])
    assert set(methods) == {"isoclr", "untrained", "onehot", "kmer3", "kmer5", "scratch"}
    assert methods["isoclr"] > methods["scratch"]
    assert result["train_sizes"]["0.1"] == [13]
    retrieval = runs.evaluate(graph, data_dir, run.id, {}, device="cpu")
    found = retrieval["methods"]
    assert (
        retrieval["evaluator"] == "retrieval"
        and retrieval["task"] == "isoforms"
        and found["isoclr"]["nearest_hit"] > found["untrained"]["nearest_hit"]
    )

    written = runs.predict(graph, data_dir, run.id, {"top_k": 3}, device="cpu", write_back=True)
    assert written["written"]["relationships"]["count"] == 3 * written["prediction"]["transcripts"]
    flags = graph.query(
        "MATCH (a:Transcript)-[s:SIMILAR_TO {run: $id}]->(b:Transcript) "
        "RETURN sum(CASE WHEN s.same_gene THEN 1 ELSE 0 END) AS same, count(s) AS n, "
        "sum(CASE WHEN s.same_gene AND NOT s.homologous THEN 1 ELSE 0 END) AS bad",
        {"id": run.id},
    )[0]
    assert flags["same"] > 0 and flags["bad"] == 0
    _, rows = queries.rows(graph, "isoforms-diverging", {"limit": "5"})
    assert rows and [r["similarity"] for r in rows] == sorted(r["similarity"] for r in rows)
    one = queries.run("isoforms-diverging", graph, gene=rows[0]["gene"]).to_dict("records")
    assert {r["gene"] for r in one} == {rows[0]["gene"]}
    summary = queries.run("run-summary", graph, model="isoclr").iloc[0]
    assert summary["run"] == run.id and summary["relationship_types"] == ["SIMILAR_TO"]
    assert summary["edges"] == flags["n"] and summary["embeddings"] == written["prediction"]["transcripts"]
    runs.delete(graph, data_dir, run.id)
    assert not graph.query("MATCH ()-[s:SIMILAR_TO]->() RETURN s LIMIT 1")


def test_evaluate_needs_a_file_for_labelled_tasks(tmp_path: Path) -> None:
    with pytest.raises(KgctlError, match="needs --file"):
        needs_file("mrl", ProbeOptions(labels="mrl"))
