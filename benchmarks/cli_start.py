"""How fast the command line answers: `kgctl --help`, `kgctl query --help`, `kgctl db status` and `kgctl browser --help`
beside a bare interpreter start, interleaved in one run (the ratio is what counts on a noisy
machine). Commands load lazily, so these import neither torch nor PyG nor RDKit.

    python benchmarks/cli_start.py [--repeats 9]

Writes benchmarks/results/cli_start.json.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from machine import write_result  # noqa: E402

KGCTL = str(Path(sys.executable).with_name("kgctl"))
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "kgctl --help": [KGCTL, "--help"],
    "kgctl query --help": [KGCTL, "query", "--help"],
    "kgctl db status": [KGCTL, "db", "status"],
    "kgctl browser --help": [KGCTL, "browser", "--help"],
    "kgctl train cal --help": [KGCTL, "train", "cal", "--help"],  # loads torch: for contrast
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            started = time.perf_counter()
            subprocess.run(command, capture_output=True, check=False, timeout=300)
            times[name].append(time.perf_counter() - started)
    bare = statistics.median(times["python -c pass"])
    figures: dict[str, Any] = {
        name: {
            "median_seconds": round(statistics.median(t), 4),
            "ratio_to_bare_python": round(statistics.median(t) / bare, 2),
        }
        for name, t in times.items()
    }
    status = subprocess.run(COMMANDS["kgctl db status"], capture_output=True, text=True, check=False)
    figures["db_status_said"] = status.stdout.splitlines()[0] if status.stdout else status.stderr[-200:]
    figures["repeats"] = args.repeats
    write_result("cli_start", figures)


if __name__ == "__main__":
    main()
