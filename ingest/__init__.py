"""Source adapters: one module per source, each parsing and validating rows with provenance.

Importing this package registers every adapter in `kgctl.ingest.base.ADAPTERS`.
"""

from kgctl.ingest import (
    depmap,  # noqa: F401
    expression,  # noqa: F401
    l1000,  # noqa: F401
    molecules,  # noqa: F401
    morphology,  # noqa: F401
    perturbseq,  # noqa: F401
    string,  # noqa: F401
    transcripts,  # noqa: F401
)
