"""How long provisioning and running the managed Neo4j takes: cold, warm and no-op install, first
start (store creation and initial password), restart on an existing store, stop (beside a stop
with Neo4j's own Bolt shutdown quiet period, in the same run), server memory.

    python benchmarks/server_lifecycle.py [--repeats 3] [--out FILE]

"cold" resolves everything from Maven Central into an empty local repository (network-bound);
"warm" copies from the user's ~/.m2 into an empty kgctl cache.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).parent))

from machine import write_result  # noqa: E402

from kgctl.graph.install import distribution, install  # noqa: E402
from kgctl.graph.server import ManagedServer  # noqa: E402
from kgctl.testing.fixtures import make_test_server  # noqa: E402

QUIET_PERIOD = "internal.dbms.bolt.netty_server_shutdown_quiet_period"


class NeoDefaultShutdown(ManagedServer):
    """The same server without kgctl's shutdown setting, to time stop side by side."""

    def settings(self) -> dict[str, str]:
        conf = super().settings()
        conf.pop(QUIET_PERIOD)
        return conf


T = TypeVar("T")


def timed(func: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="restarts to time")
    parser.add_argument("--skip-cold", action="store_true", help="skip the network-bound cold install")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="kgctl-bench-") as tmp:
        base = Path(tmp)
        if not args.skip_cold:
            seconds, result = timed(
                lambda: install(distribution(base / "cold"), maven_args=(f"-Dmaven.repo.local={base / 'm2'}",))
            )
            figures["install_cold_seconds"] = round(seconds, 2)
            figures["install_jars"] = result.jars
        seconds, _ = timed(lambda: install(distribution(base / "warm")))
        figures["install_warm_seconds"] = round(seconds, 2)
        seconds, result = timed(lambda: install(distribution(base / "warm")))
        assert result.already_installed
        figures["install_noop_seconds"] = round(seconds, 4)

        test_server = make_test_server(base / "server", cache_dir=base / "warm")
        srv = test_server.server
        seconds, first = timed(srv.start)
        figures["first_start_seconds"] = round(seconds, 2)
        figures["heap"], figures["pagecache"] = srv.memory()
        figures["server_rss_bytes_after_start"] = rss_bytes(int(first["pid"]))  # type: ignore[call-overload]
        starts, stops = [], []
        for _ in range(args.repeats):
            stops.append(timed(srv.stop)[0])
            starts.append(timed(srv.start)[0])
        srv.stop()
        neo4j_default = NeoDefaultShutdown(srv.config)
        neo4j_default.start()
        figures["restart_seconds"] = [round(s, 2) for s in starts]
        figures["restart_seconds_median"] = round(statistics.median(starts), 2)
        figures["stop_seconds"] = [round(s, 2) for s in stops]
        figures["stop_seconds_median"] = round(statistics.median(stops), 2)
        default_stop = round(timed(neo4j_default.stop)[0], 2)
        figures["stop_seconds_neo4j_default_shutdown"] = default_stop
        figures["stop_speedup_vs_neo4j_default"] = round(default_stop / statistics.median(stops), 1)
        figures["store_size_bytes"] = srv.store_size_bytes()
    write_result("server_lifecycle", figures, args.out)


if __name__ == "__main__":
    main()
