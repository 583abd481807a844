"""InfoAlign on the real context graph built from ../shared/data (`kgctl build context`, on a
fresh Neo4j): pretraining throughput (molecules/s on the CPU, and on CUDA with bf16 when there is
one), the held-out drug targets against Tanimoto nearest neighbours and a random forest, and the
four property sets (ChEMBL2K, Broad6K, ToxCast, Biogen3K) with the frozen encoder, the encoder
joined with fingerprints, fine-tuned and trained from scratch, beside the baselines a chemist
would pick (class-balanced random forest and Tanimoto k-NN chosen on validation, fingerprint MLP,
D-MPNN) and the encoder without pretraining, 5 seeds on each split rule (ours and the official
repository's), with each set's molecules with and without context edges scored apart.

    python benchmarks/infoalign.py [--epochs 20] [--sets chembl2k,broad6k,toxcast,biogen3k]
                                   [--split-rules grouped,official]
                                   [--work DIR [--run RUN]] [--keep-other-sets]

`--work DIR` keeps the server and runs there; with `--run RUN` an earlier run in it is evaluated,
without building or training, keeping the figures the JSON already holds for that run. Writes benchmarks/results/infoalign.json after every step.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))

from machine import RESULTS, write_result  # noqa: E402

from kgctl.demo.context import build_context_graph  # noqa: E402
from kgctl.graph.connection import (
    Connection,  # noqa: E402
    start_managed,  # noqa: E402
)
from kgctl.models import runs  # noqa: E402
from kgctl.models.infoalign import InfoAlignConfig  # noqa: E402
from kgctl.models.infoalign.config import PUBLISHED  # noqa: E402
from kgctl.models.probing.molecules import SETS  # noqa: E402
from kgctl.testing.fixtures import make_test_server, shared_data_dir, test_server_at  # noqa: E402

RESULT = RESULTS / "infoalign.json"


def progress(done: float, total: float | None, text: str) -> None:
    if total and (int(done) == int(total) or int(done) % 5 == 0):
        print(f"  {text}", flush=True)


def throughput(run: runs.Run) -> dict[str, Any]:
    """Molecules (each with its walk and decoders) per second of training."""
    training = run.record["metrics"]["training"]
    config = InfoAlignConfig(**run.config)
    return {
        "device": training["device"],
        "precision": training["precision"],
        "hidden": config.hidden,
        "layers": config.layers,
        "batch_size": config.batch_size,
        "epochs": training["epochs_done"],
        "seconds_per_epoch": training["seconds_per_epoch"],
        "peak_memory_gb": training["peak_memory_gb"],
        "molecules_per_s": round(run.record["data"]["molecules"] / training["seconds_per_epoch"], 1),
        "final": training["final"],
    }


def graph_facts(conn: Connection) -> dict[str, Any]:
    """What every ingest and build of the graph did (from their IngestRun nodes), and counts."""
    runs_ = conn.query(
        "MATCH (r:IngestRun) RETURN r.adapter AS adapter, r.source AS source, "
        "r.files AS files, r.status AS status, r.rows_read AS rows_read, "
        "r.rows_rejected AS rows_rejected, r.nodes_written AS nodes_written, "
        "r.relationships_written AS relationships_written, r.options AS options "
        "ORDER BY r.finished_at"
    )
    for r in runs_:
        r["files"] = [Path(f).name for f in r["files"] or []]
    labels = conn.query("MATCH (n) UNWIND labels(n) AS l RETURN l, count(*) AS n ORDER BY l")
    types = conn.query("MATCH ()-[r]->() RETURN type(r) AS t, count(*) AS n ORDER BY t")
    return {
        "runs": runs_,
        "nodes": {r["l"]: r["n"] for r in labels},
        "relationships": {r["t"]: r["n"] for r in types},
        "modalities": "molecules (fingerprints), genes (DepMap gene effect), L1000 expression, "
        "Cell Painting consensus profiles (LINCS and JUMP-MOA plates, cell-injury study)",
    }


def result_key(name: str, rule: str) -> str:
    """The JSON key of a set's figures under a split rule (ours keeps the set's bare name)."""
    return name if rule == "grouped" else f"{name}_{rule}"


RESULT_KEYS = [result_key(n, r) for n in SETS for r in ("grouped", "official")]


def keep_other_sets(figures: dict[str, Any], before: dict[str, Any]) -> None:
    """The earlier JSON's sets that this run did not measure, each with its run id; when that
    run is another, its pretraining and held-out targets too."""
    kept = [n for n in RESULT_KEYS if n not in figures and isinstance(before.get(n), dict)]
    figures |= {n: before[n] for n in kept}
    if kept and before["pretraining"]["run"] != figures["pretraining"]["run"]:
        figures["earlier_run"] = {"sets": kept, "pretraining": before["pretraining"], "targets": before["targets"]}


def all_labels(methods: dict[str, Any]) -> dict[str, Any]:
    """Each method's figures with all the training labels (the `probe` keys them by label share;
    sets kept from a JSON written before it are not)."""
    return {m: v.get("1", v) for m, v in methods.items()}


def summary_of(figures: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for name in (n for n in RESULT_KEYS if n in figures):
        result = figures[name]
        key = result["metric"]
        summary[name] = {
            "metric": key,
            "run": result["run_id"],
            "split_rule": result.get("split_rule"),
            "context_share": result["context"]["share_with_context_edges"],
            **{m: f"{v[key]['mean']:.4f} ± {v[key]['sd']:.4f}" for m, v in all_labels(result["methods"]).items()},
        }
        for group, table in result.get("subsets", {}).items():
            summary[name][group] = {
                "molecules": table["items"],
                **{m: f"{v[key]['mean']:.4f}" for m, v in all_labels(table["methods"]).items()},
            }
    summary["targets"] = figures["targets"].get("methods")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--rf-trees", type=int, default=500)
    parser.add_argument("--split-rules", default="grouped,official", help="grouped (ours) and/or official")
    parser.add_argument("--work", help="keep the server and runs in this folder (reuse it if there)")
    parser.add_argument("--run", help="with --work: evaluate this earlier run again")
    parser.add_argument(
        "--keep-other-sets",
        action="store_true",
        help="keep the JSON's figures for the sets not in --sets, each with the "
        "run it was measured on (and that run's pretraining and held-out targets)",
    )
    args = parser.parse_args()
    data = shared_data_dir()
    keep = args.work is not None
    work = Path(args.work) if keep else Path(tempfile.mkdtemp(prefix="kgctl-infoalign-"))
    if (work / "server" / "kgctl.toml").exists():
        ts = test_server_at(work / "server")
    else:
        ts = make_test_server(work / "server", heap="2g", pagecache="1g", start_timeout=300)
    start_managed(ts.settings)
    started = time.perf_counter()
    before = json.loads(RESULT.read_text())["figures"] if RESULT.exists() else {}  # read once
    figures: dict[str, Any] = {"torch_threads": torch.get_num_threads()}
    try:
        with ts.connect() as conn:
            data_dir = ts.settings.paths.data_dir
            if args.run:
                run = runs.load_run(data_dir, args.run)
                if before.get("pretraining", {}).get("run") == run.id:  # keep what it measured
                    figures |= {k: v for k, v in before.items() if k not in ("summary", "seconds")}
            else:
                built = build_context_graph(conn, data, work / "context", on_progress=progress)
                figures["graph_seconds"] = built["seconds"]
                config = InfoAlignConfig(epochs=args.epochs, dataset=built["gene_dataset"] or "")
                run = runs.train(conn, data_dir, "infoalign", config, device="cpu", on_progress=progress)
            figures["graph"] = graph_facts(conn)
            figures["pretraining"] = {
                "run": run.id,
                "config": run.config,
                "data": run.record["data"],
                "cpu": throughput(run),
            }
            if torch.cuda.is_available():
                published = InfoAlignConfig.load(PUBLISHED, "infoalign", epochs=3, dataset=run.config["dataset"])
                cuda = runs.train(conn, data_dir, "infoalign", published, device="cuda")
                figures["pretraining"]["cuda_bf16_published_config"] = throughput(cuda)
            if "targets" not in figures:
                print("held-out targets", flush=True)
                figures["targets"] = runs.evaluate(
                    conn,
                    data_dir,
                    run.id,
                    {"task": "targets"},  # its forest is one multi-output forest: 100 trees (500 need > 24 GB)
                    evaluator="retrieval",
                    device="cpu",
                )
                write_result("infoalign", figures)
            for name in args.sets.split(","):
                for rule in args.split_rules.split(","):
                    key = result_key(name, rule)
                    if key in figures:
                        continue
                    print(key, flush=True)
                    figures[key] = runs.evaluate(
                        conn,
                        data_dir,
                        run.id,
                        {
                            "probe_seeds": args.seeds,
                            "rf_trees": args.rf_trees,
                            "labels": name,
                            "file": str(data / "infoalign" / SETS[name][0]),
                            "split_rule": rule,
                        },
                        evaluator="probe",
                        device="cpu",
                        on_progress=progress,
                    )
                    write_result("infoalign", figures)
    finally:
        if not keep:
            ts.server.stop(force=True, timeout=60)
            shutil.rmtree(work, ignore_errors=True)
    if args.keep_other_sets:
        keep_other_sets(figures, before)
    if before and not before.get("graph", {}).get("nodes", {}).get("MorphologyProfile"):
        # The run before this one walked the same graph less the Cell Painting profiles.
        figures["without_morphology"] = {
            "pretraining_run": before["pretraining"]["run"],
            "graph_nodes": before["graph"]["nodes"],
            "summary": before.get("summary", {}),
        }
    figures["summary"] = summary_of(figures)
    figures["seconds"] = round(time.perf_counter() - started, 1)
    write_result("infoalign", figures)


if __name__ == "__main__":
    main()
