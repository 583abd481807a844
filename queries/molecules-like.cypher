// Molecules nearest to a molecule in InfoAlign space (its vector index), with their known targets: what the cell context says behaves alike.
// param molecule: string - an InChIKey or a compound name, e.g. imatinib
// param model: string = infoalign - the model whose embedding_<model> to search
// param k: int = 10
MATCH (m:Molecule) WHERE (m.id = $molecule OR m.name = $molecule) AND m['embedding_' + $model] IS NOT NULL
WITH m ORDER BY m.id LIMIT 1
CALL db.index.vector.queryNodes('molecule_embedding_' + $model, $k + 1, m['embedding_' + $model]) YIELD node, score
WITH m, node, score WHERE node <> m
OPTIONAL MATCH (node)-[:TARGETS]->(t:Gene)
WITH m, node, score, collect(t.id) AS targets
RETURN node.id AS molecule, node.name AS name, round(score, 4) AS similarity, targets[..10] AS known_targets,
       EXISTS { (m)-[:SIMILAR_TO]-(node) } AS tanimoto_neighbour
ORDER BY similarity DESC, molecule
LIMIT $k
