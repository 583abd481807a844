// Genes nearest to a gene in CAL's association space, from the vector index on embedding_cal.
// param gene: string - gene symbol
// param k: int = 10
MATCH (g:Gene {id: $gene})
WHERE g.embedding_cal IS NOT NULL
CALL db.index.vector.queryNodes('gene_embedding_cal', $k + 1, g.embedding_cal) YIELD node, score
WITH g, node, score WHERE node <> g
RETURN node.id AS gene, round(score, 4) AS similarity,
       EXISTS { (g)-[:INTERACTS_WITH]-(node) } AS known_interaction
ORDER BY similarity DESC, gene
LIMIT $k
