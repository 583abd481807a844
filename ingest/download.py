"""`kgctl download`: public releases by their official file names, with checksums (where the
publisher gives them) and resume (HTTP Range) after an interrupted transfer."""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from kgctl import __version__
from kgctl.core.errors import KgctlError
from kgctl.core.progress import OnProgress, silent

CHUNK = 1 << 20
TIMEOUT = 60
STRING_BASE = "https://stringdb-downloads.org/download"
FIGSHARE_API = "https://api.figshare.com/v2/articles/{article}/files?page_size=1000"
GENCODE_BASE = "https://ftp.ebi.ac.uk/pub/databases/gencode"
SALUKI_BASE = (
    "https://raw.githubusercontent.com/vagarwal87/saluki_paper/3aa4e56a19bbbf87ac9f5f0a251098cf749ad6bc/Fig2_S3"
)


@dataclass(frozen=True)
class Remote:
    """One file to fetch: its official name, URL and whatever checksum the publisher states."""

    name: str
    url: str
    md5: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Release:
    description: str
    files: tuple[str, ...]  # the default selection (official names)
    figshare_article: int | None = None
    urls: tuple[tuple[str, str], ...] = ()  # (name, url) for publishers without an API


RELEASES: dict[str, Release] = {
    "string": Release(
        "STRING v12.0 human protein links (full, detailed) and protein info",
        (
            "9606.protein.links.full.v12.0.txt.gz",
            "9606.protein.links.detailed.v12.0.txt.gz",
            "9606.protein.info.v12.0.txt.gz",
        ),
        urls=tuple(
            (f"9606.{kind}.v12.0.txt.gz", f"{STRING_BASE}/{kind}.v12.0/9606.{kind}.v12.0.txt.gz")
            for kind in ("protein.links.full", "protein.links.detailed", "protein.info")
        ),
    ),
    "depmap": Release(
        "DepMap Public 24Q4 (figshare 27993248): Chronos gene effect, expression, models",
        ("CRISPRGeneEffect.csv", "OmicsExpressionProteinCodingGenesTPMLogp1.csv", "Model.csv"),
        figshare_article=27993248,
    ),
    "perturbseq": Release(
        "Replogle et al. 2022 Perturb-seq (figshare 20029387): K562 essential pseudo-bulk",
        ("K562_essential_normalized_bulk_01.h5ad",),
        figshare_article=20029387,
    ),
    "repurposing": Release(
        "Drug Repurposing Hub 2020-03-24 (clue.io): drugs and samples",
        ("repurposing_drugs_20200324.txt", "repurposing_samples_20200324.txt"),
        urls=tuple(
            (name, f"https://s3.amazonaws.com/data.clue.io/repurposing/downloads/{name}")
            for name in ("repurposing_drugs_20200324.txt", "repurposing_samples_20200324.txt")
        ),
    ),
    "gencode": Release(
        "GENCODE human v44 and mouse vM33 protein-coding transcripts (FASTA + GTF), Saluki's "
        "human-mouse 1:1 orthologs; --file all_HLs_human_PC1.txt adds its half-life labels",
        (
            "gencode.v44.pc_transcripts.fa.gz",
            "gencode.v44.annotation.gtf.gz",
            "gencode.vM33.pc_transcripts.fa.gz",
            "gencode.vM33.annotation.gtf.gz",
            "1to1_orthologs_expression.txt",
        ),
        urls=(
            *(
                (
                    f"gencode.v44.{kind}",
                    f"{GENCODE_BASE}/Gencode_human/release_44/gencode.v44.{kind}",
                )
                for kind in ("pc_transcripts.fa.gz", "annotation.gtf.gz")
            ),
            *(
                (
                    f"gencode.vM33.{kind}",
                    f"{GENCODE_BASE}/Gencode_mouse/release_M33/gencode.vM33.{kind}",
                )
                for kind in ("pc_transcripts.fa.gz", "annotation.gtf.gz")
            ),
            *((name, f"{SALUKI_BASE}/{name}") for name in ("1to1_orthologs_expression.txt", "all_HLs_human_PC1.txt")),
        ),
    ),
}


def rebase(url: str, mirror: str | None) -> str:
    """The same path on a mirror (scheme and host replaced), e.g. a local test server."""
    if not mirror:
        return url
    base, target = urlsplit(mirror), urlsplit(url)
    return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + target.path, target.query, ""))


def _open(url: str, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": f"kgctl/{__version__}", **(headers or {})})
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT)  # noqa: S310  (http/https URLs only)
    except urllib.error.HTTPError as exc:
        if exc.code == 416:
            return exc
        raise KgctlError(f"download failed: {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise KgctlError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from exc


def resolve(name: str, files: tuple[str, ...] = (), mirror: str | None = None) -> list[Remote]:
    """The remote files of a release (the default selection, or the official names in `files`)."""
    if name not in RELEASES:
        raise KgctlError(f"unknown release {name!r}; choose from {', '.join(sorted(RELEASES))}")
    release = RELEASES[name]
    wanted = files or release.files
    available: dict[str, Remote] = {}
    if release.figshare_article is not None:
        with _open(rebase(FIGSHARE_API.format(article=release.figshare_article), mirror)) as response:
            listing = json.load(response)
        for item in listing:
            available[item["name"]] = Remote(
                item["name"], rebase(item["download_url"], mirror), item.get("computed_md5") or None, item.get("size")
            )
    for file_name, url in release.urls:
        available[file_name] = Remote(file_name, rebase(url, mirror))
    missing = [w for w in wanted if w not in available]
    if missing:
        raise KgctlError(
            f"{name}: no file named {missing[0]!r} in the release; it has {', '.join(sorted(available)[:20])}"
        )
    return [available[w] for w in wanted]


def _hash_file(path: Path) -> tuple[Any, Any]:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    if path.exists():
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                md5.update(chunk)
                sha.update(chunk)
    return md5, sha


def fetch(remote: Remote, out_dir: Path, on_progress: OnProgress = silent) -> dict[str, Any]:
    """Download one file into `out_dir`, resuming a `.part` left by an earlier attempt."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target, part = out_dir / remote.name, out_dir / f"{remote.name}.part"
    if target.exists():
        md5, sha = _hash_file(target)
        if remote.md5 is None or md5.hexdigest() == remote.md5:
            return {
                "name": remote.name,
                "path": str(target),
                "status": "present",
                "sha256": sha.hexdigest(),
                "bytes": target.stat().st_size,
                "resumed_from": 0,
            }
    offset = part.stat().st_size if part.exists() else 0
    md5, sha = _hash_file(part)
    response = _open(remote.url, {"Range": f"bytes={offset}-"} if offset else None)
    status = getattr(response, "status", None) or getattr(response, "code", 200)
    resumed_from = offset
    with response:
        if status == 416:  # the part is already complete
            pass
        else:
            if status == 200 and offset:  # the server ignored Range: start over
                offset = resumed_from = 0
                md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length is not None else remote.size
            with part.open("ab" if offset else "wb") as handle:
                done = offset
                try:
                    while chunk := response.read(CHUNK):
                        handle.write(chunk)
                        md5.update(chunk)
                        sha.update(chunk)
                        done += len(chunk)
                        on_progress(done, total, remote.name)
                except (OSError, ValueError) as exc:
                    raise KgctlError(
                        f"{remote.name}: the transfer broke after {done:,} bytes ({exc}); run the "
                        "same command again to resume"
                    ) from exc
            if total is not None and done != total:
                raise KgctlError(
                    f"{remote.name}: got {done:,} of {total:,} bytes; run the same command again to resume"
                )
    if remote.md5 and md5.hexdigest() != remote.md5:
        part.unlink()
        raise KgctlError(
            f"{remote.name}: checksum mismatch (md5 {md5.hexdigest()}, the publisher says "
            f"{remote.md5}); the download was deleted, run the command again"
        )
    part.replace(target)
    return {
        "name": remote.name,
        "path": str(target),
        "status": "downloaded",
        "sha256": sha.hexdigest(),
        "md5_verified": remote.md5 is not None,
        "bytes": target.stat().st_size,
        "resumed_from": resumed_from,
    }
