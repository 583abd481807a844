"""The gene-association family: models of gene pairs on the `gene-association` view (CAL,
GraphSAGE, plug-ins) share their inputs, splits, training-task base, all-pairs rows and
predictions (`model.AssociationModel`), the registered pair baselines (`scorers`, `baselines`),
and the `pairs` and `evidence` evaluators. Model packages of the family never import each other."""

from kgctl.models.association import baselines, evaluate, evidence  # noqa: F401  (registers them)
from kgctl.models.association.config import AssociationConfig
from kgctl.models.association.model import AssociationModel

__all__ = ["AssociationConfig", "AssociationModel"]
