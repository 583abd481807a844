"""Settings resolution: environment over kgctl.toml over defaults, and clear errors for bad files."""

from pathlib import Path

import pytest

from kgctl.core.errors import KgctlError
from kgctl.core.settings import load_settings


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_use_the_managed_server_and_xdg_folders(tmp_path: Path) -> None:
    s = load_settings(env={"HOME": str(tmp_path)}, cwd=tmp_path)
    assert s.neo4j.managed and s.neo4j.uri is None
    assert (s.neo4j.user, s.neo4j.database) == ("neo4j", "neo4j")
    assert s.paths.data_dir == tmp_path / ".local/share/kgctl"
    assert s.paths.config_dir == tmp_path / ".config/kgctl"
    assert s.paths.cache_dir == tmp_path / ".cache/kgctl"
    assert s.paths.password_file == tmp_path / ".config/kgctl/neo4j-password"
    assert (s.server.bolt_port, s.server.http_port) == (7687, 7474)
    assert s.config_file is None


def test_environment_wins_over_kgctl_toml(tmp_path: Path) -> None:
    write(
        tmp_path / "kgctl.toml",
        '[neo4j]\nuri = "bolt://toml:7687"\nuser = "alice"\npassword = "p1"\n',
    )
    env = {"HOME": str(tmp_path), "NEO4J_URI": "neo4j+s://env:7687", "NEO4J_DATABASE": "graph"}
    s = load_settings(env=env, cwd=tmp_path)
    assert s.config_file == tmp_path / "kgctl.toml"
    assert not s.neo4j.managed
    assert s.neo4j.uri == "neo4j+s://env:7687"
    assert (s.neo4j.user, s.neo4j.password, s.neo4j.database) == ("alice", "p1", "graph")


def test_config_dir_toml_and_server_section(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    conf.mkdir()
    write(
        conf / "kgctl.toml",
        '[server]\nbolt_port = 17687\nheap = "2g"\n[server.settings]\n"db.x" = 5\n"db.y" = true\n',
    )
    s = load_settings(env={"HOME": str(tmp_path), "KGCTL_CONFIG_DIR": str(conf)}, cwd=tmp_path)
    assert s.server.bolt_port == 17687 and s.server.heap == "2g"
    assert dict(s.server.settings) == {"db.x": "5", "db.y": "true"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[neo4j]\nurl = 'x'\n", "unknown key neo4j.url"),
        ("[nope]\n", "unknown section [nope]"),
        ("[server]\nbolt_port = '7687'\n", "server.bolt_port must be an integer"),
        ("[server]\nbolt_port = 99999\n", "server.bolt_port must be a port number"),
        ("[neo4j\n", "not valid TOML"),
    ],
)
def test_bad_kgctl_toml_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "kgctl.toml", text)
    with pytest.raises(KgctlError) as err:
        load_settings(env={"HOME": str(tmp_path)}, cwd=tmp_path)
    assert str(path) in err.value.message
    assert message in err.value.message


def test_explicit_config_path_must_exist(tmp_path: Path) -> None:
    with pytest.raises(KgctlError, match="KGCTL_CONFIG points to .*missing.toml"):
        load_settings(env={"KGCTL_CONFIG": str(tmp_path / "missing.toml")}, cwd=tmp_path)
