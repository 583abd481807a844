// Predicted partners of a gene that are not known interactions (no INTERACTS_WITH at any score), with the cosine of their expression embeddings.
// param gene: string - gene symbol, e.g. KIF3
// param model: string = cal - the model whose predictions to read
// param run: string = null - a run id; by default the newest run of `model` written back
// param limit: int = 20
OPTIONAL MATCH (m:ModelRun {model: $model}) WHERE m.written_back_at IS NOT NULL
WITH m ORDER BY m.written_back_at DESC, m.id DESC LIMIT 1
WITH coalesce($run, m.id) AS chosen
MATCH (g:Gene {id: $gene})-[p:PREDICTED_ASSOCIATION {run: chosen}]->(partner:Gene)
WHERE NOT (g)-[:INTERACTS_WITH]-(partner)
RETURN partner.id AS partner, round(p.score, 4) AS score, p.rank AS rank,
       round(p.input_cosine, 4) AS expression_cosine, p.run AS run
ORDER BY score DESC, partner
LIMIT $limit
