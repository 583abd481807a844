"""Settings: environment variables win over `kgctl.toml`, which wins over defaults.

With no `NEO4J_URI` anywhere, kgctl uses the managed local server it provisions itself.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgctl.core.errors import KgctlError

CONFIG_FILE_NAME = "kgctl.toml"
PASSWORD_FILE_NAME = "neo4j-password"

# The keys kgctl.toml may hold, with their types; anything else is a typo and is reported.
_TOML_SCHEMA: dict[str, dict[str, type | tuple[type, ...]]] = {
    "neo4j": {"uri": str, "user": str, "password": str, "database": str},
    "server": {
        "bolt_port": int,
        "http_port": int,
        "heap": str,
        "pagecache": str,
        "start_timeout": (int, float),
        "stop_timeout": (int, float),
        "settings": dict,
    },
    "paths": {"data_dir": str, "config_dir": str, "cache_dir": str},
}
_TYPE_NAMES: dict[type | tuple[type, ...], str] = {
    int: "an integer",
    str: "a string",
    dict: "a table",
}


@dataclass(frozen=True)
class Paths:
    """Where kgctl keeps the managed server's store, its credentials and the Neo4j distribution."""

    data_dir: Path
    config_dir: Path
    cache_dir: Path

    @property
    def server_home(self) -> Path:
        return self.data_dir / "neo4j"

    @property
    def password_file(self) -> Path:
        return self.config_dir / PASSWORD_FILE_NAME


@dataclass(frozen=True)
class Neo4jSettings:
    """How to reach Neo4j. `uri is None` means the managed local server."""

    uri: str | None = None
    user: str = "neo4j"
    password: str | None = None
    database: str = "neo4j"

    @property
    def managed(self) -> bool:
        return self.uri is None


@dataclass(frozen=True)
class ServerSettings:
    """The managed server: ports, memory (None = sized from the machine), timeouts, extra neo4j.conf lines."""

    bolt_port: int = 7687
    http_port: int = 7474
    heap: str | None = None
    pagecache: str | None = None
    start_timeout: float = 180.0
    stop_timeout: float = 120.0
    settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    paths: Paths
    neo4j: Neo4jSettings
    server: ServerSettings
    config_file: Path | None = None


def _xdg(env: Mapping[str, str], var: str, fallback: str) -> Path:
    value = env.get(var)
    return Path(value) if value else Path(env.get("HOME", str(Path.home()))) / fallback


def find_config_file(env: Mapping[str, str], cwd: Path) -> Path | None:
    """`KGCTL_CONFIG` if set (it must exist), else ./kgctl.toml, else <config dir>/kgctl.toml."""
    explicit = env.get("KGCTL_CONFIG")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise KgctlError(f"KGCTL_CONFIG points to {path}, which is not a file")
        return path
    for candidate in (cwd / CONFIG_FILE_NAME, _default_config_dir(env) / CONFIG_FILE_NAME):
        if candidate.is_file():
            return candidate
    return None


def _default_config_dir(env: Mapping[str, str]) -> Path:
    if env.get("KGCTL_CONFIG_DIR"):
        return Path(env["KGCTL_CONFIG_DIR"])
    return _xdg(env, "XDG_CONFIG_HOME", ".config") / "kgctl"


def read_config_file(path: Path) -> dict[str, dict[str, Any]]:
    """Parse and type-check kgctl.toml; every problem names the file and the key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise KgctlError(f"{path}: not valid TOML: {exc}") from exc
    except OSError as exc:
        raise KgctlError(f"{path}: cannot read: {exc.strerror}") from exc
    for section, values in data.items():
        if section not in _TOML_SCHEMA:
            known = ", ".join(f"[{s}]" for s in _TOML_SCHEMA)
            raise KgctlError(f"{path}: unknown section [{section}] (known: {known})")
        if not isinstance(values, dict):
            raise KgctlError(f"{path}: [{section}] must be a table")
        for key, value in values.items():
            expected = _TOML_SCHEMA[section].get(key)
            if expected is None:
                known = ", ".join(_TOML_SCHEMA[section])
                raise KgctlError(f"{path}: unknown key {section}.{key} (known: {known})")
            if isinstance(value, bool) or not isinstance(value, expected):
                kind = _TYPE_NAMES.get(expected, "number")
                raise KgctlError(f"{path}: {section}.{key} must be {kind}, got {value!r}")
    return data


def _conf_value(value: object) -> str:
    """A TOML value as neo4j.conf spells it (`true`, not Python's `True`)."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def load_settings(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Resolve settings from `env` (default: os.environ) and the kgctl.toml that applies."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    config_file = find_config_file(env, cwd)
    config = read_config_file(config_file) if config_file else {}
    neo4j_cfg = config.get("neo4j", {})
    server_cfg = config.get("server", {})
    paths_cfg = config.get("paths", {})

    def pick(var: str, section: dict[str, Any], key: str) -> Any:
        return env.get(var) or section.get(key)

    paths = Paths(
        data_dir=Path(
            pick("KGCTL_HOME", paths_cfg, "data_dir") or _xdg(env, "XDG_DATA_HOME", ".local/share") / "kgctl"
        ),
        config_dir=Path(pick("KGCTL_CONFIG_DIR", paths_cfg, "config_dir") or _default_config_dir(env)),
        cache_dir=Path(
            pick("KGCTL_CACHE_DIR", paths_cfg, "cache_dir") or _xdg(env, "XDG_CACHE_HOME", ".cache") / "kgctl"
        ),
    )
    neo4j = Neo4jSettings(
        uri=pick("NEO4J_URI", neo4j_cfg, "uri"),
        user=pick("NEO4J_USER", neo4j_cfg, "user") or "neo4j",
        password=pick("NEO4J_PASSWORD", neo4j_cfg, "password"),
        database=pick("NEO4J_DATABASE", neo4j_cfg, "database") or "neo4j",
    )
    for key in ("bolt_port", "http_port"):
        port = server_cfg.get(key)
        if port is not None and not 1 <= port <= 65535:
            raise KgctlError(f"{config_file}: server.{key} must be a port number, got {port}")
    server = ServerSettings(
        **{k: v for k, v in server_cfg.items() if k != "settings"},
        settings={str(k): _conf_value(v) for k, v in server_cfg.get("settings", {}).items()},
    )
    return Settings(paths=paths, neo4j=neo4j, server=server, config_file=config_file)
