// Genes with few known interactions that have confident predicted partners: where the model adds most.
// param max_degree: int = 3 - at most this many INTERACTS_WITH partners
// param min_score: float = 0.5 - predicted score at least this
// param run: string = null - a run id; by default every run written back
// param limit: int = 25
MATCH (g:Gene)-[p:PREDICTED_ASSOCIATION]->(partner:Gene)
WHERE p.score >= $min_score AND ($run IS NULL OR p.run = $run)
WITH g, p, partner, COUNT { (g)-[:INTERACTS_WITH]-() } AS degree
WHERE degree <= $max_degree
RETURN g.id AS gene, degree, partner.id AS partner, round(p.score, 4) AS score,
       NOT (g)-[:INTERACTS_WITH]-(partner) AS novel, p.run AS run
ORDER BY score DESC, gene, partner
LIMIT $limit
