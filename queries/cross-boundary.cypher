// The most confident predictions whose expression cosine is below a bound: associations expression similarity alone would miss.
// param bound: float = 0.2 - largest |expression cosine|
// param novel: bool = false - only pairs with no INTERACTS_WITH at any score
// param model: string = cal - the model whose predictions to read
// param run: string = null - a run id; by default the newest run of `model` written back
// param limit: int = 25
OPTIONAL MATCH (m:ModelRun {model: $model}) WHERE m.written_back_at IS NOT NULL
WITH m ORDER BY m.written_back_at DESC, m.id DESC LIMIT 1
WITH coalesce($run, m.id) AS chosen
MATCH (a:Gene)-[p:PREDICTED_ASSOCIATION {run: chosen}]->(b:Gene)
WHERE abs(p.input_cosine) < $bound AND (NOT $novel OR NOT (a)-[:INTERACTS_WITH]-(b))
RETURN a.id AS gene, b.id AS partner, round(p.score, 4) AS score,
       round(p.input_cosine, 4) AS expression_cosine, p.split AS split, p.run AS run
ORDER BY score DESC, gene, partner
LIMIT $limit
