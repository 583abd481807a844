"""Connecting to Neo4j: the configured server, or the managed local one (started on demand)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from neo4j import READ_ACCESS, Driver, GraphDatabase, RoutingControl
from neo4j.exceptions import AuthError, ConfigurationError, Neo4jError, ServiceUnavailable

from kgctl import __version__
from kgctl.core.errors import KgctlError
from kgctl.core.settings import Settings, load_settings
from kgctl.graph.schema import apply_schema
from kgctl.graph.server import ManagedServer


@dataclass
class Connection:
    """An open driver plus the database every query goes to; queries are always parameterised."""

    driver: Driver
    database: str
    uri: str

    def query(
        self, cypher: str, params: Mapping[str, Any] | None = None, *, write: bool = False
    ) -> list[dict[str, Any]]:
        routing = RoutingControl.WRITE if write else RoutingControl.READ
        records, _, _ = self.driver.execute_query(cypher, dict(params or {}), database_=self.database, routing_=routing)
        return [record.data() for record in records]

    def read(self, cypher: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """In a READ transaction, so the server refuses any write (named queries run so)."""
        with self.driver.session(database=self.database, default_access_mode=READ_ACCESS) as session:
            return session.execute_read(lambda tx: [record.data() for record in tx.run(cypher, dict(params or {}))])

    def run_autocommit(self, cypher: str, params: Mapping[str, Any] | None = None) -> None:
        """For statements that manage their own transactions (`CALL { … } IN TRANSACTIONS`)."""
        with self.driver.session(database=self.database) as session:
            session.run(cypher, dict(params or {})).consume()

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class CredentialsRejected(KgctlError):
    """The server answered and refused the user or password (not: the server is down)."""


def open_connection(uri: str, user: str, password: str | None, database: str) -> Connection:
    """Open and verify a connection; failures become one clear line."""
    auth = (user, password) if password is not None else None
    try:
        driver = GraphDatabase.driver(
            uri,
            auth=auth,
            user_agent=f"kgctl/{__version__}",
            notifications_min_severity="OFF",  # "label does not exist" on an empty graph is noise
        )
    except (ConfigurationError, ValueError) as exc:
        raise KgctlError(f"invalid Neo4j URI {uri!r}: {exc}") from exc
    try:
        driver.verify_connectivity()
    except AuthError as exc:
        driver.close()
        raise CredentialsRejected(
            f"Neo4j at {uri} rejected the credentials of user {user!r} "
            "(check NEO4J_USER / NEO4J_PASSWORD or [neo4j] in kgctl.toml)"
        ) from exc
    except (ServiceUnavailable, OSError) as exc:
        driver.close()
        raise KgctlError(f"cannot reach Neo4j at {uri}: {exc}") from exc
    except Neo4jError as exc:
        driver.close()
        raise KgctlError(f"Neo4j at {uri} refused the connection: {exc.message}") from exc
    return Connection(driver=driver, database=database, uri=uri)


def open_managed(server: ManagedServer, database: str = "neo4j") -> Connection:
    """A connection to a running managed server, as its generated admin user."""
    return open_connection(server.bolt_uri, "neo4j", server.password(), database)


def start_managed(settings: Settings, on_wait: Callable[[str], None] | None = None) -> dict[str, object]:
    """Start the managed server if needed and apply the schema: what a new user gets by default."""
    server = ManagedServer.from_settings(settings)
    result = server.start(on_wait=on_wait)
    with open_managed(server, settings.neo4j.database) as conn:
        result["schema"] = apply_schema(conn)
    return result


def connect(
    settings: Settings | None = None,
    *,
    start: bool = True,
    on_wait: Callable[[str], None] | None = None,
) -> Connection:
    """Connect as configured; with no NEO4J_URI, use (and if `start`, start) the managed server."""
    settings = settings or load_settings()
    cfg = settings.neo4j
    if not cfg.managed:
        assert cfg.uri is not None
        return open_connection(cfg.uri, cfg.user, cfg.password, cfg.database)
    if cfg.password is not None:
        raise KgctlError(
            "NEO4J_PASSWORD (or [neo4j] password) is set but NEO4J_URI is not: the managed server "
            "uses its generated password (`kgctl db password`); unset the password, or set "
            "NEO4J_URI to the server it belongs to"
        )
    server = ManagedServer.from_settings(settings)
    if server.pid() is None:
        if not start:
            raise KgctlError("the managed Neo4j server is not running: start it with `kgctl db start`")
        start_managed(settings, on_wait=on_wait)
    try:
        return open_managed(server, cfg.database)
    except CredentialsRejected:
        raise
    except KgctlError:
        if server.pid() is None:
            raise
        # Still starting (another command's start, or one that was interrupted): wait for it.
        server.start(on_wait=on_wait)
        return open_managed(server, cfg.database)


def server_facts(conn: Connection) -> dict[str, object]:
    """Version and size of the graph behind a connection (counts come from the count store)."""
    component = conn.query(
        "CALL dbms.components() YIELD name, versions, edition RETURN name, versions[0] AS version, edition"
    )[0]
    nodes = conn.query("MATCH (n) RETURN count(n) AS n")[0]["n"]
    rels = conn.query("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"]
    return {
        "neo4j_version": component["version"],
        "edition": component["edition"],
        "database": conn.database,
        "node_count": int(nodes),
        "relationship_count": int(rels),
    }
