// Genes with few known interactions that have confident predicted partners: where the model adds most.
// param max_degree: int = 3 - at most this many INTERACTS_WITH partners
// param min_score: float = 0.5 - predicted score at least this
// param model: string = cal - the model whose predictions to read
// param run: string = null - a run id; by default the newest run of `model` written back
// param limit: int = 25
OPTIONAL MATCH (m:ModelRun {model: $model}) WHERE m.written_back_at IS NOT NULL
WITH m ORDER BY m.written_back_at DESC, m.id DESC LIMIT 1
WITH coalesce($run, m.id) AS chosen
MATCH (g:Gene)-[p:PREDICTED_ASSOCIATION {run: chosen}]->(partner:Gene)
WHERE p.score >= $min_score
WITH g, p, partner, COUNT { (g)-[:INTERACTS_WITH]-() } AS degree
WHERE degree <= $max_degree
RETURN g.id AS gene, degree, partner.id AS partner, round(p.score, 4) AS score,
       NOT (g)-[:INTERACTS_WITH]-(partner) AS novel, p.run AS run
ORDER BY score DESC, gene, partner
LIMIT $limit
