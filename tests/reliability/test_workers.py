"""Worker processes do not outlive the command that started them, even when it is SIGKILLed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

KILLED_PARENT = """
import json, os, signal, time
from concurrent.futures import ProcessPoolExecutor
from kgctl.ingest.molecules import die_with_parent

pool = ProcessPoolExecutor(2, initializer=die_with_parent, initargs=(os.getpid(),))
futures = [pool.submit(time.sleep, 600) for _ in range(2)]
while len(pool._processes) < 2:
    time.sleep(0.05)
print(json.dumps(list(pool._processes)), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # as `kill -9` of a molecules ingest
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" not in status.read()
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_rdkit_workers_end_with_a_killed_ingest() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", KILLED_PARENT], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert parent.stdout is not None
    workers = json.loads(parent.stdout.readline())  # not .communicate(): a survivor holds the pipe
    try:
        assert parent.wait(timeout=300) == -9 and len(workers) == 2
        deadline = time.monotonic() + 60
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in workers if alive(pid)], "workers outlived the killed parent"
    finally:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
