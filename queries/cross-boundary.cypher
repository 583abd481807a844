// The most confident predictions whose expression cosine is below a bound: associations expression similarity alone would miss.
// param bound: float = 0.2 - largest |expression cosine|
// param novel: bool = false - only pairs with no INTERACTS_WITH at any score
// param run: string = null - a run id; by default every run written back
// param limit: int = 25
MATCH (a:Gene)-[p:PREDICTED_ASSOCIATION]->(b:Gene)
WHERE abs(p.input_cosine) < $bound AND ($run IS NULL OR p.run = $run)
  AND (NOT $novel OR NOT (a)-[:INTERACTS_WITH]-(b))
RETURN a.id AS gene, b.id AS partner, round(p.score, 4) AS score,
       round(p.input_cosine, 4) AS expression_cosine, p.split AS split, p.run AS run
ORDER BY score DESC, gene, partner
LIMIT $limit
