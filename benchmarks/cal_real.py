"""CAL on the real data in ../shared/data: STRING v12 links (text mining excluded) as positives,
DepMap Chronos gene effect as the gene features, both ingested into a fresh Neo4j. Every figure
of `kgctl evaluate`: the reference protocol (transductive, to compare with the paper) and the
held-out edge and node splits with random and degree-matched negatives, GraphSAGE, cosine,
degree-product, bilinear and random-walk-embedding baselines, 3 seeds, every model's settings and
epoch chosen on validation only; a threshold sweep with every threshold's model scored on one
fixed held-out set. Then the study behind CAL's defaults (transform × masking, validation AUC
only, no test pair read), the final model on all pairs with the chosen settings, its hub
concentration with and without CSLS, write-back, and the evidence check of its novel pairs
against the STRING pairs below the threshold (never trained on; the same database, so weak).

    python benchmarks/cal_real.py [--epochs 100] [--min-score 700] [--thresholds 400,700,900]

Writes benchmarks/results/cal_real.json (plots stay in the temporary run folder unless --keep).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))

from machine import write_result  # noqa: E402

from kgctl.graph.connection import start_managed  # noqa: E402
from kgctl.ingest.pipeline import ingest  # noqa: E402
from kgctl.models import runs  # noqa: E402
from kgctl.models.association.config import HUBNESS  # noqa: E402
from kgctl.models.association.data import Inputs, pair_keys  # noqa: E402
from kgctl.models.association.rows import most_listed, ranked  # noqa: E402
from kgctl.models.cal import CAL, CALConfig  # noqa: E402
from kgctl.models.selection import fit_selected  # noqa: E402
from kgctl.testing.fixtures import make_test_server, shared_data_dir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--min-score", type=float, default=700)
    parser.add_argument("--seeds", default="42,123,456")
    parser.add_argument("--thresholds", default="400,700,900", help="empty: no sweep")
    parser.add_argument("--keep", type=Path, help="Copy the run folder (plots, evaluation.json) here.")
    args = parser.parse_args()
    data = shared_data_dir()
    string = data / "string"
    depmap = data / "depmap"
    work = Path(tempfile.mkdtemp(prefix="kgctl-cal-real-"))
    figures: dict[str, Any] = {"data": str(data), "torch_threads": torch.get_num_threads()}
    ts = make_test_server(work / "server", heap="2g", pagecache="1g", start_timeout=300)
    start_managed(ts.settings)
    try:
        with ts.connect() as conn:
            started = time.perf_counter()
            ingest(
                conn,
                "string",
                [
                    string / "9606.protein.info.v12.0.subset.txt.gz",
                    string / "9606.protein.links.full.v12.0.subset.txt.gz",
                ],
                {},
                rejects_dir=work,
            )
            ingest(conn, "depmap", [depmap / "CRISPRGeneEffect.subset.csv.gz"], {}, rejects_dir=work)
            figures["ingest_seconds"] = round(time.perf_counter() - started, 1)
            dataset = conn.query("MATCH (d:Dataset) WHERE d.kind = 'gene-effect' RETURN d.id AS id")[0]["id"]
            config = CALConfig(dataset=dataset, min_score=args.min_score, epochs=args.epochs)
            figures["config"] = config.to_dict()
            data_dir = ts.settings.paths.data_dir
            run = runs.train(conn, data_dir, "cal", config)
            figures["data"] = run.record["data"]
            figures["training"] = run.record["metrics"]["training"]
            started = time.perf_counter()
            result = runs.evaluate(conn, data_dir, run.id, {"seeds": args.seeds, "thresholds": args.thresholds})
            figures["evaluation_seconds"] = round(time.perf_counter() - started, 1)
            figures["headline"] = runs.load_run(data_dir, run.id).record["metrics"]["evaluation"]
            figures["evaluation"] = result
            inputs = Inputs.load(run.dir / runs.INPUTS)
            figures["defaults_study"] = defaults_study(inputs, config, work / "study", args.seeds)
            final = runs.train(
                conn,
                data_dir,
                "cal",
                runs.settings_from(data_dir, run.id, "cal").replace(split="none"),
            )
            figures["final_model"] = {
                "run": final.id,
                "config": final.record["config"],
                "training": final.record["metrics"]["training"],
            }
            rows = CAL(CALConfig(**final.record["config"])).pair_rows(final, inputs)
            figures["hub_concentration_top5"] = {h: most_listed(ranked(rows, inputs.n, 10, h).partner) for h in HUBNESS}
            predicted = runs.predict(conn, data_dir, final.id, {"top_k": 10}, write_back=True)
            figures["prediction"] = predicted["prediction"]
            figures["write_back"] = predicted["written"]
            evidence = work / "string-400-699.tsv"
            below = inputs.known[~np.isin(pair_keys(inputs.known, inputs.n), pair_keys(inputs.positives, inputs.n))]
            evidence.write_text("".join(f"{inputs.genes[a]}\t{inputs.genes[b]}\n" for a, b in below))
            check = runs.evaluate(conn, data_dir, final.id, {"files": str(evidence), "top": 100}, evaluator="evidence")
            figures["evidence_string_400_699"] = {k: check[k] for k in ("top", "all", "enrichment_over_random")}
            figures["evidence_string_400_699"]["pairs"] = len(below)
            if args.keep:
                shutil.copytree(run.dir, args.keep / run.id, dirs_exist_ok=True)
    finally:
        ts.server.stop(force=True, timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    write_result("cal_real", figures)


def defaults_study(inputs: Inputs, config: CALConfig, folder: Path, seeds: str) -> dict[str, Any]:
    """How CAL's default variant was chosen: transform × masking on each seed's node split,
    every candidate's validation AUC and epoch (validation pairs and negatives only)."""
    study: dict[str, Any] = {
        "search": "transform=half,both;mask=true,false",
        "split": "node",
        "per_seed": {},
    }
    for seed in map(int, seeds.split(",")):
        seeded = config.replace(seed=seed, split="node", search=study["search"])
        chosen = fit_selected(seeded, lambda c: CAL(c).task(inputs), folder / str(seed), device="cpu")
        study["per_seed"][str(seed)] = chosen.record()
    return study


if __name__ == "__main__":
    main()
