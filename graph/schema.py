"""The graph schema: a unique `id` per label, the indexes the writers need, a schema-version node.

Labels and relationship types are a whitelist; Cypher DDL cannot take them as parameters, so every
identifier spliced into a statement comes from the tuples below and is checked against them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from kgctl.core.errors import KgctlError

if TYPE_CHECKING:
    from kgctl.graph.connection import Connection

# 2: no relationship `ingest_run` indexes. 3: one provenance vocabulary (`run` for `ingest_run`
# and the predictions' `run_id`, `licence`, `created_at`).
SCHEMA_VERSION = 3
VERSION_LABEL = "SchemaVersion"
VERSION_ID = "kgctl"

NODE_LABELS: tuple[str, ...] = (
    "Gene",
    "Molecule",
    "Transcript",
    "CellLine",
    "ExpressionProfile",
    "MorphologyProfile",
    "Dataset",
    "IngestRun",
    "ModelRun",
)
RELATIONSHIP_TYPES: tuple[str, ...] = (
    "INTERACTS_WITH",
    "CO_ESSENTIAL",
    "TARGETS",
    "PERTURBS",
    "SIMILAR_TO",
    "ISOFORM_OF",
    "ORTHOLOG_OF",
    "PREDICTED_ASSOCIATION",
)

# INTERACTS_WITH's evidence channels, one property each (STRING v12's detailed and full layouts).
STRING_CHANNELS: tuple[str, ...] = (
    "coexpression",
    "coexpression_transferred",
    "cooccurence",
    "database",
    "database_transferred",
    "experimental",
    "experiments",
    "experiments_transferred",
    "fusion",
    "homology",
    "neighborhood",
    "neighborhood_transferred",
    "textmining",
    "textmining_transferred",
)

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def snake(name: str) -> str:
    """CamelCase labels and UPPER_SNAKE types alike become lower_snake index names."""
    if name.isupper():
        return name.lower()
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@dataclass(frozen=True)
class Constraint:
    label: str
    prop: str = "id"

    @property
    def name(self) -> str:
        return f"{snake(self.label)}_{self.prop}_unique"

    def cypher(self) -> str:
        check_label(self.label, allow_meta=True)
        _check_ident(self.prop)
        return f"CREATE CONSTRAINT {self.name} IF NOT EXISTS FOR (n:{self.label}) REQUIRE n.{self.prop} IS UNIQUE"


@dataclass(frozen=True)
class Index:
    """A range index on a node label or relationship type."""

    entity: Literal["node", "relationship"]
    token: str
    props: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{snake(self.token)}_{'_'.join(self.props)}"

    def cypher(self) -> str:
        if self.entity == "node":
            check_label(self.token)
            pattern = f"(x:{self.token})"
        else:
            check_relationship_type(self.token)
            pattern = f"()-[x:{self.token}]-()"
        for prop in self.props:
            _check_ident(prop)
        on = ", ".join(f"x.{p}" for p in self.props)
        return f"CREATE INDEX {self.name} IF NOT EXISTS FOR {pattern} ON ({on})"


CONSTRAINTS: tuple[Constraint, ...] = tuple(Constraint(label) for label in (*NODE_LABELS, VERSION_LABEL))

# Lookups the writers and exporters make by something other than `id`.
INDEXES: tuple[Index, ...] = (
    Index("node", "Gene", ("string_id",)),  # STRING protein ids -> genes
    Index("node", "Gene", ("entrez_id",)),  # DepMap "SYMBOL (ENTREZ)" columns
    Index("node", "Gene", ("ensembl_gene_id",)),  # GTF / FASTA transcripts
    Index("node", "Transcript", ("gene_id",)),
    Index("node", "ExpressionProfile", ("dataset",)),  # views export one dataset at a time
    Index("node", "MorphologyProfile", ("dataset",)),
    Index("node", "IngestRun", ("sha256",)),  # a re-ingest of the same file is a no-op
    Index("node", "ModelRun", ("model",)),
    # No index on ingested relationships' `run`: maintaining one costs every load (≈10 % online,
    # and minutes of population after a bulk import), and only deleting a run reads it.
    Index("relationship", "PREDICTED_ASSOCIATION", ("run",)),  # write-back and `kgctl runs delete`
)


SCHEMA_ITEMS: tuple[Constraint | Index, ...] = (*CONSTRAINTS, *INDEXES)

# The property that scores a relationship of each scored type (architecture.md's schema).
SCORE_PROPERTY = {"INTERACTS_WITH": "combined_score", "CO_ESSENTIAL": "score", "SIMILAR_TO": "similarity"}


def count_store(conn: Connection) -> dict[str, dict[str, int]]:
    """Nodes per label and relationships per type, from Neo4j's count store (no scan), in one
    round trip: {"nodes": {label: n}, "relationships": {type: n}}."""
    parts = [f"MATCH (n:{label}) RETURN 'nodes' AS kind, '{label}' AS name, count(n) AS n" for label in NODE_LABELS]
    parts += [
        f"MATCH ()-[r:{t}]->() RETURN 'relationships' AS kind, '{t}' AS name, count(r) AS n" for t in RELATIONSHIP_TYPES
    ]
    out: dict[str, dict[str, int]] = {"nodes": {}, "relationships": {}}
    for row in conn.query(" UNION ALL ".join(parts)):  # whitelisted names only
        out[row["kind"]][row["name"]] = int(row["n"])
    return out


# Indexes earlier schema versions created and this one drops.
RETIRED_INDEXES: tuple[str, ...] = (
    *(Index("relationship", t, ("ingest_run",)).name for t in RELATIONSHIP_TYPES if t != "PREDICTED_ASSOCIATION"),
    Index("relationship", "PREDICTED_ASSOCIATION", ("run_id",)).name,
)

# Property renames of schema version 3, applied in batches to graphs written by older versions.
MIGRATIONS_V3: tuple[str, ...] = (
    "MATCH (n) WHERE n.ingest_run IS NOT NULL "
    "CALL (n) { SET n.run = n.ingest_run REMOVE n.ingest_run } IN TRANSACTIONS OF 10000 ROWS",
    "MATCH ()-[r]->() WHERE r.ingest_run IS NOT NULL "
    "CALL (r) { SET r.run = r.ingest_run REMOVE r.ingest_run } IN TRANSACTIONS OF 10000 ROWS",
    "MATCH ()-[r:PREDICTED_ASSOCIATION]->() WHERE r.run_id IS NOT NULL "
    "CALL (r) { SET r.run = r.run_id REMOVE r.run_id } IN TRANSACTIONS OF 10000 ROWS",
)


def check_label(label: str, *, allow_meta: bool = False) -> str:
    allowed = (*NODE_LABELS, VERSION_LABEL) if allow_meta else NODE_LABELS
    if label not in allowed:
        raise KgctlError(f"unknown node label {label!r} (known: {', '.join(NODE_LABELS)})")
    return label


def check_relationship_type(rel_type: str) -> str:
    if rel_type not in RELATIONSHIP_TYPES:
        raise KgctlError(f"unknown relationship type {rel_type!r} (known: {', '.join(RELATIONSHIP_TYPES)})")
    return rel_type


def _check_ident(name: str) -> None:
    if not _IDENT.match(name):
        raise KgctlError(f"invalid property name {name!r}")


def graph_schema_version(conn: Connection) -> int | None:
    rows = conn.query(f"MATCH (v:{VERSION_LABEL} {{id: $id}}) RETURN v.version AS version", {"id": VERSION_ID})
    return int(rows[0]["version"]) if rows else None


def apply_schema(conn: Connection) -> dict[str, Any]:
    """Create what is missing, wait for indexes to come online, record the version. Idempotent,
    also when two processes apply it at once."""
    from neo4j.exceptions import Neo4jError

    found = graph_schema_version(conn)
    if found is not None and found > SCHEMA_VERSION:
        raise KgctlError(
            f"the graph has schema version {found}, newer than this kgctl's {SCHEMA_VERSION}: "
            "upgrade kgctl before writing to it"
        )
    if found is not None and found < 3:
        for statement in MIGRATIONS_V3:
            conn.run_autocommit(statement)
    before = _existing_names(conn)
    for name in RETIRED_INDEXES:
        if name in before:
            conn.query(f"DROP INDEX {name} IF EXISTS", write=True)  # names from the code only
    for item in SCHEMA_ITEMS:
        try:
            conn.query(item.cypher(), write=True)
        except Neo4jError as exc:  # another process (a second `db start`) created it just now
            if "AlreadyExists" not in (exc.code or ""):
                raise
    conn.query("CALL db.awaitIndexes(300)")
    conn.query(
        f"MERGE (v:{VERSION_LABEL} {{id: $id}}) ON CREATE SET v.created_at = $now SET v.version = $version",
        {"id": VERSION_ID, "version": SCHEMA_VERSION, "now": datetime.now(UTC).isoformat()},
        write=True,
    )
    wanted = [item.name for item in SCHEMA_ITEMS]
    return {
        "version": SCHEMA_VERSION,
        "previous_version": found,
        "created": [name for name in wanted if name not in before],
        "unchanged": [name for name in wanted if name in before],
    }


def _existing_names(conn: Connection) -> set[str]:
    names = {row["name"] for row in conn.query("SHOW CONSTRAINTS YIELD name RETURN name")}
    return names | {row["name"] for row in conn.query("SHOW INDEXES YIELD name RETURN name")}


def describe_schema(conn: Connection) -> dict[str, Any]:
    """The constraints and indexes in the graph, and which of kgctl's are missing."""
    constraints = conn.query(
        "SHOW CONSTRAINTS YIELD name, type, entityType, labelsOrTypes, properties "
        "RETURN name, type, entityType, labelsOrTypes, properties ORDER BY name"
    )
    indexes = conn.query(
        "SHOW INDEXES YIELD name, type, entityType, labelsOrTypes, properties, state, owningConstraint "
        "WHERE type <> 'LOOKUP' "
        "RETURN name, type, entityType, labelsOrTypes, properties, state, owningConstraint "
        "ORDER BY name"
    )
    present = {row["name"] for row in constraints} | {row["name"] for row in indexes}
    return {
        "version": graph_schema_version(conn),
        "expected_version": SCHEMA_VERSION,
        "constraints": constraints,
        "indexes": indexes,
        "missing": [i.name for i in SCHEMA_ITEMS if i.name not in present],
    }


def ensure_vector_index(conn: Connection, name: str, label: str, prop: str, dimensions: int) -> None:
    """A cosine vector index on `label.prop` with `dimensions`, recreated when the existing one
    has another size (a new model run may embed in another dimension)."""
    check_label(label)
    _check_ident(name)
    _check_ident(prop)
    rows = conn.query("SHOW VECTOR INDEXES YIELD name, options WHERE name = $name RETURN options", {"name": name})
    if rows and rows[0]["options"]["indexConfig"].get("vector.dimensions") == dimensions:
        return
    if rows:
        conn.query(f"DROP INDEX {name}", write=True)
    conn.query(
        f"CREATE VECTOR INDEX {name} IF NOT EXISTS FOR (n:{label}) ON n.{prop} OPTIONS "
        "{indexConfig: {`vector.dimensions`: $d, `vector.similarity_function`: 'cosine'}}",
        {"d": dimensions},
        write=True,
    )
    conn.query("CALL db.awaitIndex($name, 300)", {"name": name})
