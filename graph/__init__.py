"""The graph layer: the managed Neo4j server, connections and the schema."""
