// Genes nearest to a gene in a model's embedding space (CAL's association space by default), from its vector index.
// param gene: string - gene symbol
// param model: string = cal - the model whose embedding_<model> to search
// param k: int = 10
MATCH (g:Gene {id: $gene})
WHERE g['embedding_' + $model] IS NOT NULL
CALL db.index.vector.queryNodes('gene_embedding_' + $model, $k + 1, g['embedding_' + $model]) YIELD node, score
WITH g, node, score WHERE node <> g
RETURN node.id AS gene, round(score, 4) AS similarity,
       EXISTS { (g)-[:INTERACTS_WITH]-(node) } AS known_interaction
ORDER BY similarity DESC, gene
LIMIT $k
