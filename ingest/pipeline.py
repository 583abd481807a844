"""Run an adapter into Neo4j: check files, validate, write batches with an `IngestRun` that makes a
re-run of the same input a no-op and lets an interrupted run resume, and quarantine bad rows."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import json
import logging
import resource
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue
from typing import IO, Any

import pandas as pd
import pyarrow.compute as pc

from kgctl import __version__
from kgctl.core.errors import KgctlError
from kgctl.core.progress import OnProgress, silent
from kgctl.core.provenance import Provenance, now
from kgctl.graph.connection import Connection
from kgctl.graph.records import Edge, EdgeBlock, Node, Record, RowDone
from kgctl.graph.schema import apply_schema, count_store
from kgctl.graph.writer import Batch, write_batch
from kgctl.ingest.base import Adapter, Lookup, adapter_class
from kgctl.ingest.readers import ByteCounter, FileFacts, check_file

DEFAULT_BATCH = 10_000
DEFAULT_WRITERS = 2


class RetryCounter(logging.Filter):
    """Counts the driver's "will be retried" warnings (deadlocks between concurrent writers) and
    keeps them off the user's terminal: they are expected, and the summary reports how many."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "will be retried" in record.getMessage():
            self.count += 1
            return False
        return True


MAX_ID_CHARS = 2_000
RETRIES = RetryCounter()
logging.getLogger("neo4j.session").addFilter(RETRIES)
# What a malformed file can raise from inside a parser (CSV, pandas, gzip, HDF5 readers).
PARSE_ERRORS: tuple[type[BaseException], ...] = (
    UnicodeDecodeError,
    csv.Error,
    EOFError,
    zlib.error,
    pd.errors.ParserError,
    pd.errors.EmptyDataError,
    OSError,
)


def unreadable(files: list[FileFacts], exc: BaseException) -> KgctlError:
    names = ", ".join(f.path.name for f in files)
    return KgctlError(f"cannot parse {names}: {type(exc).__name__}: {exc}")


SHOWN_REJECTS = 5


@dataclass
class Counts:
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_filtered: int = 0
    rows_duplicate: int = 0
    nodes_written: int = 0
    relationships_written: int = 0
    batches_done: int = 0
    first_rejects: list[str] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)  # what the run wrote: the views' caches
    types: set[str] = field(default_factory=set)  # depend on it

    def as_props(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if isinstance(v, int)}

    def note_written(self, batch: Batch) -> None:
        self.labels.update(batch.nodes)
        self.types.update(batch.relationship_types())

    def written(self) -> dict[str, list[str]]:
        return {"labels": sorted(self.labels), "types": sorted(self.types)}


@dataclass(frozen=True)
class Prepared:
    """An adapter with checked inputs and the identity of the run they make."""

    adapter: Adapter
    facts: list[FileFacts]
    run_id: str
    key: str
    options: dict[str, Any]

    def provenance(self, created_at: str) -> Provenance:
        a = self.adapter
        return Provenance(a.source_label, a.source_version(), self.run_id, a.licence_of(), created_at)

    def run_props(self, *, mode: str, strict: bool, rejects_path: Path) -> dict[str, Any]:
        """What the IngestRun node records about the inputs, whichever path loads them."""
        return {
            "source": self.adapter.source_label,
            "adapter": self.adapter.name,
            "source_version": self.adapter.source_version(),
            "licence": self.adapter.licence_of(),
            "files": [str(f.path) for f in self.facts],
            "file_sha256": [f.sha256 for f in self.facts],
            "sha256": self.facts[0].sha256 if len(self.facts) == 1 else self.key,
            "options": json.dumps(self.options, sort_keys=True),
            "parser_version": self.adapter.parser_version,
            "kgctl_version": __version__,
            "strict": strict,
            "mode": mode,
            "rejects_file": str(rejects_path),
        }


def prepare(source: str, files: list[Path], options: dict[str, Any], lookup: Lookup) -> Prepared:
    """Check every file (exists, not empty, gzip intact), build and validate the adapter."""
    cls = adapter_class(source)
    facts = [check_file(Path(f)) for f in files]
    adapter = cls([f.path for f in facts], options, lookup)
    try:
        adapter.validate()
    except PARSE_ERRORS as exc:
        raise unreadable(facts, exc) from exc
    shown = {k: (list(v) if isinstance(v, tuple) else v) for k, v in sorted(adapter.opts.items())}
    shown = {k: (str(v) if isinstance(v, Path) else v) for k, v in shown.items()}
    identity = {
        "source": cls.name,
        "parser_version": cls.parser_version,
        "files": [f.sha256 for f in facts],
        "options": shown,
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
    return Prepared(adapter, facts, f"ingest-{cls.name}-{key[:16]}", key, shown)


def tally(
    records: Iterator[Record], counts: Counts, rejects: IO[str] | None
) -> Iterator[Node | Edge | EdgeBlock | None]:
    """Count rows and write rejects; pass nodes and relationships on, and None at each row end
    (where a batch may close)."""
    writer = csv.writer(rejects, delimiter="\t", lineterminator="\n") if rejects else None
    for record in records:
        if isinstance(record, Node | Edge):
            check_ids(record)
            yield record
        elif isinstance(record, EdgeBlock):
            check_ids(record)
            counts.rows_read += sum(record.rows.values())
            counts.rows_loaded += record.rows.get("loaded", 0)
            counts.rows_duplicate += record.rows.get("duplicate", 0)
            counts.rows_filtered += record.rows.get("filtered", 0)
            yield record
            yield None
        elif isinstance(record, RowDone):
            counts.rows_read += 1
            if record.status == "loaded":
                counts.rows_loaded += 1
            elif record.status == "duplicate":
                counts.rows_duplicate += 1
            else:
                counts.rows_filtered += 1
            yield None
        else:
            counts.rows_read += 1
            counts.rows_rejected += 1
            if len(counts.first_rejects) < SHOWN_REJECTS:
                counts.first_rejects.append(record.describe())
            if writer:
                writer.writerow(
                    [record.file, record.line, record.field, record.message, record.raw.rstrip("\r\n")[:1000]]
                )


def check_ids(record: Node | Edge | EdgeBlock) -> None:
    """Node ids are index keys, which Neo4j caps at a few kB: a longer one is a malformed file
    (under --strict this fails before any write)."""
    if isinstance(record, EdgeBlock):
        ids = [pc.max(pc.utf8_length(a)).as_py() or 0 for a in (record.start_ids, record.end_ids)]
        longest = max(ids)
    else:
        longest = max(map(len, [record.id] if isinstance(record, Node) else [record.start_id, record.end_id]))
    if longest > MAX_ID_CHARS:
        raise KgctlError(
            f"an identifier of {longest:,} characters is longer than the {MAX_ID_CHARS:,} "
            "an index key holds: is a column shifted or a field corrupt?"
        )


def batches(records: Iterator[Record], batch_size: int, counts: Counts, rejects: IO[str] | None) -> Iterator[Batch]:
    """Group records into batches that end on a row boundary (a large EdgeBlock is split into
    batch-sized parts; its rows count with the last part)."""
    batch = Batch()
    for item in tally(records, counts, rejects):
        if isinstance(item, Node):
            batch.add_node(item)
        elif isinstance(item, Edge):
            batch.add_edge(item)
        elif isinstance(item, EdgeBlock):
            start = 0
            while len(item) - start > batch_size - batch.size:
                stop = start + max(batch_size - batch.size, 0)
                batch.add_edge_block(item.part(start, stop))
                batch.freeze(counts.as_props())
                yield batch
                batch = Batch()
                start = stop
            batch.add_edge_block(item.part(start, len(item)))
        elif batch.size >= batch_size:
            batch.freeze(counts.as_props())
            yield batch
            batch = Batch()
    if batch.size:
        batch.freeze(counts.as_props())
        yield batch


def prefetch(items: Iterator[Batch], depth: int = 2) -> Iterator[Batch]:
    """Parse the next batches in a thread while the current one is written: the driver waits on
    the socket with the GIL released, so parsing and Neo4j's work overlap."""
    queue: Queue[tuple[str, Any]] = Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                queue.put(("item", item))
            queue.put(("end", None))
        except BaseException as exc:  # noqa: BLE001  re-raised in the consumer
            queue.put(("error", exc))

    thread = threading.Thread(target=produce, name="kgctl-parse", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = queue.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():
            with contextlib.suppress(Empty):
                queue.get(timeout=0.05)


def existing_run(conn: Connection, run_id: str) -> dict[str, Any] | None:
    rows = conn.query("MATCH (r:IngestRun {id: $id}) RETURN properties(r) AS r", {"id": run_id})
    return rows[0]["r"] if rows else None


def ingest(
    conn: Connection,
    source: str,
    files: list[Path],
    options: dict[str, Any] | None = None,
    *,
    strict: bool = False,
    force: bool = False,
    batch_size: int = DEFAULT_BATCH,
    writers: int = DEFAULT_WRITERS,
    rejects_dir: Path,
    on_progress: OnProgress = silent,
) -> dict[str, Any]:
    """Ingest `files` as `source`; the summary has the counts, the run id and the rejects file.

    Batches with nodes are written one at a time, in order. Batches of relationships only (their
    pairs are distinct) whose types are already in the graph go to `writers` concurrent
    transactions: a re-load needs them to use both of Neo4j's cores. Creating relationships
    concurrently deadlocks on shared nodes, so a first load goes one batch at a time (and so does
    the rest of any run that meets a deadlock; the driver retries that batch)."""
    started = time.perf_counter()
    apply_schema(conn)  # constraints first: every MERGE below is an index seek
    stale = mark_stale_runs(conn)
    prepared = prepare(source, files, options or {}, Lookup(conn.query))
    adapter, run_id = prepared.adapter, prepared.run_id
    rejects_folder(rejects_dir)
    with run_lock(rejects_dir, run_id):  # one ingest of these files and options at a time
        rejects_path = rejects_dir / f"{run_id}.rejects.tsv"
        if strict:  # a gate even when a non-strict run loaded these files before
            check_strict(prepared, rejects_path, batch_size)
        previous = existing_run(conn, run_id)
        if previous and previous.get("status") == "completed" and not force:
            return {
                **summary_of(previous),
                "skipped": True,
                "reason": "the same files were already ingested with the same options",
            }

        committed: set[int] = set()
        if previous and previous.get("status") != "completed" and not force:
            committed = set(previous.get("batches_committed") or range(previous.get("batches_done", 0)))
        run_props = {
            **prepared.run_props(mode="online", strict=strict, rejects_path=rejects_path),
            "status": "running",
            "started_at": now(),
            "lock_file": str(lock_path(rejects_dir, run_id).resolve()),
        }
        # The IngestRun node is written with the first batch, in its transaction: a run that fails
        # before writing anything leaves no trace in the graph.
        counts = Counts()
        counter = ByteCounter()
        total = sum(f.size for f in prepared.facts)
        prov = prepared.provenance(run_props["started_at"])
        retries = RETRIES.count
        present = count_store(conn)["relationships"] if writers > 1 else {}
        concurrent_batches = 0
        try:
            with (
                rejects_path.open("w", encoding="utf-8") as rejects,
                ThreadPoolExecutor(max(writers, 1), thread_name_prefix="kgctl-write") as pool,
            ):
                rejects.write("file\tline\tfield\tmessage\traw\n")
                inflight: deque[Future[tuple[int, int]]] = deque()

                def settle(limit: int) -> None:
                    while len(inflight) > limit:
                        nodes, rels = inflight.popleft().result()
                        counts.nodes_written += nodes
                        counts.relationships_written += rels

                stream = prefetch(batches(adapter.records(counter), batch_size, counts, rejects))
                for index, batch in enumerate(stream):
                    counts.batches_done = index + 1
                    counts.note_written(batch)
                    if index in committed:
                        nodes, rels = batch.counts()
                        counts.nodes_written += nodes
                        counts.relationships_written += rels
                        continue
                    progress = {
                        "id": run_id,
                        "index": index,
                        "props": {**run_props, **batch.rows_so_far},
                    }
                    # Concurrent only over relationships already in the graph (a re-load): creating
                    # relationships on shared nodes deadlocks. After a deadlock, one at a time.
                    concurrent = (
                        writers > 1
                        and RETRIES.count == retries
                        and all(present.get(t, 0) for t in batch.relationship_types())
                    )
                    if batch.nodes or not concurrent:  # nodes: alone and in order, after all before
                        settle(0)
                        nodes, rels = write_batch(conn, batch, prov, progress)
                        counts.nodes_written += nodes
                        counts.relationships_written += rels
                    else:  # relationships only: up to `writers` batches at once
                        concurrent_batches += 1
                        settle(writers - 1)
                        inflight.append(pool.submit(write_batch, conn, batch, prov, progress))
                    on_progress(counter.done, total, f"ingest {adapter.name}")
                settle(0)
        except KeyboardInterrupt:
            mark(conn, run_id, "interrupted", counts, started, run_props)
            raise
        except PARSE_ERRORS as exc:
            mark(conn, run_id, "failed", counts, started, run_props)
            if isinstance(exc, OSError) and not isinstance(exc, EOFError) and exc.errno is not None:
                # a real I/O problem (a full disk, permissions), not a malformed file
                where = exc.filename or f"reading the inputs or writing {rejects_path}"
                raise KgctlError(f"{exc.strerror} ({where}); the run can be resumed") from exc
            raise unreadable(prepared.facts, exc) from exc
        except Exception:
            mark(conn, run_id, "failed", counts, started, run_props)
            raise
        if counts.rows_read == 0:  # a header and nothing else is no release of anything
            rejects_path.unlink()
            mark(conn, run_id, "failed", counts, started, run_props)
            names = ", ".join(f.path.name for f in prepared.facts)
            raise KgctlError(f"{names}: no data rows (only a header?); nothing to load")
        if counts.rows_rejected == 0:
            rejects_path.unlink()
        mark(conn, run_id, "completed", counts, started, run_props)
        result = summary_of(existing_run(conn, run_id) or {})
        return {
            **result,
            "skipped": False,
            "batches_resumed": len(committed),
            "writers": writers,
            "batches_concurrent": concurrent_batches,
            "deadlock_retries": RETRIES.count - retries,
            "first_rejects": counts.first_rejects,
            "peak_rss_bytes": peak_rss_bytes(),
            "stale_runs_marked": stale,
        }


def rejects_folder(folder: Path) -> None:
    """Create the rejects folder; a path that is a file is one clear line."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise KgctlError(f"--rejects-dir {folder}: not a folder") from None


@contextmanager
def run_lock(folder: Path, run_id: str) -> Iterator[None]:
    """Refuse a second ingest of the same run (same files, same options) while one holds the
    lock: they would share the rejects file and the IngestRun's counters. A kill releases it, so
    a re-run after a crash resumes."""
    path = lock_path(folder, run_id)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise KgctlError(
                f"an ingest of the same files with the same options is running "
                f"(run {run_id}, lock {path}); wait for it to finish"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def lock_path(folder: Path, run_id: str) -> Path:
    return folder / f"{run_id}.lock"


def lock_held(path: Path) -> bool | None:
    """Whether a process holds the run's lock now; None when the lock file is not here (a run
    started on another machine, or its folder was removed)."""
    try:
        with open(path) as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False
    except OSError:
        return None


def mark_stale_runs(conn: Connection) -> list[str]:
    """IngestRuns still `running` whose process is gone (killed, crashed, or the server stopped
    under it: its lock is free) become `interrupted`; a re-run resumes them. Returns their ids."""
    rows = conn.query("MATCH (r:IngestRun {status: 'running'}) RETURN r.id AS id, r.lock_file AS lock")
    stale = [r["id"] for r in rows if r["lock"] and lock_held(Path(r["lock"])) is False]
    if stale:
        conn.query(
            "MATCH (r:IngestRun {status: 'running'}) WHERE r.id IN $ids "
            "SET r.status = 'interrupted', r.interrupted_at = $at",
            {"ids": stale, "at": now()},
            write=True,
        )
    return stale


def peak_rss_bytes() -> int:
    """This process's peak resident memory (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def check_strict(prepared: Prepared, rejects_path: Path, batch_size: int) -> None:
    """--strict: read everything first; any bad row rejects the whole run before a single write."""
    counts = Counts()
    with rejects_path.open("w", encoding="utf-8") as rejects:
        rejects.write("file\tline\tfield\tmessage\traw\n")
        try:
            for _ in tally(prepared.adapter.records(ByteCounter()), counts, rejects):
                pass
        except PARSE_ERRORS as exc:
            raise unreadable(prepared.facts, exc) from exc
    if counts.rows_rejected:
        raise KgctlError(
            f"--strict: {counts.rows_rejected:,} of {counts.rows_read:,} rows are invalid, so nothing "
            f"was written; first: {counts.first_rejects[0]} (all in {rejects_path})",
            exit_code=2,
        )
    rejects_path.unlink()


def mark(conn: Connection, run_id: str, status: str, counts: Counts, started: float, run_props: dict[str, Any]) -> None:
    """Record how the run ended. A completed run is always recorded (so a re-run is a no-op, even
    when every row was rejected); a failed one only if it wrote batches (it can resume)."""
    props: dict[str, Any] = {"status": status, "finished_at": now(), "seconds": round(time.perf_counter() - started, 3)}
    verb = "MATCH"
    if status == "completed":
        props = {
            **run_props,
            **counts.as_props(),
            **counts.written(),
            **props,
            "batches_committed": None,
        }
        verb = "MERGE"
    try:
        conn.query(f"{verb} (r:IngestRun {{id: $id}}) SET r += $props", {"id": run_id, "props": props}, write=True)
    except Exception:  # noqa: BLE001  the original error matters more than the bookkeeping
        if status == "completed":
            raise


def summary_of(run: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "source",
        "adapter",
        "source_version",
        "status",
        "mode",
        "files",
        "rows_read",
        "rows_loaded",
        "rows_rejected",
        "rows_filtered",
        "rows_duplicate",
        "nodes_written",
        "relationships_written",
        "batches_done",
        "seconds",
        "rejects_file",
        "started_at",
        "finished_at",
    )
    out = {k: run.get(k) for k in keys}
    out["run_id"] = out.pop("id")
    if not run.get("rows_rejected"):
        out["rejects_file"] = None
    return out
