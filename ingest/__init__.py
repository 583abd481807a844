"""Source adapters: one module per source, each parsing and validating rows with provenance.

Importing this package registers every adapter in `kgctl.ingest.base.ADAPTERS`.
"""

from kgctl.ingest import string  # noqa: F401
