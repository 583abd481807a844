"""`.h5ad` (AnnData HDF5) files read by a reader process, each read with a time bound: libhdf5 can
loop forever, or crash, on a damaged file (HDFGroup/hdf5#1707; here one flipped byte in the size of
a global-heap string), and neither a loop in C nor a segfault can be stopped in-process."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd

from kgctl.core.errors import KgctlError
from kgctl.ingest.readers import is_gzip

READ_TIMEOUT_S = 60.0  # one read: opening a file (and a new reader's start), or a block of rows


@dataclass
class Header:
    """What is read up front: obs and var in full, and X's shape (None when there is no X)."""

    obs: pd.DataFrame
    var: pd.DataFrame
    shape: tuple[int, ...] | None


def damaged_part(path: Path, where: str) -> str:
    """The start of every message about a damaged file: the file and the part being read."""
    return f"{path}: damaged .h5ad file ({where})"


@contextmanager
def damaged(path: Path, where: str) -> Iterator[None]:
    """A file that opens but whose HDF5 objects are damaged: h5py raises KeyError, OSError,
    ValueError and more from inside; name the file and the part instead."""
    try:
        yield
    except KgctlError:
        raise
    except Exception as exc:
        raise KgctlError(f"{damaged_part(path, where)}: {exc}") from exc


@contextmanager
def alarm() -> Iterator[None]:
    """An alarm at its default action (the end of the process) past the parent's bound."""
    signal.alarm(int(READ_TIMEOUT_S) + 10)
    try:
        yield
    finally:
        signal.alarm(0)


def _open(path: Path) -> Any:
    """The AnnData in backed mode: obs and var in memory, X read in row blocks on demand."""
    import anndata

    try:
        with warnings.catch_warnings():  # a repeated obs name is the adapter's to report
            warnings.filterwarnings("ignore", "Observation names are not unique")
            return anndata.read_h5ad(path, backed="r")
    except Exception as exc:  # h5py/anndata raise many types for a file that is not h5ad
        raise KgctlError(f"{path}: not a readable .h5ad (AnnData HDF5) file: {exc}") from exc


def _serve(pipe: Connection) -> None:
    """The reader: for each path sent, open the file and send its header, then each block of rows
    asked for, until None closes the file; a failure is sent as its one-line message and closes
    the file. Each read is under an alarm left at its default action, so a read that loops in C
    ends the reader even when the parent is gone."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    with contextlib.suppress(EOFError):  # the parent is gone
        while (name := pipe.recv()) is not None:
            path, adata = Path(name), None
            try:
                with alarm(), damaged(path, "obs, var or the shape of X"):
                    adata = _open(path)
                    shape = tuple(adata.X.shape) if adata.X is not None else None
                    header = Header(adata.obs.copy(), adata.var.copy(), shape)
                pipe.send(header)
                while (request := pipe.recv()) is not None:
                    start, stop = request
                    with alarm(), damaged(path, f"X rows {start + 1}-{stop}"):
                        block = adata.X[start:stop]
                        block = np.asarray(block.toarray() if hasattr(block, "toarray") else block)
                    pipe.send(block)
            except KgctlError as exc:
                pipe.send(exc.message)
            finally:
                if adata is not None:
                    with contextlib.suppress(Exception):  # a damaged file may not close cleanly
                        adata.file.close()


class _Reader:
    """A reader process (`python` running `main`, not a multiprocessing child: those re-run the
    caller's main module, which a script without a `__main__` guard cannot survive)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by kill())
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-c", "from kgctl.ingest.h5ad import main; main()", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self.stderr,
            )
        self.pipe = Connection(ours.detach())

    def ask(self, request: Any, prefix: str) -> Any:
        """The reader's answer to `request`; a KgctlError starting with `prefix` when it takes
        longer than READ_TIMEOUT_S or the reader dies. Past a failure of its own the reader is
        killed; an error it reports about the file leaves it ready for the next one."""
        try:
            self.pipe.send(request)
            if not self.pipe.poll(READ_TIMEOUT_S):
                raise KgctlError(
                    f"{prefix}: reading it did not finish in {READ_TIMEOUT_S:.0f} s "
                    "(libhdf5 loops on some damaged files)"
                )
            answer = self.pipe.recv()
        except (EOFError, OSError):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
            self.stderr.seek(0)
            last = (self.stderr.read().decode(errors="replace").strip().splitlines() or [""])[-1]
            self.kill()
            code = self.process.returncode
            raise KgctlError(
                f"{prefix}: the HDF5 reader crashed (exit code {code})" + (f": {last}" if last else "")
            ) from None
        except BaseException:  # interrupted (^C): its answer would reach the next file's reader
            self.kill()
            raise
        if isinstance(answer, str):
            raise KgctlError(answer)
        return answer

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
            self.process.wait()
        self.pipe.close()
        self.stderr.close()


_IDLE: list[_Reader] = []  # readers with no file open: starting one costs ~1.5 s (anndata)
_IDLE_LOCK = threading.Lock()
os.register_at_fork(after_in_child=_IDLE.clear)  # a forked process starts its own


@atexit.register
def _stop_idle() -> None:
    while _IDLE:
        reader = _IDLE.pop()
        with contextlib.suppress(OSError):
            reader.pipe.send(None)  # the reader's loop ends
        try:
            reader.process.wait(timeout=5)
        finally:
            reader.kill()


class H5ad:
    """An open `.h5ad` whose X matches obs × var: `header`, and `rows(start, stop)` as a dense
    block, read by a reader process. Use it as a context manager; a read past READ_TIMEOUT_S, or
    a reader that dies, is a KgctlError."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if is_gzip(path):  # before any reader starts
            raise KgctlError(f"{path}: gzip-compressed; .h5ad files are HDF5 and must be decompressed")
        with _IDLE_LOCK:
            self._reader = _IDLE.pop() if _IDLE else _Reader()
        self._open = False
        try:
            self.header: Header = self._reader.ask(str(path), damaged_part(path, "obs, var or the shape of X"))
            self._open = True
            obs, var, shape = self.header.obs, self.header.var, self.header.shape
            if shape != (len(obs), len(var)):
                raise KgctlError(f"{path}: X has shape {shape}, but obs has {len(obs)} rows and var {len(var)}")
        except BaseException:
            self.close()
            raise

    def rows(self, start: int, stop: int) -> np.ndarray:
        try:
            block: np.ndarray = self._reader.ask((start, stop), damaged_part(self.path, f"X rows {start + 1}-{stop}"))
        except KgctlError:
            self._open = False  # the reader closed the file (or is gone)
            raise
        return block

    def close(self) -> None:
        """Close the file and give the reader back for the next one (a broken one is dropped)."""
        reader = self._reader
        if reader.alive and self._open:
            try:
                reader.pipe.send(None)
            except OSError:
                reader.kill()
        self._open = False
        if reader.alive:
            with _IDLE_LOCK:
                _IDLE.append(reader)
        else:
            reader.kill()

    def __enter__(self) -> H5ad:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def main() -> None:
    """The reader's entry point: `python -c "…main()" SOCKET_FD`."""
    _serve(Connection(int(sys.argv[1])))
