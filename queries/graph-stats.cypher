// What the graph holds: nodes per label and relationships per type, largest first.
CALL () {
  MATCH (n) UNWIND labels(n) AS name RETURN 'label' AS kind, name, count(*) AS count
  UNION ALL
  MATCH ()-[r]->() RETURN 'relationship' AS kind, type(r) AS name, count(*) AS count
}
RETURN kind, name, count
ORDER BY kind, count DESC, name
