"""One provenance vocabulary, one clock and one code version for everything kgctl records."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kgctl import __version__


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def code_version() -> str:
    """kgctl's version, plus the git commit when running from a checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"{__version__}+{commit}" if commit else __version__


# The one provenance vocabulary: every node and relationship kgctl writes carries these, whether
# ingested from a source, derived by `kgctl build` or predicted by a model run.
PROVENANCE = ("source", "source_version", "run", "licence", "created_at")


@dataclass(frozen=True)
class Provenance:
    """Where data came from (BioCypher-style): the source and its release, the run that wrote it
    (an IngestRun, a build or a ModelRun), the source's licence, and when."""

    source: str
    source_version: str
    run: str
    licence: str
    created_at: str  # ISO 8601, UTC; stored as a Neo4j datetime

    def params(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in PROVENANCE}

    @staticmethod
    def assignments(var: str) -> str:
        """Cypher `SET` items of every provenance property from the `$prov` parameter."""
        return ", ".join(
            f"{var}.{k} = " + ("datetime($prov.created_at)" if k == "created_at" else f"$prov.{k}") for k in PROVENANCE
        )
