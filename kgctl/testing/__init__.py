"""Test, fuzz and data-generator code, in the style of `torch_geometric.testing`: `fixtures` (the
pytest plugin: a throwaway Neo4j, test helpers), `generators` (files in the real formats, for tests
and demos) and `fuzz` (mutated real files). A layer of its own: the library never imports it."""
