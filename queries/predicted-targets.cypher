// A molecule's predicted targets (newest written-back run of the model), with the evidence: the neighbouring molecules that target the gene, and the shortest path through the context graph.
// param molecule: string - an InChIKey or a compound name, e.g. imatinib
// param model: string = infoalign - the model whose predictions to read
// param run: string = null - a run id; by default the newest run of `model` written back
// param limit: int = 10
OPTIONAL MATCH (r:ModelRun {model: $model}) WHERE r.written_back_at IS NOT NULL
WITH r ORDER BY r.written_back_at DESC, r.id DESC LIMIT 1
WITH coalesce($run, r.id) AS chosen
MATCH (m:Molecule) WHERE m.id = $molecule OR m.name = $molecule
MATCH (m)-[p:PREDICTED_ASSOCIATION {run: chosen}]->(g:Gene)
OPTIONAL MATCH path = shortestPath((m)-[:TARGETS|PERTURBS|SIMILAR_TO|INTERACTS_WITH*..4]-(g))
RETURN m.id AS molecule, g.id AS gene, round(p.score, 4) AS score, p.rank AS rank, p.split AS split,
       p.known AS known, p.via AS via_molecules,
       [n IN nodes(path) | coalesce(n.name, n.id)] AS path,
       [x IN relationships(path) | type(x)] AS path_types, p.run AS run
ORDER BY molecule, rank
LIMIT $limit
