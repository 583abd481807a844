"""What a new user or CI waits for: `make test` in a fresh clone, stage by stage, with empty pip,
Maven and kgctl caches (so every package and jar is downloaded).

    python benchmarks/fresh_clone.py [--warm] [--out FILE]

Stages: `.venv` with kgctl and its dependencies, `kgctl db install` (Maven), the test suite.
--warm keeps the user's caches, which is what a second clone on the same machine sees.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from machine import write_result  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    return seconds, proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warm", action="store_true", help="keep the user's pip, Maven and kgctl caches")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kgctl-clone-") as tmp:
        base = Path(tmp)
        clone = base / "kgctl"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "KGCTL_", "VIRTUAL_ENV"))}
        env["CI"] = "true"
        if not args.warm:
            env |= {
                "PIP_CACHE_DIR": str(base / "pip"),
                "XDG_CACHE_HOME": str(base / "cache"),
                "MAVEN_OPTS": f"-Dmaven.repo.local={base / 'm2'}",
            }
        figures: dict[str, object] = {"caches": "warm" if args.warm else "empty"}
        figures["venv_and_packages_seconds"], _ = run(["make", ".venv/.kgctl-installed"], clone, env)
        figures["neo4j_install_seconds"], _ = run(["make", "neo4j"], clone, env)
        figures["pytest_seconds"], output = run(["make", "test"], clone, env)
        summary = re.findall(r"=+ (.*(?:passed|failed).*) in [\d.]+s", output)
        figures["pytest_summary"] = summary[-1] if summary else None
        stages = ("venv_and_packages_seconds", "neo4j_install_seconds", "pytest_seconds")
        figures["make_test_total_seconds"] = sum(float(str(figures[k])) for k in stages)
        figures = {k: round(v, 1) if isinstance(v, float) else v for k, v in figures.items()}
    suffix = "warm" if args.warm else "cold"
    write_result(f"fresh_clone_{suffix}", figures, args.out)


if __name__ == "__main__":
    main()
