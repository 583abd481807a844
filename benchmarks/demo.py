"""`kgctl demo` on a fresh server in a temporary folder: the seconds of each step, the
held-out figures it prints and what it chose on validation, as JSON; then the study behind CAL's
defaults on the demo's data (transform × masking, validation AUC only).

    python benchmarks/demo.py

Writes benchmarks/results/demo.json.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from cal_real import defaults_study  # noqa: E402
from machine import write_result  # noqa: E402

from kgctl.demo import DEMO_CONFIG, SEEDS, run_demo  # noqa: E402
from kgctl.graph.connection import start_managed  # noqa: E402
from kgctl.models import runs  # noqa: E402
from kgctl.models.association.data import Inputs  # noqa: E402
from kgctl.testing.fixtures import make_test_server  # noqa: E402


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="kgctl-demo-"))
    ts = make_test_server(work / "server", start_timeout=300)
    try:
        started = time.perf_counter()
        start_managed(ts.settings)
        server_seconds = round(time.perf_counter() - started, 1)
        with ts.connect() as conn:
            result = run_demo(conn, ts.settings.paths.data_dir)
        data_dir = ts.settings.paths.data_dir
        inputs = Inputs.load(runs.load_run(data_dir, result["evaluated_run_id"]).dir / runs.INPUTS)
        study = defaults_study(
            inputs, DEMO_CONFIG.replace(dataset=result["dataset"]), work / "study", ",".join(map(str, SEEDS))
        )
    finally:
        ts.server.stop(force=True, timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    figures = {
        "server_start_seconds": server_seconds,
        "demo_seconds": result["seconds"],
        "timings": result["timings"],
        "evaluation": result["evaluation"],
        "planted_truth": result["planted_truth"],
        "written": result["written"],
        "selection": result["selection"],
        "defaults_study": study,
        "gene": result["gene"],
        "novel_candidates": result["novel_candidates"],
    }
    write_result("demo", figures)


if __name__ == "__main__":
    main()
