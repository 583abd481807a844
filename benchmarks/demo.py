"""`kgctl demo` on a fresh server in a temporary folder: the seconds of each step and the
held-out figures it prints, as JSON.

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

from machine import write_result  # noqa: E402

from kgctl.demo import run_demo  # noqa: E402
from kgctl.graph.connection import start_managed  # noqa: E402
from kgctl.testing import make_test_server  # noqa: E402


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="kgctl-demo-"))
    ts = make_test_server(work / "server", start_timeout=300)
    try:
        started = time.perf_counter()
        start_managed(ts.settings)
        server_seconds = round(time.perf_counter() - started, 1)
        with ts.connect() as conn:
            result = run_demo(conn, ts.settings.paths.data_dir)
    finally:
        ts.server.stop(force=True, timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    figures = {"server_start_seconds": server_seconds, "demo_seconds": result["seconds"],
               "timings": result["timings"], "evaluation": result["evaluation"],
               "planted_truth": result["planted_truth"], "written": result["written"],
               "gene": result["gene"], "novel_candidates": result["novel_candidates"]}  # fmt: skip
    write_result("demo", figures)


if __name__ == "__main__":
    main()
