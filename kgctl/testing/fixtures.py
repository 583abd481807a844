"""Test support, in the style of `torch_geometric.testing`: a throwaway real Neo4j per test session,
a clean graph per test, and skip-or-fail rules for what a test needs.

Load it from a conftest with `pytest_plugins = ["kgctl.testing.fixtures"]`. Tests that use the `neo4j_server`
or `graph` fixtures are marked `neo4j` automatically, so `pytest -m "not neo4j"` runs without Java.
Under CI (`CI=true`) a missing prerequisite fails the test instead of skipping it; tests marked
`gpu` skip where PyTorch sees no CUDA device (CI has none). Every test helper lives here: the CLI
in a subprocess, an ingest into a test folder, and one small example graph per registered view
for the model contract test.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np
import pytest

from kgctl.core.errors import KgctlError
from kgctl.core.settings import Settings, load_settings
from kgctl.graph.connection import Connection, open_managed, start_managed
from kgctl.graph.install import distribution
from kgctl.graph.schema import apply_schema
from kgctl.graph.server import ManagedServer

if TYPE_CHECKING:
    from kgctl.models.association.data import Inputs

NEO4J_FIXTURES = {"neo4j_server", "spare_server", "graph"}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> NoReturn:
    """Skip locally with the reason; under CI a missing prerequisite is a failure."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: required)")
    pytest.skip(reason)


def free_ports(count: int) -> list[int]:
    """Distinct free ports: every socket stays bound until all are chosen."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without the NEO4J_* / KGCTL_* variables that would point tests elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "KGCTL_"))}
    env.update(extra)
    return env


@dataclass
class TestServer:
    """A managed server in a temporary folder, with the settings and environment that reach it."""

    __test__ = False  # not a test class, despite the name

    server: ManagedServer
    settings: Settings
    env: dict[str, str]

    def connect(self) -> Connection:
        return open_managed(self.server, self.settings.neo4j.database)


def make_test_server(base: Path, cache_dir: Path | None = None, **server: str | int) -> TestServer:
    """Write a kgctl.toml for a small server on free ports under `base` (nothing started yet)."""
    cache_dir = cache_dir or load_settings(env=clean_env()).paths.cache_dir
    bolt_port, http_port = free_ports(2)
    values: dict[str, str | int] = {
        "bolt_port": bolt_port,
        "http_port": http_port,
        "heap": "1g",
        "pagecache": "256m",
        **server,
    }
    lines = ["[server]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]  # JSON strings are TOML strings
    lines += [
        "[paths]",
        f"data_dir = {json.dumps(str(base / 'data'))}",
        f"config_dir = {json.dumps(str(base / 'config'))}",
        f"cache_dir = {json.dumps(str(cache_dir))}",
    ]
    base.mkdir(parents=True, exist_ok=True)
    (base / "kgctl.toml").write_text("\n".join(lines) + "\n")
    return test_server_at(base)


def test_server_at(base: Path) -> TestServer:
    """The server whose kgctl.toml `make_test_server` wrote under `base` (e.g. to reuse a
    benchmark's graph)."""
    config = base / "kgctl.toml"
    env = clean_env(KGCTL_CONFIG=str(config))
    settings = load_settings(env=env, cwd=base)
    return TestServer(ManagedServer.from_settings(settings), settings, env)


def neo4j_unavailable() -> str | None:
    """Why no Neo4j can be provisioned here, or None."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "Java 17/21 is not installed"
    cache = load_settings(env=clean_env()).paths.cache_dir
    if not distribution(cache).is_installed() and shutil.which("mvn") is None:
        return "Neo4j is not installed and Maven is missing to fetch it"
    return None


def require_neo4j() -> None:
    """Skip (or under CI fail) the calling test or fixture when no Neo4j can be provisioned."""
    reason = neo4j_unavailable()
    if reason:
        skip_or_fail(reason)


def wipe(conn: Connection) -> None:
    """Delete every node and relationship (the schema stays) and the vector indexes write-back
    created: relationships first, so that no transaction holds a hub's every relationship."""
    conn.run_autocommit("MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 20000 ROWS")
    conn.run_autocommit("MATCH (n) CALL (n) { DELETE n } IN TRANSACTIONS OF 20000 ROWS")
    for row in conn.query("SHOW VECTOR INDEXES YIELD name RETURN name"):
        conn.query(f"DROP INDEX `{row['name']}` IF EXISTS", write=True)


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestServer]:
    """One real Neo4j for the session, on free ports in a temporary folder; Neo4j itself is
    installed once through Maven into the user's kgctl cache and reused."""
    require_neo4j()
    test_server = make_test_server(tmp_path_factory.mktemp("neo4j"))
    try:
        start_managed(test_server.settings)
    except KgctlError as exc:
        pytest.fail(f"could not start the test Neo4j: {exc.message}\n{exc.detail or ''}")
    yield test_server
    test_server.server.stop(force=True, timeout=60)


@pytest.fixture
def spare_server(tmp_path: Path) -> Iterator[TestServer]:
    """A second server of the test's own (not started), for tests that start and stop it."""
    require_neo4j()
    test_server = make_test_server(tmp_path, start_timeout=120, stop_timeout=60)
    yield test_server
    test_server.server.stop(force=True, timeout=30)


@pytest.fixture
def graph(neo4j_server: TestServer) -> Iterator[Connection]:
    """A connection to an empty graph with the kgctl schema applied."""
    with neo4j_server.connect() as conn:
        wipe(conn)
        apply_schema(conn)
        yield conn


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    cuda: bool | None = None
    for item in items:
        if NEO4J_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.neo4j)
        if item.get_closest_marker("gpu"):
            if cuda is None:
                import torch

                cuda = torch.cuda.is_available()
            if not cuda:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA device"))


def run_cli(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """`kgctl ARGS` in a subprocess, as a user runs it (the timeout leaves room for slow CI)."""
    return subprocess.run(
        [sys.executable, "-m", "kgctl.cli", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def cli_json(env: dict[str, str], *args: str, timeout: float = 900) -> dict[str, Any]:
    """`kgctl ARGS --json`, which must succeed; its JSON result."""
    proc = run_cli(env, *args, "--json", timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(json.loads(proc.stdout))


def ingest_files(
    conn: Connection, source: str, files: list[Path], folder: Path, options: dict[str, Any] | None = None, **kw: Any
) -> dict[str, Any]:
    """An ingest whose rejects go under the test's folder."""
    from kgctl.ingest.pipeline import ingest

    return ingest(conn, source, files, options or {}, rejects_dir=folder / "rejects", **kw)


def planted_gene_graph(conn: Connection, folder: Path) -> dict[str, Any]:
    """The demo's planted-module data at a test's size (STRING links and a Perturb-seq .h5ad);
    the config values a model of the gene-association view needs (its feature dataset)."""
    from kgctl.testing.generators import planted_modules

    data = planted_modules(folder / "data", n_genes=300, n_perturbed=220, n_modules=12, seed=1)
    ingest_files(conn, "string", [data.string_info, data.string_links], folder)
    ingest_files(conn, "perturbseq", [data.perturbseq], folder)
    return {"dataset": str(conn.query("MATCH (d:Dataset) RETURN d.id AS id")[0]["id"])}


def cal_config(path: Path, dataset: str, epochs: int, batch_size: int = 32) -> Path:
    """A small CAL config file for the planted graph's `dataset` (node split, no search)."""
    path.write_text(
        f'[cal]\ndataset = "{dataset}"\npca_dim = 16\nhidden_dim = 64\nepochs = {epochs}\n'
        f'batch_size = {batch_size}\ncheckpoint_every = 1\nsplit = "node"\nsearch = ""\n'
    )
    return path


def planted_inputs(n: int = 120, modules: int = 6, seed: int = 0) -> Inputs:
    """Gene-association inputs without Neo4j: genes in modules (features around module centres); every module's pairs are positives, plus random 'ambiguous' known pairs."""
    from kgctl.models.association.data import Inputs, unordered

    rng = np.random.default_rng(seed)
    module = rng.integers(0, modules, n)
    a, b = np.triu_indices(n, 1)
    same = module[a] == module[b]
    positives = np.column_stack([a[same], b[same]])
    extra = unordered(rng.integers(0, n, size=(n, 2)), n)
    known = unordered(np.concatenate([positives, extra]), n)
    centres = rng.normal(size=(modules, 16))
    features = (centres[module] + rng.normal(size=(n, 16))).astype(np.float32)
    genes = np.asarray([f"G{i}" for i in range(n)])
    return Inputs(genes, features, known, unordered(positives, n), {})


def transcriptome_graph(conn: Connection, folder: Path, genes: int = 40) -> dict[str, Any]:
    """A generated human and mouse transcriptome with isoforms and 1:1 orthologs, ingested in
    one run (the transcripts view); no config values needed."""
    from kgctl.testing.generators import transcriptome

    made = transcriptome(folder / "transcriptome", genes=genes, seed=2)
    ingest_files(conn, "transcripts", made.transcript_files, folder)
    return {}


def context_graph(conn: Connection, folder: Path) -> dict[str, Any]:
    """A small real-data context graph: the JUMP-Target compounds with their targets, the real
    L1000 plate with its compounds, generated Cell Painting profiles of 40 of the compounds (tests
    only: the real data has none), and InfoAlign's derived similarity edges."""
    from kgctl.demo.context import derive_context_edges
    from kgctl.testing.generators import cell_painting_profiles

    data = shared_data_dir()
    if not (data / "README.md").exists():
        skip_or_fail(f"the shared real data is not at {data} (set KGCTL_SHARED_DATA)")
    ingest_files(
        conn,
        "molecules",
        [data / "molecules" / "JUMP-Target-1_compound_metadata.tsv.gz"],
        folder,
        {"source_name": "jump-target", "licence": "MIT"},
    )
    ingest_files(
        conn, "l1000", [data / "l1000" / "compounds.tsv.gz", data / "l1000" / "test_l1000_level4.gct.gz"], folder
    )
    keys = [
        r["id"] for r in conn.query("MATCH (m:Molecule)-[:TARGETS]->() RETURN DISTINCT m.id AS id ORDER BY id LIMIT 40")
    ]
    profiles = cell_painting_profiles(folder / "profiles.csv.gz", compounds=keys, seed=3)
    ingest_files(conn, "morphology", [profiles], folder)
    for _ in derive_context_edges(conn):
        pass
    return {}


def generated_context_graph(conn: Connection, folder: Path) -> dict[str, Any]:
    """A small generated context graph, no shared data needed: the planted-module genes (STRING
    links, Perturb-seq profiles), the demo's 16 molecules targeting module genes, generated Cell
    Painting profiles of the molecules and of some genes, and InfoAlign's derived similarity edges."""
    from kgctl.demo.context import derive_context_edges
    from kgctl.testing.generators import cell_painting_profiles, planted_modules

    data = planted_modules(folder / "data", n_genes=300, n_perturbed=220, n_modules=12, seed=1)
    ingest_files(conn, "string", [data.string_info, data.string_links], folder)
    ingest_files(conn, "perturbseq", [data.perturbseq], folder)
    ingest_files(conn, "molecules", [data.molecules], folder, {"licence": "CC0 (generated)"})
    keys = [r["id"] for r in conn.query("MATCH (m:Molecule) RETURN m.id AS id ORDER BY id")]
    profiles = cell_painting_profiles(folder / "profiles.csv.gz", compounds=keys, genes=data.genes[:20], seed=3)
    ingest_files(conn, "morphology", [profiles], folder)
    for _ in derive_context_edges(conn):
        pass
    return {}


def toy_transcripts() -> Any:
    """IsoCLR inputs without Neo4j. Gene 0: three isoforms; gene 1: one transcript, ortholog of
    gene 2 (two transcripts); gene 3: one transcript, nothing else (no positive pair)."""
    from kgctl.models.isoclr.data import pack
    from kgctl.models.isoclr.encoding import six_tracks

    rng = np.random.default_rng(0)
    arrays = [six_tracks("".join(rng.choice(list("ACGT"), n))) for n in (40, 50, 60, 45, 70, 75, 33)]
    return pack(
        [f"T{i}" for i in range(7)],
        ["G0", "G1", "G2", "G3"],
        np.array([0, 0, 0, 1, 2, 2, 3]),
        np.array([[1, 2]]),
        arrays,
        {},
    )


def toy_context(config: Any) -> Any:
    """InfoAlign inputs without Neo4j, from an in-memory context view: the demo's 16 molecules,
    12 genes with features, two TARGETS edges per molecule and a ring of gene–gene links."""
    import pyarrow as pa

    from kgctl.graph.export import HeteroView
    from kgctl.models.infoalign.data import from_view
    from kgctl.testing.generators import DEMO_SMILES

    rng = np.random.default_rng(0)
    genes = 12
    molecule, gene = np.repeat(np.arange(len(DEMO_SMILES)), 2), rng.integers(0, genes, 2 * len(DEMO_SMILES))
    ring = np.arange(genes)
    view = HeteroView(
        nodes={"Molecule": [name for name, _ in DEMO_SMILES], "Gene": [f"G{i}" for i in range(genes)]},
        x={"Molecule": None, "Gene": rng.normal(size=(genes, 6)).astype(np.float32)},
        edges={
            ("Molecule", "TARGETS", "Gene"): (molecule, gene, np.ones(len(gene), np.float32)),
            ("Gene", "INTERACTS_WITH", "Gene"): (ring, (ring + 1) % genes, np.ones(genes, np.float32)),
        },
        meta={"fingerprint": "toy"},
        tables={"Molecule": pa.table({"smiles": [s for _, s in DEMO_SMILES]})},
    )
    return from_view(view, config)


# Inputs per registered view without Neo4j, for the fast layer of the model contract.
VIEW_TOYS: dict[str, Callable[[Any], Any]] = {
    "gene-association": lambda config: planted_inputs(),
    "transcripts": lambda config: toy_transcripts(),
    "context": toy_context,
}


# One small graph per registered view, all generated (a fresh clone without ../shared runs every
# model's contract on them).
VIEW_EXAMPLES: dict[str, Callable[[Connection, Path], dict[str, Any]]] = {
    "gene-association": planted_gene_graph,
    "transcripts": transcriptome_graph,
    "context": generated_context_graph,
}


def shared_data_dir() -> Path:
    """`../shared/data` next to the repository (or $KGCTL_SHARED_DATA)."""
    env = os.environ.get("KGCTL_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data; absent: skipped locally with the reason, a failure under CI."""
    path = shared_data_dir()
    if not (path / "README.md").exists():
        skip_or_fail(f"the shared real data is not at {path} (set KGCTL_SHARED_DATA)")
    return path


def kill_during_ingest(server: TestServer, args: list[str], victim: str, at_batch: int, timeout: float = 600) -> int:
    """Run `kgctl ARGS` and SIGKILL `victim` (the kgctl process, or the Neo4j server) once the
    ingest has committed `at_batch` batches; the ingest's exit code (-SIGKILL when kgctl was
    killed, non-zero when its server was)."""
    server_pid = server.server.pid()
    assert server_pid is not None
    ingest = subprocess.Popen(
        [sys.executable, "-m", "kgctl.cli", *args], env=server.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    with server.connect() as conn:
        deadline = time.monotonic() + timeout
        while ingest.poll() is None and time.monotonic() < deadline:
            done = conn.query("MATCH (r:IngestRun) RETURN max(r.batches_done) AS n")[0]["n"]
            if done and done >= at_batch:
                os.kill(ingest.pid if victim == "kgctl" else server_pid, signal.SIGKILL)
                break
            time.sleep(0.02)
    return ingest.wait(timeout=timeout)


def canonical_dump(conn: Connection) -> tuple[list[str], list[str]]:
    """Every data node and relationship with its properties but their creation time (when a
    write happened, not what it wrote), sorted, as JSON lines: two graphs are equal when their
    dumps are."""
    nodes = conn.query(
        "MATCH (n) WHERE NOT n:IngestRun AND NOT n:SchemaVersion RETURN labels(n) AS l, properties(n) AS p"
    )
    rels = conn.query("MATCH (a)-[r]->(b) RETURN a.id AS a, type(r) AS t, b.id AS b, properties(r) AS p")

    def line(row: dict[str, Any]) -> str:
        row["p"] = {k: v for k, v in row["p"].items() if k != "created_at"}
        return json.dumps(row, sort_keys=True, default=str)

    return sorted(map(line, nodes)), sorted(map(line, rels))


def graph_counts(conn: Connection) -> dict[str, int]:
    """Nodes per label and relationships per type: what a test compares before and after."""
    counts: dict[str, int] = {}
    for row in conn.query("MATCH (n) UNWIND labels(n) AS l RETURN l, count(*) AS n"):
        counts[row["l"]] = int(row["n"])
    for row in conn.query("MATCH ()-[r]->() RETURN type(r) AS t, count(*) AS n"):
        counts[row["t"]] = int(row["n"])
    return counts


def query_plan(conn: Connection) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, str]]:
    """Every named query with the Browser example's parameters, where it answers on this graph;
    and those that do not, with why (e.g. no InfoAlign run in it)."""
    from kgctl import queries
    from kgctl.queries.browser import example, example_params

    ex = example(conn)
    plan, skipped = [], {}
    for query in queries.available().values():
        params = example_params(query, ex)
        try:
            queries.rows(conn, query.name, params)
            plan.append((query.name, params))
        except KgctlError as exc:
            skipped[query.name] = exc.message[:200]
    return plan, skipped


def _query_client(base: str, plan: list[tuple[str, dict[str, Any]]], seconds: float, seed: int) -> dict[str, Any]:
    """One load client: named queries in a seeded random order until the time is up."""
    import random

    from kgctl import queries

    rng = random.Random(seed)
    latencies: list[float] = []
    errors: list[str] = []
    with test_server_at(Path(base)).connect() as conn:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            name, params = rng.choice(plan)
            tic = time.perf_counter()
            try:
                queries.rows(conn, name, params)
                latencies.append(time.perf_counter() - tic)
            except Exception as exc:  # what a user would see, counted with its text
                errors.append(f"{name}: {type(exc).__name__}: {exc}"[:300])
    return {"latencies": latencies, "errors": errors}


def query_load(
    server_base: Path, plan: list[tuple[str, dict[str, Any]]], clients: int, seconds: float
) -> dict[str, Any]:
    """`clients` processes running the plan's queries for `seconds`: throughput, latency
    percentiles and every error."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    started = time.perf_counter()
    with ProcessPoolExecutor(clients, mp_context=multiprocessing.get_context("spawn")) as pool:
        found = list(
            pool.map(_query_client, [str(server_base)] * clients, [plan] * clients, [seconds] * clients, range(clients))
        )
    wall = time.perf_counter() - started
    ms = np.array([x for r in found for x in r["latencies"]]) * 1000
    return {
        "clients": clients,
        "seconds": seconds,
        "queries": sorted(q for q, _ in plan),
        "answered": int(len(ms)),
        "throughput_qps": round(len(ms) / wall, 1),
        "latency_ms": {
            "p50": round(float(np.percentile(ms, 50)), 1) if len(ms) else None,
            "p99": round(float(np.percentile(ms, 99)), 1) if len(ms) else None,
            "max": round(float(ms.max()), 1) if len(ms) else None,
        },
        "errors": [e for r in found for e in r["errors"]],
    }


def listening(ports: set[int]) -> list[str]:
    """The local addresses listening on `ports`, from the kernel's socket table (IPv4 and IPv6,
    as hex `address:port` the way /proc/net/tcp writes them)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port = local.rsplit(":", 1)
            if state == "0A" and int(port, 16) in ports:  # 0A: LISTEN
                found.append(f"{address}:{int(port, 16)}")
    return sorted(found)


def loopback(address: str) -> bool:
    """127.0.0.1, ::1 or ::ffff:127.0.0.1 (Java's IPv4 socket in IPv6) in /proc/net's hex."""
    host = address.rsplit(":", 1)[0]
    return host in (
        "0100007F",
        "00000000000000000000000001000000",
        "0000000000000000FFFF00000100007F",
    )
