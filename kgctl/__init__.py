"""kgctl: one Neo4j context graph for public biology, models trained on views of it, predictions written back."""

# The one place the version is written (pyproject.toml reads it); a literal, because
# importlib.metadata costs `kgctl --help` a third of its start.
__version__ = "0.1.0"

__all__ = ["__version__"]
