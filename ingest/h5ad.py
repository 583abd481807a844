"""`.h5ad` (AnnData HDF5) files read by a child process, each read with a time bound: libhdf5 can
loop forever, or crash, on a damaged file (HDFGroup/hdf5#1707; here one flipped byte in the size of
a global-heap string), and neither a loop in C nor a segfault can be stopped in-process."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import tempfile
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

READ_TIMEOUT_S = 60.0  # one read: the child's start with obs and var, or one block of X's rows


@dataclass
class Header:
    """What is read up front: obs and var in full, and X's shape (None when there is no X)."""

    obs: pd.DataFrame
    var: pd.DataFrame
    shape: tuple[int, ...] | None


@contextmanager
def damaged(path: Path, where: str) -> Iterator[None]:
    """A file that opens but whose HDF5 objects are damaged: h5py raises KeyError, OSError,
    ValueError and more from inside; name the file and the part instead."""
    try:
        yield
    except KgctlError:
        raise
    except Exception as exc:
        raise KgctlError(f"{path}: damaged .h5ad file ({where}): {exc}") from exc


def _open(path: Path) -> Any:
    """The AnnData in backed mode: obs and var in memory, X read in row blocks on demand."""
    import anndata

    if is_gzip(path):
        raise KgctlError(f"{path}: gzip-compressed; .h5ad files are HDF5 and must be decompressed")
    try:
        with warnings.catch_warnings():  # a repeated obs name is the adapter's to report
            warnings.filterwarnings("ignore", "Observation names are not unique")
            return anndata.read_h5ad(path, backed="r")
    except Exception as exc:  # h5py/anndata raise many types for a file that is not h5ad
        raise KgctlError(f"{path}: not a readable .h5ad (AnnData HDF5) file: {exc}") from exc


def _serve(path: Path, pipe: Connection) -> None:
    """The child: open the file, send its header, then each block of rows asked for; a failure
    is sent as its one-line message, and ends the child. Each read is under an alarm left at its
    default action, so a read that loops in C ends the child even if the parent is gone."""
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    try:
        signal.alarm(int(READ_TIMEOUT_S) + 10)
        adata = _open(path)
        with damaged(path, "obs, var or the shape of X"):
            shape = tuple(adata.X.shape) if adata.X is not None else None
            header = Header(adata.obs.copy(), adata.var.copy(), shape)
        signal.alarm(0)
        pipe.send(header)
        while (request := pipe.recv()) is not None:
            start, stop = request
            signal.alarm(int(READ_TIMEOUT_S) + 10)
            with damaged(path, f"X rows {start + 1}-{stop}"):
                block = adata.X[start:stop]
                block = np.asarray(block.toarray() if hasattr(block, "toarray") else block)
            signal.alarm(0)
            pipe.send(block)
    except KgctlError as exc:
        pipe.send(exc.message)
    except EOFError:  # the parent is gone
        pass


class H5ad:
    """An open `.h5ad` whose X matches obs × var: `header`, and `rows(start, stop)` as a dense
    block. Use it as a context manager; a read past READ_TIMEOUT_S, or a reader that dies, is a
    KgctlError. The reader is a plain `python` running `main`, not a multiprocessing child: those
    re-run the caller's main module, which a script without a `__main__` guard cannot survive."""

    def __init__(self, path: Path) -> None:
        self.path = path
        ours, theirs = socket.socketpair()
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        with theirs:
            self._process = subprocess.Popen(
                [sys.executable, "-c", "from kgctl.ingest.h5ad import main; main()", str(path),
                 str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=self._stderr,
            )  # fmt: skip
        self._pipe = Connection(ours.detach())
        try:
            self.header: Header = self._receive("obs, var or the shape of X")
            obs, var, shape = self.header.obs, self.header.var, self.header.shape
            if shape != (len(obs), len(var)):
                raise KgctlError(
                    f"{path}: X has shape {shape}, but obs has {len(obs)} rows and var {len(var)}"
                )
        except BaseException:
            self.close()
            raise

    def rows(self, start: int, stop: int) -> np.ndarray:
        self._pipe.send((start, stop))
        block: np.ndarray = self._receive(f"X rows {start + 1}-{stop}")
        return block

    def _receive(self, where: str) -> Any:
        prefix = f"{self.path}: damaged .h5ad file ({where})"
        if not self._pipe.poll(READ_TIMEOUT_S):
            self._process.kill()
            raise KgctlError(f"{prefix}: reading it did not finish in {READ_TIMEOUT_S:.0f} s "
                             "(libhdf5 loops on some damaged files)")  # fmt: skip
        try:
            answer = self._pipe.recv()
        except (EOFError, OSError):
            code = self._process.wait()
            self._stderr.seek(0)
            last = (self._stderr.read().decode(errors="replace").strip().splitlines() or [""])[-1]
            raise KgctlError(f"{prefix}: the HDF5 reader crashed (exit code {code})"
                             + (f": {last}" if last else "")) from None  # fmt: skip
        if isinstance(answer, str):
            raise KgctlError(answer)
        return answer

    def close(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(OSError):  # the child is gone already
                self._pipe.send(None)
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:  # still in a read that does not end
                self._process.kill()
                self._process.wait()
        self._pipe.close()
        self._stderr.close()

    def __enter__(self) -> H5ad:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:  # fmt: skip
        self.close()


def main() -> None:
    """The reader's entry point: `python -c "…main()" PATH SOCKET_FD`."""
    _serve(Path(sys.argv[1]), Connection(int(sys.argv[2])))
