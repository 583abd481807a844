// A gene's known and predicted partners: ingested interactions with their score and source, and every model's predictions with score, model and run.
// param gene: string - gene symbol
// param limit: int = 50
MATCH (g:Gene {id: $gene})
CALL (g) {
  MATCH (g)-[r:INTERACTS_WITH]-(o:Gene)
  RETURN o.id AS partner, 'known' AS kind, r.combined_score / 1000.0 AS score, r.source AS source,
         null AS model, null AS run
  UNION ALL
  MATCH (g)-[p:PREDICTED_ASSOCIATION]-(o:Gene)
  RETURN o.id AS partner, 'predicted' AS kind, p.score AS score, p.source AS source,
         p.model AS model, p.run AS run
}
RETURN partner, kind, round(score, 4) AS score, source, model, run
ORDER BY kind, score DESC, partner, run
LIMIT $limit
