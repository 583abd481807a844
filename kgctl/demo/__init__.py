"""`kgctl demo`: the whole loop on a generated data set with planted modules. Generate STRING
files, a Perturb-seq `.h5ad` and molecules; ingest them; train CAL; evaluate it honestly; write
the predictions back; show the top novel candidates through a named query."""

from __future__ import annotations

import contextlib
import hashlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from kgctl import queries
from kgctl.core.errors import KgctlError
from kgctl.core.progress import OnProgress, silent
from kgctl.graph.connection import Connection
from kgctl.ingest.pipeline import ingest
from kgctl.models import runs
from kgctl.models.association.rows import novel
from kgctl.models.cal import CALConfig
from kgctl.testing.generators import planted_modules

# The reference hyper-parameters (lr, τ, weight decay, schedule), smaller for a 2-core laptop.
DEMO_CONFIG = CALConfig(
    pca_dim=128, hidden_dim=256, epochs=60, batch_size=256, split="edge", search="", checkpoint_every=20
)
SEEDS = (42, 123, 456)
TOP_K = 10
VERSION = "kgctl-demo-generated"  # the source_version of everything the demo ingests
LICENCE = "CC0-1.0"  # generated data, the project's own


STEPS = (
    "generate",
    "ingest",
    "train",
    "evaluate",
    "train the final model",
    "predict and write back",
)


def run_demo(
    conn: Connection, data_dir: Path, *, seeds: tuple[int, ...] = SEEDS, on_progress: OnProgress = silent
) -> dict[str, Any]:
    """Every step of the demo; `on_progress` hears of each finished step."""
    started = time.perf_counter()
    work = data_dir / "demo"
    timings: dict[str, float] = {}

    def step(name: str, tic: float) -> None:
        timings[name] = round(time.perf_counter() - tic, 2)
        on_progress(len(timings), len(STEPS), f"demo: {name} done in {timings[name]:.1f} s")

    tic = time.perf_counter()
    data = planted_modules(work / "data", seed=0)
    files = {
        "string": [data.string_info, data.string_links],
        "perturbseq": [data.perturbseq],
        "molecules": [data.molecules],
    }
    hashes = [hashlib.sha256(f.read_bytes()).hexdigest() for group in files.values() for f in group]
    foreign = conn.query(
        "MATCH (r:IngestRun) WHERE any(h IN r.file_sha256 WHERE NOT h IN $hashes) RETURN count(r) AS n",
        {"hashes": hashes},
    )[0]["n"]
    if foreign:
        raise KgctlError(
            f"the graph already holds data from {foreign} other ingest run(s); the demo writes "
            "generated genes and interactions, so run it on an empty graph, e.g. with KGCTL_HOME "
            "set to a fresh folder (and [server] ports free)"
        )
    step("generate", tic)
    tic = time.perf_counter()
    loads = {}
    for source, paths in files.items():
        summary = ingest(
            conn,
            source,
            paths,
            {"source_version": VERSION, "licence": LICENCE},
            rejects_dir=work / "rejects",
        )
        loads[source] = {k: summary.get(k) for k in ("run_id", "status", "nodes_written", "relationships_written")}
    dataset = f"{data.perturbseq.name.removesuffix('.h5ad')}@{VERSION}"
    if not conn.query("MATCH (d:Dataset {id: $id}) RETURN d.id", {"id": dataset}):
        raise KgctlError(f"demo: the Perturb-seq ingest left no Dataset {dataset!r}")
    step("ingest", tic)
    previous = work / "last-run"
    if previous.exists():  # one demo run at a time in the graph
        for old in previous.read_text().split():
            with contextlib.suppress(KgctlError):
                runs.delete(conn, data_dir, old)
    tic = time.perf_counter()
    chosen = runs.train(conn, data_dir, "cal", DEMO_CONFIG.replace(dataset=dataset))
    previous.write_text(chosen.id)
    step("train", tic)
    tic = time.perf_counter()
    result = runs.evaluate(conn, data_dir, chosen.id, {"seeds": ",".join(map(str, seeds))})
    step("evaluate", tic)
    tic = time.perf_counter()  # settings and epochs chosen on validation, then every pair
    final = runs.settings_from(data_dir, chosen.id, "cal").replace(split="none")
    run = runs.train(conn, data_dir, "cal", final)
    previous.write_text(f"{chosen.id} {run.id}")
    step("train the final model", tic)
    tic = time.perf_counter()
    predicted = runs.predict(conn, data_dir, run.id, {"top_k": TOP_K}, write_back=True)
    step("predict and write back", tic)
    best = novel(pq.read_table(predicted["file"]))
    # Show the gene whose novel partners that expression similarity misses (at least 3) are the
    # most confident by the model's raw score.
    frame = best.to_pandas()
    hidden = frame[frame["input_cosine"].abs() < 0.2].groupby("start")["raw_score"]
    stats = hidden.agg(["count", "mean"])
    gene = str(stats[stats["count"] >= 3].sort_values("mean", ascending=False).index[0])
    _, candidates = queries.rows(conn, "novel-candidates", {"gene": gene, "run": run.id, "limit": 10})
    module = dict(zip(data.genes, data.module.tolist(), strict=True))

    def same_module(a: str, b: str) -> bool:  # the generator's truth, which the model never saw
        return bool(module[a] >= 0 and module[a] == module[b])

    for row in candidates:
        row["same_planted_module"] = same_module(gene, row["partner"])
    top = best.slice(0, 100).to_pylist()
    same = [same_module(r["start"], r["end"]) for r in top]
    return {
        "run_id": run.id,
        "evaluated_run_id": chosen.id,
        "selection": chosen.record["selection"],
        "dataset": dataset,
        "loads": loads,
        "written": predicted["written"],
        "evaluation": runs.load_run(data_dir, chosen.id).record["metrics"]["evaluation"],
        "plots": result["plots"],
        "gene": gene,
        "novel_candidates": candidates,
        "planted_truth": {
            "top_novel": len(top),
            "same_module": int(np.sum(same)),
            "note": "novel = no INTERACTS_WITH at any score; truth = the generator's modules",
        },
        "cypher": (
            f"MATCH (g:Gene {{id: '{gene}'}})-[p:PREDICTED_ASSOCIATION {{run: '{run.id}'}}]->(h) "
            "OPTIONAL MATCH (g)-[i:INTERACTS_WITH]-(h) RETURN g, p, h, i"
        ),
        "timings": timings,
        "seconds": round(time.perf_counter() - started, 1),
    }
