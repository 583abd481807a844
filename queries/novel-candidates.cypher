// Predicted partners of a gene that are not known interactions (no INTERACTS_WITH at any score), with the cosine of their expression embeddings.
// param gene: string - gene symbol, e.g. KIF3
// param run: string = null - a run id; by default every run written back
// param limit: int = 20
MATCH (g:Gene {id: $gene})-[p:PREDICTED_ASSOCIATION]->(partner:Gene)
WHERE ($run IS NULL OR p.run = $run) AND NOT (g)-[:INTERACTS_WITH]-(partner)
RETURN partner.id AS partner, round(p.score, 4) AS score, p.rank AS rank,
       round(p.input_cosine, 4) AS expression_cosine, p.run AS run
ORDER BY score DESC, partner
LIMIT $limit
