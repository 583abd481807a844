// Every source and run behind one gene pair: ingested interactions with their channels, derived edges, predictions with their run and split.
// param a: string - a gene symbol
// param b: string - the other gene symbol
MATCH (x:Gene {id: $a})-[r]-(y:Gene {id: $b})
RETURN type(r) AS type, startNode(r).id AS start, endNode(r).id AS end, r.source AS source,
       r.source_version AS source_version, r.licence AS licence, r.run AS run, r.model AS model,
       r.split AS split, coalesce(r.score, r.combined_score, r.similarity) AS score,
       properties(r) AS properties
ORDER BY type, source, run
