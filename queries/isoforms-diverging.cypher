// Isoforms of one gene whose IsoCLR embeddings differ most (lowest cosine): splicing that changes what the model sees.
// param gene: string = null - a gene symbol (or Ensembl id for non-human genes); by default every gene
// param limit: int = 20
MATCH (a:Transcript)-[:ISOFORM_OF]->(g:Gene)<-[:ISOFORM_OF]-(b:Transcript)
WHERE a.id < b.id AND ($gene IS NULL OR g.id = $gene)
  AND a.embedding_isoclr IS NOT NULL AND b.embedding_isoclr IS NOT NULL
WITH g, a, b, vector.similarity.cosine(a.embedding_isoclr, b.embedding_isoclr) AS similarity
RETURN g.id AS gene, a.id AS isoform_a, b.id AS isoform_b, round(similarity, 4) AS similarity,
       a.length AS length_a, b.length AS length_b, size(a.exon_ends) AS exons_a, size(b.exon_ends) AS exons_b
ORDER BY similarity ASC, gene, isoform_a, isoform_b
LIMIT $limit
