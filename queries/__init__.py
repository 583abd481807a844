"""Named Cypher queries (`*.cypher` with a header) and the runner behind `kgctl query`."""
