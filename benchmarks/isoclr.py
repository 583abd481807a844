"""IsoCLR on the real RNA sets of ../shared/data/rna and on a generated transcriptome, through
the model platform (runs on a fresh Neo4j). No real transcriptome is available offline, so the
real tasks pretrain on the real UTR sequences themselves, without their labels: positives are two
different fragments of one 3'UTR (tiles and variants sharing a 40-mer), or two variants of one
gene's 5'UTR, a stated deviation from isoform pairs. Then a ridge probe on the frozen embeddings
at 0.5 / 1 / 10 / 100 % of the training labels against ridge on one-hot, 3-mer and 5-mer counts
and the same encoder trained from scratch on the labels, 5 seeds, grouped splits (overlapping
fragments or genes never on both sides). The synthetic half-life curve pretrains on the generated
human + mouse isoforms and orthologs. Training throughput in nucleotides/s (CUDA with bf16 too
when present).

    python benchmarks/isoclr.py [--encoder tiny] [--epochs-utr3 8] [--scratch-steps 300]

Writes benchmarks/results/isoclr.json.
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

from kgctl.graph.connection import Connection, start_managed  # noqa: E402
from kgctl.ingest.pipeline import ingest  # noqa: E402
from kgctl.models import runs  # noqa: E402
from kgctl.models.isoclr import IsoCLRConfig  # noqa: E402
from kgctl.models.isoclr.data import Inputs  # noqa: E402
from kgctl.testing.fixtures import make_test_server, shared_data_dir  # noqa: E402
from kgctl.testing.generators import transcriptome  # noqa: E402


def progress(done: float, total: float | None, text: str) -> None:
    if total and (int(done) == int(total) or int(done) % 5 == 0):
        print(f"  {text}", flush=True)


def train(conn: Connection, data_dir: Path, config: IsoCLRConfig, device: str = "cpu") -> runs.Run:
    return runs.train(conn, data_dir, "isoclr", config, device=device, on_progress=progress)


def throughput(run: runs.Run) -> dict[str, Any]:
    """Nucleotides through the encoder per second of training (both views of every pair)."""
    inputs = Inputs.load(run.dir / runs.INPUTS)
    training = run.record["metrics"]["training"]
    config = IsoCLRConfig(**run.config)
    eligible = inputs.lengths[inputs.lengths <= config.max_length]
    pairs = run.record["data"]["positive_genes"]
    per_epoch = 2 * pairs * float(eligible.mean())
    return {
        "device": training["device"],
        "precision": training["precision"],
        "encoder": config.encoder,
        "epochs": config.epochs,
        "seed": config.seed,
        "batch_size": config.batch_size,
        "seconds_per_epoch": training["seconds_per_epoch"],
        "nucleotides_per_second": round(per_epoch / training["seconds_per_epoch"]),
        "pairs_per_second": round(pairs / training["seconds_per_epoch"], 1),
        "final_loss": training["final_loss"],
        "final": training["final"],
        "warnings": training["warnings"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default="tiny")
    parser.add_argument("--epochs-utr3", type=int, default=8)
    parser.add_argument("--epochs-utr5", type=int, default=30)
    parser.add_argument("--epochs-synthetic", type=int, default=30)
    parser.add_argument("--genes", type=int, default=600, help="generated transcriptome size")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--fractions", default="0.005,0.01,0.1,1")
    parser.add_argument("--scratch-steps", type=int, default=300)
    args = parser.parse_args()
    rna = shared_data_dir() / "rna"
    work = Path(tempfile.mkdtemp(prefix="kgctl-isoclr-"))
    probe = {
        "probe_seeds": args.seeds,
        "fractions": args.fractions,
        "scratch_steps": args.scratch_steps,
    }
    figures: dict[str, Any] = {
        "torch_threads": torch.get_num_threads(),
        "probe": probe,
        "positives": {
            "utr3": "two fragments of one 3'UTR (sharing a 40-mer)",
            "utr5": "two variants of one gene's 5'UTR",
            "synthetic": "two isoforms of one gene, or (p = 0.5) a transcript of its mouse ortholog",
        },
    }
    ts = make_test_server(work / "server", heap="1g", pagecache="512m", start_timeout=300)
    start_managed(ts.settings)
    started = time.perf_counter()
    try:
        with ts.connect() as conn:
            data_dir = ts.settings.paths.data_dir
            utr3 = rna / "siegel_3utr_mpra.txt.gz"
            run = train(
                conn,
                data_dir,
                IsoCLRConfig(corpus=str(utr3), encoder=args.encoder, epochs=args.epochs_utr3, batch_size=256),
            )
            figures["utr3_pretraining"] = {"data": run.record["data"], **throughput(run)}
            for target in ("jurkat", "beas2b"):
                print(f"utr3-stability {target}", flush=True)
                figures[f"utr3_{target}"] = runs.evaluate(
                    conn,
                    data_dir,
                    run.id,
                    {"labels": "utr3-stability", "file": str(utr3), "target": target, **probe},
                    evaluator="probe",
                    device="cpu",
                    on_progress=progress,
                )
            utr5 = rna / "snv_phenotype_log_diff.csv.gz"
            run = train(
                conn,
                data_dir,
                IsoCLRConfig(corpus=str(utr5), encoder=args.encoder, epochs=args.epochs_utr5, batch_size=128),
            )
            figures["utr5_pretraining"] = {"data": run.record["data"], **throughput(run)}
            print("mrl", flush=True)
            figures["mrl"] = runs.evaluate(
                conn,
                data_dir,
                run.id,
                {"labels": "mrl", "file": str(utr5), **probe},
                evaluator="probe",
                device="cpu",
                on_progress=progress,
            )
            made = transcriptome(work / "transcriptome", genes=args.genes, seed=0)
            ingest(conn, "transcripts", made.transcript_files, {}, rejects_dir=work)
            config = IsoCLRConfig(encoder=args.encoder, epochs=args.epochs_synthetic, batch_size=128)
            run = train(conn, data_dir, config)
            figures["synthetic_pretraining"] = {"data": run.record["data"], **throughput(run)}
            figures["synthetic_isoforms"] = runs.evaluate(conn, data_dir, run.id, {}, device="cpu")
            print("half-life (synthetic)", flush=True)
            figures["synthetic_half_life"] = runs.evaluate(
                conn,
                data_dir,
                run.id,
                {"labels": "half-life", "file": str(made.half_life), **probe},
                evaluator="probe",
                device="cpu",
                on_progress=progress,
            )
            if torch.cuda.is_available():
                cuda = train(
                    conn,
                    data_dir,
                    IsoCLRConfig(corpus=str(utr3), encoder="medium", epochs=2, batch_size=768),
                    device="cuda",
                )
                figures["cuda_bf16_utr3"] = throughput(cuda)
    finally:
        ts.server.stop(force=True, timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    for key in ("utr3_jurkat", "utr3_beas2b", "mrl", "synthetic_half_life"):
        result = figures[key]
        figures.setdefault("summary", {})[key] = {
            "isoclr": {f: v["pearson_r"]["mean"] for f, v in result["methods"]["isoclr"].items()},
            "margin": result["margin"],
        }
    figures["seconds"] = round(time.perf_counter() - started, 1)
    figures["deviation"] = (
        "real tasks pretrain on the UTR sequences of the evaluation set "
        "itself (labels never read; transductive), not on isoforms"
    )
    write_result("isoclr", figures)


if __name__ == "__main__":
    main()
