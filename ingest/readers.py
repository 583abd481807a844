"""Opening input files safely: gzip by magic bytes, integrity checked before anything is written,
byte counts for progress bars, and errors that name the file and line."""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from kgctl.core.errors import KgctlError

BOM = b"\xef\xbb\xbf"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"  # .h5ad, .gctx
BINARY_MAGICS = (HDF5_MAGIC, b"PAR1", b"PK\x03\x04")  # HDF5, Parquet, zip
GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 20


class ByteCounter:
    """Bytes read so far from the raw (compressed) inputs: the progress bar's position."""

    def __init__(self) -> None:
        self.done = 0


class _CountingReader(io.RawIOBase):
    def __init__(self, raw: IO[bytes], counter: ByteCounter) -> None:
        self._raw = raw
        self._counter = counter

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        self._counter.done += n or 0
        return n  # type: ignore[no-any-return]

    def close(self) -> None:
        self._raw.close()
        super().close()


def is_gzip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def open_binary(path: Path, counter: ByteCounter | None = None) -> IO[bytes]:
    """The decompressed bytes of `path` (gzip detected by content, not by name), without a
    leading UTF-8 byte-order mark (spreadsheet exports add one; no header would match)."""
    raw: IO[bytes] = path.open("rb")
    if counter is not None:
        raw = io.BufferedReader(_CountingReader(raw, counter), CHUNK)
    stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if is_gzip(path) else raw  # type: ignore[assignment]
    if stream.peek(3)[:3] == BOM:  # type: ignore[attr-defined]
        stream.read(3)
    return stream


def open_text(path: Path, counter: ByteCounter | None = None) -> IO[str]:
    return io.TextIOWrapper(open_binary(path, counter), encoding="utf-8", newline="")


@dataclass(frozen=True)
class FileFacts:
    path: Path
    sha256: str
    size: int
    gzip: bool


def check_file(path: Path) -> FileFacts:
    """sha256 of the file as given, and proof that it is readable: exists, not empty, and (for gzip)
    decompresses to the end. Truncated or corrupt gzip is refused here, before any write."""
    if not path.exists():
        raise KgctlError(f"{path}: no such file")
    if path.is_dir():
        raise KgctlError(f"{path}: is a directory, not a file")
    if not path.is_file():  # a FIFO or device would block or never end
        raise KgctlError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise KgctlError(f"{path}: the file is empty")
    digest = hashlib.sha256()
    gz = is_gzip(path)
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16) if gz else None
    produced = 0
    text = Utf8Check(path)
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise KgctlError(f"{path}: cannot be read ({exc.strerror})") from exc
    with handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            if inflater is None:
                text.feed(chunk)
                continue
            try:
                data = inflater.decompress(chunk)
                while inflater.eof and inflater.unused_data:  # concatenated gzip members
                    rest = inflater.unused_data
                    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
                    data += inflater.decompress(rest)
            except zlib.error as exc:
                raise KgctlError(f"{path}: corrupt gzip data ({exc})") from exc
            produced += len(data)
            text.feed(data)
    text.feed(b"", final=True)
    if inflater is not None:
        if not inflater.eof:
            raise KgctlError(
                f"{path}: truncated gzip file (ends after {produced:,} decompressed bytes, "
                f"about line {_count_lines(path, produced):,}); download it again"
            )
        if produced == 0:
            raise KgctlError(f"{path}: the file is empty (gzip with no content)")
    return FileFacts(path, digest.hexdigest(), size, gz)


class Utf8Check:
    """Text files must be UTF-8 throughout: checked while the file is hashed, before any write,
    so a bad byte is reported by line and column, not as an offset deep inside a parser's block.
    Binary formats (HDF5, Parquet, zip: known by their magic bytes) are skipped; in text, a NUL
    byte is an error (parsers stop at it, or drop it silently)."""

    def __init__(self, path: Path) -> None:
        self.path, self.line = path, 1
        self.text: bool | None = None  # decided on the first bytes
        self.decoder = codecs.getincrementaldecoder("utf-8")()

    def feed(self, data: bytes, final: bool = False) -> None:
        if self.text is None:
            if not data and not final:
                return
            self.text = not data.startswith(BINARY_MAGICS)
        if not self.text:
            return
        if (nul := data.find(b"\0")) >= 0:
            line, column = self.line + data.count(b"\n", 0, nul), nul - data.rfind(b"\n", 0, nul)
            raise KgctlError(
                f"{self.path}:{line}: a NUL byte (column {column}): this is not a text file, or it is damaged"
            )
        try:
            self.decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            seen = bytes(exc.object)  # what the decoder held from before, then `data`
            line = self.line + seen.count(b"\n", 0, exc.start)
            column = exc.start - seen.rfind(b"\n", 0, exc.start)
            raise KgctlError(
                f"{self.path}:{line}: not UTF-8 text (byte 0x{seen[exc.start]:02x} at "
                f"column {column}); convert the file to UTF-8"
            ) from None
        self.line += data.count(b"\n")


def _count_lines(path: Path, limit: int) -> int:
    """Lines in the first `limit` decompressed bytes of a (truncated) gzip file."""
    lines = 0
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
    seen = 0
    with path.open("rb") as handle:
        while (chunk := handle.read(CHUNK)) and seen < limit:
            try:
                data = inflater.decompress(chunk)
            except zlib.error:
                break
            data = data[: limit - seen]
            seen += len(data)
            lines += data.count(b"\n")
    return lines + 1


def sniff_delimiter(header: str, path: Path) -> str:
    """Tab, comma or space, whichever splits the header line into the most fields."""
    best = max(("\t", ",", " "), key=lambda d: len(header.split(d)))
    if len(header.split(best)) < 2:
        raise KgctlError(f"{path}:1: cannot find a tab, comma or space delimiter in the header")
    return best


def file_format(path: Path) -> str:
    """A matrix file's kind by its name: h5ad, parquet, or a delimited table."""
    name = path.name.lower().removesuffix(".gz")
    if name.endswith(".h5ad"):
        return "h5ad"
    if name.endswith(".parquet") or name.endswith(".pq"):
        return "parquet"
    return "table"
