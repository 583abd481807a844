// Molecules whose known targets are a gene's predicted partners, ranked by the prediction: what only one graph of genes, molecules and model predictions can answer.
// param gene: string - gene symbol
// param model: string = cal - the model whose predictions to read
// param run: string = null - a run id; by default the newest run of `model` written back
// param limit: int = 25
OPTIONAL MATCH (m:ModelRun {model: $model}) WHERE m.written_back_at IS NOT NULL
WITH m ORDER BY m.written_back_at DESC, m.id DESC LIMIT 1
WITH coalesce($run, m.id) AS chosen
MATCH (g:Gene {id: $gene})-[p:PREDICTED_ASSOCIATION {run: chosen}]->(partner:Gene)<-[:TARGETS]-(mol:Molecule)
RETURN mol.id AS molecule, mol.name AS name, partner.id AS via_partner, round(p.score, 4) AS score,
       p.rank AS rank, EXISTS { (g)-[:INTERACTS_WITH]-(partner) } AS known_interaction,
       EXISTS { (mol)-[:TARGETS]->(g) } AS already_targets_gene
ORDER BY score DESC, molecule, via_partner
LIMIT $limit
