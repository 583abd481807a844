"""`kgctl download` against a loopback HTTP server that serves fixture files like the publishers
do: figshare's file listing with md5, Range requests for resume, and a transfer that breaks."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner

from kgctl.cli import cli
from kgctl.core.errors import KgctlError
from kgctl.graph.connection import Connection
from kgctl.ingest.download import RELEASES, fetch, resolve
from kgctl.testing.fixtures import ingest_files
from kgctl.testing.generators import transcriptome

STRING_PATH = "/download/protein.info.v12.0/9606.protein.info.v12.0.txt.gz"


class Publisher(ThreadingHTTPServer):
    files: dict[str, bytes]
    break_after: int | None = None  # close the next transfer after this many bytes
    ranges: list[str]


class Handler(BaseHTTPRequestHandler):
    server: Publisher

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?")[0]
        if path.startswith("/v2/articles/"):
            article = path.split("/")[3]
            listing = [
                {
                    "name": name.rsplit("/", 1)[1],
                    "download_url": f"https://ndownloader.figshare.com{name}",
                    "computed_md5": hashlib.md5(data).hexdigest(),
                    "size": len(data),
                }
                for name, data in self.server.files.items()
                if name.startswith(f"/files/{article}/")
            ]
            body = json.dumps(listing).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        data = self.server.files.get(path)
        if data is None:
            self.send_error(404)
            return
        start = 0
        if "Range" in self.headers:
            self.server.ranges.append(self.headers["Range"])
            start = int(self.headers["Range"].split("=")[1].rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        body = data[start:]
        if self.server.break_after is not None:
            body, self.server.break_after = body[: self.server.break_after], None
        self.wfile.write(body)


@pytest.fixture
def publisher(shared_data: Path) -> Iterator[Publisher]:
    server = Publisher(("127.0.0.1", 0), Handler)
    info = (shared_data / "string" / "9606.protein.info.v12.0.subset.txt.gz").read_bytes()
    h5ad = (shared_data / "l1000" / "test_l1000_level3.gctx").read_bytes()  # any binary payload
    server.files = {
        STRING_PATH: info,
        "/files/20029387/K562_essential_normalized_bulk_01.h5ad": h5ad,
    }
    server.ranges = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def mirror(server: Publisher) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_string_by_official_name(publisher: Publisher, tmp_path: Path) -> None:
    remotes = resolve("string", ("9606.protein.info.v12.0.txt.gz",), mirror(publisher))
    result = fetch(remotes[0], tmp_path)
    data = publisher.files[STRING_PATH]
    assert result["status"] == "downloaded" and result["sha256"] == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "9606.protein.info.v12.0.txt.gz").read_bytes() == data
    assert fetch(remotes[0], tmp_path)["status"] == "present"


def test_broken_transfer_resumes_with_range(publisher: Publisher, tmp_path: Path) -> None:
    remote = resolve("perturbseq", (), mirror(publisher))[0]
    assert remote.md5 is not None
    publisher.break_after = 500_000
    with pytest.raises(
        KgctlError,
        match=r"K562_essential_normalized_bulk_01.h5ad: got 500,000 of "
        r"[\d,]+ bytes; run the same command again to resume",
    ):
        fetch(remote, tmp_path)
    assert (tmp_path / "K562_essential_normalized_bulk_01.h5ad.part").stat().st_size == 500_000
    result = fetch(remote, tmp_path)
    assert publisher.ranges == ["bytes=500000-"]
    assert result["resumed_from"] == 500_000 and result["md5_verified"]
    data = publisher.files["/files/20029387/K562_essential_normalized_bulk_01.h5ad"]
    assert (tmp_path / "K562_essential_normalized_bulk_01.h5ad").read_bytes() == data


def test_checksum_mismatch_is_refused(publisher: Publisher, tmp_path: Path) -> None:
    remote = resolve("perturbseq", (), mirror(publisher))[0]
    publisher.files["/files/20029387/K562_essential_normalized_bulk_01.h5ad"] = b"tampered" * 1000
    with pytest.raises(KgctlError, match="checksum mismatch"):
        fetch(remote, tmp_path)
    assert not list(tmp_path.iterdir())


def test_cli_json_and_unknown_file(publisher: Publisher, tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(
        cli,
        [
            "download",
            "string",
            "--file",
            "9606.protein.info.v12.0.txt.gz",
            "--out",
            str(tmp_path),
            "--mirror",
            mirror(publisher),
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["files"][0]["status"] == "downloaded"
    bad = runner.invoke(
        cli, ["download", "perturbseq", "--file", "nope.h5ad", "--out", str(tmp_path), "--mirror", mirror(publisher)]
    )
    assert bad.exit_code == 1 and "no file named 'nope.h5ad'" in bad.stderr


@pytest.mark.neo4j
def test_gencode_release_downloads_and_ingests(publisher: Publisher, tmp_path: Path, graph: Connection) -> None:
    """The gencode release's official names and paths, fetched and read by the transcripts
    adapter: human and mouse isoforms, and the ortholog table joining them in one run."""
    made = transcriptome(tmp_path / "made", genes=6, seed=1)
    for path in made.transcript_files:
        url = dict(RELEASES["gencode"].urls)[path.name]
        publisher.files[urlsplit(url).path] = path.read_bytes()
    fetched = [fetch(r, tmp_path / "dl") for r in resolve("gencode", (), mirror(publisher))]
    assert [f["status"] for f in fetched] == ["downloaded"] * 5
    files = sorted((tmp_path / "dl").iterdir())
    result = ingest_files(graph, "transcripts", files, tmp_path)
    assert result["rows_rejected"] == 0
    counts = graph.query(
        "MATCH (m:Gene {species: '10090'})<-[:ORTHOLOG_OF]-(h:Gene {species: '9606'}) "
        "WHERE EXISTS { (:Transcript)-[:ISOFORM_OF]->(m) } RETURN count(*) AS n"
    )[0]
    assert counts["n"] == 3  # half of the genes have a mouse ortholog, with its transcripts
