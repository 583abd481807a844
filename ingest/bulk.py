"""The bulk path: the same adapters write `neo4j-admin database import full` CSV files, and the
managed server's (empty) database is replaced by the import. For first loads of large sources;
every later load goes through the online, idempotent path."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv

from kgctl.core.errors import KgctlError
from kgctl.core.provenance import PROVENANCE, Provenance, now
from kgctl.core.settings import Settings
from kgctl.graph.connection import Connection, open_managed, start_managed
from kgctl.graph.install import find_java
from kgctl.graph.records import Edge, EdgeBlock, Node
from kgctl.graph.schema import VERSION_LABEL, check_label, check_relationship_type
from kgctl.graph.server import ADMIN_CLASS, ManagedServer, without_stack_frames
from kgctl.graph.writer import PROPERTY, RESERVED
from kgctl.ingest.base import Lookup
from kgctl.ingest.pipeline import (
    Counts,
    check_strict,
    peak_rss_bytes,
    prepare,
    rejects_folder,
    summary_of,
    tally,
)
from kgctl.ingest.readers import ByteCounter

ARRAY_DELIMITER = "|"
ROWS_PER_PART = 1_000_000


def column_type(value: Any) -> str:
    """The neo4j-admin header type of a Python value."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, bytes):
        return "byte[]"
    if isinstance(value, list | tuple):
        first = next((v for v in value if v is not None), "")
        return f"{column_type(first)}[]" if not isinstance(first, list | tuple) else "string[]"
    return "string"


def cell(value: Any) -> str:
    if type(value) is int or type(value) is str:  # the common cases first
        return str(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes):
        return ARRAY_DELIMITER.join(str(b - 256 if b > 127 else b) for b in value)
    if isinstance(value, list | tuple):
        return ARRAY_DELIMITER.join(cell(v) for v in value)
    if isinstance(value, float) and value != value:
        return "NaN"
    return str(value)


@dataclass
class CsvGroup:
    """One header + part files for rows that share a label/type and the same property columns.
    The label or type comes from the `--nodes=Label=…` / `--relationships=TYPE=…` argument."""

    kind: str  # "nodes" or "relationships"
    name: str  # label or type
    header: list[str]
    keys: list[str]
    directory: Path
    index: int
    rows: int = 0
    parts: list[Path] = field(default_factory=list)
    _part_rows: int = 0
    _handle: IO[bytes] | None = None
    _text: io.TextIOWrapper | None = None
    _writer: Any = None

    def _open(self) -> None:
        if self._handle is not None and self._part_rows < ROWS_PER_PART:
            return
        self.close()
        part = self.directory / f"{self.kind}-{self.name}-{self.index}-part{len(self.parts):03d}.csv"
        self.parts.append(part)
        self._handle = part.open("wb")
        self._text = io.TextIOWrapper(self._handle, encoding="utf-8", newline="", write_through=True)
        self._writer = csv.writer(self._text)
        self._part_rows = 0

    def write(self, row: list[str]) -> None:
        self._open()
        self._writer.writerow(row)
        self.rows += 1
        self._part_rows += 1

    def write_table(self, table: pa.Table) -> None:
        """Many rows at once, written by Arrow's CSV writer (same dialect as `write`)."""
        self._open()
        assert self._handle is not None
        pacsv.write_csv(table, self._handle, pacsv.WriteOptions(include_header=False))
        self.rows += table.num_rows
        self._part_rows += table.num_rows

    def close(self) -> None:
        if self._text is not None:
            self._text.detach()
            self._text = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def argument(self) -> str:
        header = self.directory / f"{self.kind}-{self.name}-{self.index}-header.csv"
        with header.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow(self.header)
        return f"--{self.kind}={self.name}=" + ",".join(str(p) for p in [header, *self.parts])


class ImportFiles:
    """Streams nodes and relationships into import CSVs; a node id is written once per label."""

    def __init__(self, directory: Path, prov: Provenance) -> None:
        self.directory = directory
        self.prov = prov
        self.provenance = list(prov.params().values())  # in PROVENANCE order, as the headers
        self.groups: dict[tuple[Any, ...], CsvGroup] = {}
        self.by_shape: dict[tuple[Any, ...], CsvGroup] = {}  # (keys, value types) → group
        self.seen: dict[str, set[str]] = {}
        self.seen_edges: set[int] = set()  # hashes of (type, start, end): MERGE's one-per-pair rule
        self.nodes = 0
        self.relationships = 0

    def _group(self, kind: str, name: str, ends: tuple[str, str] | None, props: dict[str, Any]) -> CsvGroup:
        fast = (kind, name, ends, tuple(props), tuple(map(type, props.values())))
        known = self.by_shape.get(fast)
        if known is not None:
            return known
        signature = tuple(sorted((k, column_type(v)) for k, v in props.items() if v is not None))
        key = (kind, name, ends, signature)
        if key not in self.groups:
            for prop, _ in signature:
                if not PROPERTY.match(prop) or prop in RESERVED:
                    raise ValueError(f"bad property name {prop!r}")
            columns = [f"{p}:{t}" for p, t in signature]
            provenance = [*PROVENANCE[:-1], f"{PROVENANCE[-1]}:datetime"]
            if kind == "nodes":
                header = [f"id:ID({name})", *columns, *provenance, "sources:string[]"]
            else:
                assert ends is not None
                header = [
                    f":START_ID({ends[0]})",
                    f":END_ID({ends[1]})",
                    *columns,
                    *provenance,
                ]
            self.groups[key] = CsvGroup(kind, name, header, [p for p, _ in signature], self.directory, len(self.groups))
        self.by_shape[fast] = self.groups[key]
        return self.groups[key]

    def add_node(self, node: Node) -> None:
        check_label(node.label)
        seen = self.seen.setdefault(node.label, set())
        if node.id in seen:
            return
        seen.add(node.id)
        group = self._group("nodes", node.label, None, node.props)
        props = node.props
        group.write([node.id, *[cell(props.get(k)) for k in group.keys], *self.provenance, self.prov.source])
        self.nodes += 1

    def add_edge(self, edge: Edge) -> None:
        check_relationship_type(edge.type)
        key = hash((edge.type, edge.start_label, edge.start_id, edge.end_label, edge.end_id))
        if key in self.seen_edges:
            return
        self.seen_edges.add(key)
        group = self._group("relationships", edge.type, (edge.start_label, edge.end_label), edge.props)
        props = edge.props
        group.write([edge.start_id, edge.end_id, *[cell(props.get(k)) for k in group.keys], *self.provenance])
        self.relationships += 1

    def add_edge_block(self, block: EdgeBlock) -> None:
        """A block's pairs are distinct within the run (the adapter's promise), so no dedup here."""
        if not len(block):
            return
        check_relationship_type(block.type)
        sample = {k: v[0].item() for k, v in block.props.items()}
        group = self._group("relationships", block.type, (block.start_label, block.end_label), sample)
        n = len(block)
        columns = [block.start_ids, block.end_ids, *(pa.array(block.props[k]) for k in group.keys)]
        columns += [pa.repeat(v, n) for v in self.provenance]
        group.write_table(pa.table(columns, names=[str(i) for i in range(len(columns))]))
        self.relationships += n

    def written(self) -> dict[str, list[str]]:
        """The labels and relationship types the files hold (recorded on the IngestRun)."""
        return {
            "labels": sorted({g.name for g in self.groups.values() if g.kind == "nodes"}),
            "types": sorted({g.name for g in self.groups.values() if g.kind != "nodes"}),
        }

    def arguments(self) -> list[str]:
        for group in self.groups.values():
            group.close()
        nodes = [g.argument() for g in self.groups.values() if g.kind == "nodes"]
        rels = [g.argument() for g in self.groups.values() if g.kind == "relationships"]
        return nodes + rels


def bulk_ingest(
    settings: Settings,
    source: str,
    files: list[Path],
    options: dict[str, Any],
    *,
    strict: bool = False,
    rejects_dir: Path,
    on_wait: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Load `files` into the managed server's empty database with neo4j-admin import."""
    if not settings.neo4j.managed:
        raise KgctlError("--bulk works on the managed server only (it replaces the database offline)")
    server = ManagedServer.from_settings(settings)
    started = time.perf_counter()
    started_at = now()
    start_managed(settings, on_wait=on_wait)
    with open_managed(server, settings.neo4j.database) as conn:
        present = data_nodes(conn)
        if present:
            raise KgctlError(
                f"--bulk needs an empty database; this one has {present:,} nodes. Load into it "
                "without --bulk (idempotent MERGE), or start from an empty store"
            )
        checked = time.perf_counter()
        prepared = prepare(source, files, options, Lookup(conn.query))
        phases = {"check": time.perf_counter() - checked}
        rejects_folder(rejects_dir)
        rejects_path = rejects_dir / f"{prepared.run_id}.rejects.tsv"
        if strict:
            check_strict(prepared, rejects_path, 10_000)
        work = settings.paths.data_dir / "bulk" / prepared.run_id
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        counts = Counts()
        out = ImportFiles(work, prepared.provenance(started_at))
        write_started = time.perf_counter()
        with rejects_path.open("w", encoding="utf-8") as rejects:
            rejects.write("file\tline\tfield\tmessage\traw\n")
            for item in tally(prepared.adapter.records(ByteCounter()), counts, rejects):
                if isinstance(item, EdgeBlock):
                    out.add_edge_block(item)
                elif isinstance(item, Edge):
                    out.add_edge(item)
                elif item is not None:
                    out.add_node(item)
    arguments = out.arguments()
    phases["csv"] = time.perf_counter() - write_started
    mark = time.perf_counter()
    server.stop(timeout=120)
    phases["stop"] = time.perf_counter() - mark
    mark = time.perf_counter()
    try:
        # Another writer may have committed since the emptiness check: look again on a start
        # that refuses every write, so what it sees stays true until the import replaces it.
        if server.start(on_wait=on_wait, read_only=(settings.neo4j.database,))["already_running"]:
            raise KgctlError(
                "--bulk: another command started the server while the import files "
                f"were prepared; nothing was replaced. The files are in {work}"
            )
        with open_managed(server, settings.neo4j.database) as conn:
            written = data_nodes(conn)
        server.stop(timeout=120)
        phases["recheck"] = time.perf_counter() - mark
        if written:
            raise KgctlError(
                f"--bulk: {written:,} nodes were written to the database while the import files "
                f"were prepared (another writer); nothing was replaced. The files are in {work}"
            )
        mark = time.perf_counter()
        run_import(server, settings.neo4j.database, arguments, work)
        phases["import"] = time.perf_counter() - mark
    finally:
        mark = time.perf_counter()
        start_managed(settings, on_wait=on_wait)  # back up, on the import or the empty store
        phases["start"] = time.perf_counter() - mark
    with open_managed(server, settings.neo4j.database) as conn:
        props = {
            **prepared.run_props(mode="bulk", strict=strict, rejects_path=rejects_path),
            "status": "completed",
            "started_at": started_at,
            "finished_at": now(),
            "seconds": round(time.perf_counter() - started, 3),
            **counts.as_props(),
            "nodes_written": out.nodes,
            "relationships_written": out.relationships,
            **out.written(),
        }
        conn.query("MERGE (r:IngestRun {id: $id}) SET r += $props", {"id": prepared.run_id, "props": props}, write=True)
    if not counts.rows_rejected:
        rejects_path.unlink()
    shutil.rmtree(work, ignore_errors=True)
    return {
        **summary_of({"id": prepared.run_id, **props}),
        "skipped": False,
        "first_rejects": counts.first_rejects,
        "peak_rss_bytes": peak_rss_bytes(),
        "csv_seconds": round(phases["csv"], 3),
        "import_seconds": round(phases["import"], 3),
        "phase_seconds": {k: round(v, 3) for k, v in phases.items()},
    }


def data_nodes(conn: Connection) -> int:
    """Nodes other than the schema-version marker: what an import would destroy."""
    return int(conn.query(f"MATCH (n) WHERE NOT n:{VERSION_LABEL} RETURN count(n) AS n")[0]["n"])


IMPORT_OPTIONS = (f"--array-delimiter={ARRAY_DELIMITER}", "--id-type=string", "--skip-duplicate-nodes=true")


def run_import(
    server: ManagedServer, database: str, arguments: list[str], work: Path, options: tuple[str, ...] = IMPORT_OPTIONS
) -> None:
    """`neo4j-admin database import full` into the (stopped) server's database, replacing it."""
    java = find_java(server.config.java).path
    env = {**os.environ, "NEO4J_HOME": str(server.home), "NEO4J_CONF": str(server.conf_dir)}
    cmd = [
        java,
        "-cp",
        f"{server.config.distribution.lib}/*",
        ADMIN_CLASS,
        "database",
        "import",
        "full",
        database,
        "--overwrite-destination=true",
        f"--report-file={work / 'import.report'}",
        "--max-off-heap-memory=50%",
        *options,
        *arguments,
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=24 * 3600)
    if proc.returncode != 0:
        raise KgctlError(
            f"neo4j-admin database import failed (import files kept in {work})",
            detail=without_stack_frames(proc.stdout[-4000:] + proc.stderr[-4000:], keep=20),
        )
