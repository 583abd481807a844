// What one model run recorded and wrote: its ModelRun, its scored edges by type and its embeddings.
// param run: string = null - a run id; by default the newest run (of `model`, if given)
// param model: string = null - the model whose newest run to show when `run` is not given
MATCH (m:ModelRun)
WHERE ($run IS NULL OR m.id = $run) AND ($model IS NULL OR m.model = $model)
WITH m ORDER BY m.created_at DESC, m.id DESC LIMIT 1
CALL (m) {
  MATCH ()-[p]->() WHERE p.run = m.id
  RETURN collect(DISTINCT type(p)) AS relationship_types, count(p) AS edges
}
CALL (m) {
  MATCH (n) WHERE n['embedding_' + m.model + '_run'] = m.id
  RETURN count(n) AS embeddings
}
RETURN m.id AS run, m.model AS model, m.status AS status, m.created_at AS created_at,
       m.view AS view, relationship_types, edges, embeddings, m.written_back_at AS written_back_at,
       m.metrics AS metrics
