"""Source adapters: one module per source, each parsing and validating rows with provenance."""
