"""The managed Neo4j against real servers: start, status, double start, stop/start keeping data,
a busy port, a startup crash, a stop that has to give up, a wrong password."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

import pytest

from kgctl.core.errors import KgctlError
from kgctl.graph.connection import open_connection, server_facts
from kgctl.graph.server import ManagedServer
from kgctl.testing.fixtures import TestServer, make_test_server, run_cli

pytestmark = pytest.mark.neo4j


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def test_status_reports_a_running_server(neo4j_server: TestServer) -> None:
    status = neo4j_server.server.status()
    assert status["running"] is True and isinstance(status["pid"], int)
    assert status["bolt_uri"] == f"bolt://127.0.0.1:{neo4j_server.settings.server.bolt_port}"
    assert int(status["store_size_bytes"]) > 0  # type: ignore[call-overload]
    with neo4j_server.connect() as conn:
        facts = server_facts(conn)
    assert str(facts["neo4j_version"]).startswith("5.26.")
    assert facts["edition"] == "community"


def test_browser_is_served_and_discovery_advertises_our_bolt_port(neo4j_server: TestServer) -> None:
    code, page = get(neo4j_server.server.browser_url)
    assert code == 200 and "<title>Neo4j Browser</title>" in page
    _, discovery = get(neo4j_server.server.http_url)
    port = neo4j_server.settings.server.bolt_port
    assert json.loads(discovery)["bolt_direct"] == f"bolt://127.0.0.1:{port}"


def test_apoc_is_loaded(neo4j_server: TestServer) -> None:
    with neo4j_server.connect() as conn:
        version = conn.query("RETURN apoc.version() AS v")[0]["v"]
    assert version.startswith("5.26.")


def test_the_password_and_the_store_are_private(neo4j_server: TestServer) -> None:
    server = neo4j_server.server
    assert server.config.password_file.stat().st_mode & 0o777 == 0o600
    assert server.config.password_file.parent.stat().st_mode & 0o777 == 0o700
    assert server.home.stat().st_mode & 0o777 == 0o700  # store, auth.ini, logs: owner only
    for path in (server.data_dir / "dbms" / "auth.ini", server.log_file):
        assert path.stat().st_mode & 0o077 == 0, path  # written under the server's umask 077
    # The password reached neo4j-admin through an argument file (it works: the session's
    # server answers to it) and is on no command line of the running server.
    pid = server.pid()
    assert pid is not None
    assert server.password() not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")


def test_double_start_says_already_running(neo4j_server: TestServer) -> None:
    pid = neo4j_server.server.pid()
    result = neo4j_server.server.start()
    assert result["already_running"] is True and result["pid"] == pid


def test_wrong_password_is_one_clear_error(neo4j_server: TestServer) -> None:
    with pytest.raises(KgctlError, match="rejected the credentials of user 'neo4j'"):
        open_connection(neo4j_server.server.bolt_uri, "neo4j", "not-the-password", "neo4j")


def test_unreachable_server_is_one_clear_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(KgctlError, match=f"cannot reach Neo4j at bolt://127.0.0.1:{port}"):
        open_connection(f"bolt://127.0.0.1:{port}", "neo4j", "x", "neo4j")


def test_port_already_in_use(neo4j_server: TestServer, tmp_path: Path) -> None:
    # The session server holds its Bolt port; a second server configured with it must refuse.
    clash = make_test_server(tmp_path, bolt_port=neo4j_server.settings.server.bolt_port)
    with pytest.raises(KgctlError, match=r"port \d+ \(bolt\) on 127.0.0.1 is already in use"):
        clash.server.start()
    assert clash.server.pid() is None and not clash.server.pid_file.exists()


@pytest.mark.slow
def test_stop_and_start_keep_the_data(spare_server: TestServer) -> None:
    srv = spare_server.server
    first = srv.start()
    assert first["already_running"] is False
    with spare_server.connect() as conn:
        conn.query("CREATE (:Gene {id: 'TP53'})", write=True)
    stopped = srv.stop()
    assert stopped["was_running"] is True and stopped["killed"] is False
    assert srv.pid() is None and srv.status()["running"] is False
    assert srv.stop() == {"was_running": False}
    second = srv.start()
    assert second["already_running"] is False and second["pid"] != first["pid"]
    with spare_server.connect() as conn:
        assert conn.query("MATCH (g:Gene {id: 'TP53'}) RETURN count(g) AS n")[0]["n"] == 1


@pytest.mark.slow
def test_startup_crash_reports_exit_code_and_log_tail(spare_server: TestServer) -> None:
    srv = spare_server.server
    srv.start()  # initialise the store (and password) with a good configuration
    srv.stop()
    bad_setting = {"server.bolt.thread_pool_max_size": "many"}
    broken = ManagedServer(replace(srv.config, server=replace(srv.config.server, settings=bad_setting)))
    with pytest.raises(KgctlError) as err:
        broken.start()
    assert "Neo4j exited during startup with code" in err.value.message
    assert err.value.detail and "server.bolt.thread_pool_max_size" in err.value.detail
    assert broken.pid() is None
    assert srv.start()["already_running"] is False  # the good configuration still starts


@pytest.mark.slow
def test_stop_gives_up_loudly_then_force_kills_and_nothing_is_lost(
    spare_server: TestServer,
) -> None:
    srv = spare_server.server
    pid = srv.start()["pid"]
    assert isinstance(pid, int)
    with spare_server.connect() as conn:
        conn.query("CREATE (:Gene {id: 'BRCA1'})", write=True)
    os.kill(pid, signal.SIGSTOP)  # a server that does not react to SIGTERM
    try:
        with pytest.raises(KgctlError, match=rf"Neo4j \(pid {pid}\) is still running 2 s after SIGTERM"):
            srv.stop(timeout=2)
        assert srv.pid() == pid
        result = srv.stop(timeout=1, force=True)
        assert result["killed"] is True
        assert srv.pid() is None
        srv.start()  # recovery from the transaction log
        with spare_server.connect() as conn:
            assert conn.query("MATCH (g:Gene {id: 'BRCA1'}) RETURN count(g) AS n")[0]["n"] == 1
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def test_a_command_waits_for_a_start_that_was_interrupted(spare_server: TestServer) -> None:
    """`kgctl db start` killed while Neo4j starts leaves the server starting on its own; the
    next command waits for it instead of failing with 'connection refused'."""
    srv = spare_server.server
    starting = subprocess.Popen(
        [sys.executable, "-m", "kgctl.cli", "db", "start"],
        env=spare_server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600  # install and first start on a slow machine
    while srv.pid() is None and time.monotonic() < deadline and starting.poll() is None:
        time.sleep(0.05)
    starting.kill()  # as a user's Ctrl-\\ or a crash would, before Neo4j answers
    starting.wait()
    assert srv.pid() is not None
    proc = run_cli(spare_server.env, "query", "graph-stats", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
