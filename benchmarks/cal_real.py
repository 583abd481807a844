"""CAL on the real data in ../shared/data: STRING v12 links (text mining excluded) as positives,
DepMap Chronos gene effect as the gene features, both ingested into a fresh Neo4j. Every figure
of `kgctl evaluate`: the reference protocol (transductive, to compare with the paper) and the
held-out edge and node splits with random and degree-matched negatives, cosine, degree-product,
bilinear and random-walk-embedding baselines, 3 seeds; a threshold sweep with every threshold's
model scored on one fixed held-out set; then full-pair scoring and write-back.

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

import torch

sys.path.insert(0, str(Path(__file__).parent))

from machine import write_result  # noqa: E402

from kgctl.graph.connection import start_managed  # noqa: E402
from kgctl.ingest.pipeline import ingest  # noqa: E402
from kgctl.models import runs  # noqa: E402
from kgctl.models.cal import CALConfig  # noqa: E402
from kgctl.testing import make_test_server, shared_data_dir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--min-score", type=float, default=700)
    parser.add_argument("--seeds", default="42,123,456")
    parser.add_argument("--thresholds", default="400,700,900", help="empty: no sweep")
    parser.add_argument(
        "--keep", type=Path, help="Copy the run folder (plots, evaluation.json) here."
    )
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
            ingest(conn, "string", [string / "9606.protein.info.v12.0.subset.txt.gz",
                                    string / "9606.protein.links.full.v12.0.subset.txt.gz"], {},
                   rejects_dir=work)  # fmt: skip
            ingest(
                conn, "depmap", [depmap / "CRISPRGeneEffect.subset.csv.gz"], {}, rejects_dir=work
            )
            figures["ingest_seconds"] = round(time.perf_counter() - started, 1)
            dataset = conn.query(
                "MATCH (d:Dataset) WHERE d.kind = 'gene-effect' RETURN d.id AS id"
            )[0]["id"]
            config = CALConfig(dataset=dataset, min_score=args.min_score, epochs=args.epochs)
            figures["config"] = config.to_dict()
            data_dir = ts.settings.paths.data_dir
            run = runs.train(conn, data_dir, "cal", config)
            figures["data"] = run.record["data"]
            figures["training"] = run.record["metrics"]["training"]
            started = time.perf_counter()
            result = runs.evaluate(
                conn, data_dir, run.id, {"seeds": args.seeds, "thresholds": args.thresholds}
            )
            figures["evaluation_seconds"] = round(time.perf_counter() - started, 1)
            figures["headline"] = runs.load_run(data_dir, run.id).record["metrics"]["evaluation"]
            figures["evaluation"] = result
            predicted = runs.predict(conn, data_dir, run.id, {"top_k": 10}, write_back=True)
            figures["prediction"] = predicted["prediction"]
            figures["write_back"] = predicted["written"]
            if args.keep:
                shutil.copytree(run.dir, args.keep / run.id, dirs_exist_ok=True)
    finally:
        ts.server.stop(force=True, timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    write_result("cal_real", figures)


if __name__ == "__main__":
    main()
