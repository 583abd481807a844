"""The managed server's configuration and process bookkeeping, without starting Neo4j."""

import os
import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kgctl.core.errors import KgctlError
from kgctl.core.settings import ServerSettings
from kgctl.graph.install import POM, Distribution, Pins, distribution, find_java, install, read_pins
from kgctl.graph.server import (
    ManagedServer,
    ServerConfig,
    default_memory,
    generate_password,
    port_is_free,
)
from kgctl.testing.fixtures import in_ci

GIB = 1024**3


def server(tmp_path: Path, java: str | None = None, **settings: Any) -> ManagedServer:
    dist = Distribution(tmp_path / "dist", Pins("5.26.30", "5.24.0", "5.26.5"))
    config = ServerConfig(tmp_path / "home", tmp_path / "pw", dist, ServerSettings(**settings), java)
    return ManagedServer(config)


@pytest.mark.parametrize(
    ("total", "expected"),
    [(24 * GIB, ("4096m", "6144m")), (2 * GIB, ("512m", "512m")), (64 * GIB, ("4096m", "8192m"))],
)
def test_memory_is_sized_from_the_machine(total: int, expected: tuple[str, str]) -> None:
    assert default_memory(total) == expected


def test_conf_is_loopback_only_with_auth_and_absolute_folders(tmp_path: Path) -> None:
    srv = server(tmp_path, bolt_port=17687, http_port=17474, heap="1g", pagecache="256m")
    conf = srv.settings()
    assert conf["server.default_listen_address"] == "127.0.0.1"
    assert conf["server.bolt.listen_address"] == "127.0.0.1:17687"
    # Browser connects to the advertised Bolt address, so it must be the configured port.
    assert conf["server.bolt.advertised_address"] == "127.0.0.1:17687"
    assert conf["dbms.security.auth_enabled"] == "true"
    assert conf["server.memory.heap.max_size"] == "1g"
    for key, value in conf.items():
        if key.startswith("server.directories."):
            assert Path(value).is_absolute(), key
    text = srv.write_config().read_text()
    assert "server.http.listen_address=127.0.0.1:17474\n" in text


def test_extra_settings_override_and_injection_is_refused(tmp_path: Path) -> None:
    srv = server(tmp_path, settings={"db.tx_log.rotation.retention_policy": "keep_none"})
    assert srv.settings()["db.tx_log.rotation.retention_policy"] == "keep_none"
    bad = server(tmp_path, settings={"db.x": "1\ndbms.security.auth_enabled=false"})
    with pytest.raises(KgctlError, match="invalid key or value"):
        bad.settings()


def test_bad_memory_size_is_named(tmp_path: Path) -> None:
    with pytest.raises(KgctlError, match="server.heap must be a size"):
        server(tmp_path, heap="lots").settings()


def test_stale_pid_file_is_ignored_and_removed(tmp_path: Path) -> None:
    srv = server(tmp_path)
    srv.pid_file.parent.mkdir(parents=True)
    srv.pid_file.write_text(f"{os.getpid()}\n")  # alive, but not a Neo4j of this home
    assert srv.pid() is None
    assert not srv.pid_file.exists()
    assert srv.status()["running"] is False
    assert srv.stop() == {"was_running": False}


def test_port_in_use_is_detected() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert not port_is_free(sock.getsockname()[1])


def test_pins_come_from_the_pom() -> None:
    pins = read_pins(POM)
    assert pins.neo4j.startswith("5.26.") and pins.apoc.startswith("5.26.")
    dist = distribution(Path("/cache"), pins)
    assert dist.root == Path(f"/cache/neo4j/{pins.neo4j}-apoc{pins.apoc}-browser{pins.browser}")
    # lib before plugins: APOC's bundled commons-lang3 must not shadow Neo4j's.
    assert dist.classpath().index("/lib/") < dist.classpath().index("/plugins/")


def test_missing_java_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(KgctlError, match=r"Java not found \(/nonexistent/bin/java\)"):
        find_java("/nonexistent/bin/java")
    with pytest.raises(KgctlError, match="Java not found"):
        server(tmp_path, java="/nonexistent/bin/java").start()


@pytest.mark.skipif(shutil.which("mvn") is None and not in_ci(), reason="Maven is not installed")
def test_maven_failure_is_reported_with_its_errors(tmp_path: Path) -> None:
    # Offline with an empty local repository: a real Maven resolution failure, fast.
    dist = distribution(tmp_path / "cache")
    with pytest.raises(KgctlError) as err:
        install(dist, maven_args=("-o", f"-Dmaven.repo.local={tmp_path / 'm2'}"))
    assert err.value.message.startswith("Maven could not resolve Neo4j")
    assert err.value.detail and "[ERROR]" in err.value.detail
    assert not dist.root.exists()
    assert list(dist.root.parent.iterdir()) == []  # the scratch folder is gone too


def test_generated_passwords_are_plain_alphanumerics() -> None:
    # token_urlsafe once produced "-VLoO…", which neo4j-admin parsed as an option.
    passwords = {generate_password() for _ in range(2000)}
    assert len(passwords) == 2000
    assert all(len(p) == 32 and p.isascii() and p.isalnum() for p in passwords)


conf_keys = st.from_regex(r"[a-z][a-z_]{0,10}(\.[a-z][a-z0-9_]{0,10}){1,3}", fullmatch=True)
conf_values = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=20)


@settings(max_examples=200, deadline=None)
@given(extra=st.dictionaries(conf_keys, conf_values, max_size=6))
def test_any_extra_settings_round_trip_one_line_each(extra: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        srv = server(Path(tmp), settings=extra)
        text = srv.write_config().read_text()
    lines = [line for line in re.split(r"\r\n|\r|\n", text) if line and not line.startswith("#")]
    parsed = dict(line.split("=", 1) for line in lines)
    assert len(parsed) == len(lines)  # no key written twice, no line split in two
    assert parsed == srv.settings()
    assert all(parsed[k] == v for k, v in extra.items())


@given(value=st.sampled_from(["a\nb", "a\rb", "\r\n"]), key=st.sampled_from(["db.x", "a=b.c", "x"]))
def test_line_breaks_and_bad_keys_are_refused(value: str, key: str) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        pytest.raises(KgctlError, match="invalid key or value"),
    ):
        server(Path(tmp), settings={key: value}).settings()
