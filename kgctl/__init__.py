"""kgctl: one Neo4j context graph for public biology, models trained on views of it, predictions written back."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kgctl")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
