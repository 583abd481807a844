"""How library code reports progress: a callback, never a console. The CLI turns it into a rich
progress bar on stderr; Python callers pass their own or nothing."""

from __future__ import annotations

from collections.abc import Callable

# on_progress(done, total, text): `done` of `total` units (bytes, epochs, steps; total None when
# unknown), and a short line saying what is happening.
OnProgress = Callable[[float, float | None, str], None]


def silent(done: float, total: float | None, text: str) -> None:
    """The callback that reports nothing."""
