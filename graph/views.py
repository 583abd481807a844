"""Views as specs: what each view reads from the graph (labels, relationship types with their
weight expressions, feature rules, extra columns), registered by name. One exporter
(`graph/export.py`) reads a bound spec; the cache fingerprint covers only what the spec reads, so
writing predictions back, or ingesting a source the view does not read, keeps the cache."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from kgctl.core.errors import KgctlError
from kgctl.graph.schema import SCORE_PROPERTY, check_label, check_relationship_type

WEIGHT = re.compile(r"^(?:\d+(?:\.\d+)?|r\.[a-z][a-z0-9_]*)$")  # a literal or one property of r


@dataclass(frozen=True)
class EdgeSpec:
    """`(start)-[type]->(end)` with its weight: a number or one property of the relationship."""

    start: str
    type: str
    end: str
    weight: str = "1.0"

    def __post_init__(self) -> None:
        check_label(self.start)
        check_relationship_type(self.type)
        check_label(self.end)
        if not WEIGHT.match(self.weight):
            raise KgctlError(f"edge weight {self.weight!r}: a number or r.<property> only")

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.start, self.type, self.end)

    @property
    def name(self) -> str:
        return "|".join(self.key)


@dataclass(frozen=True)
class Features:
    """How one label's nodes get features: `dataset` (a Dataset's vectors, chosen by the view's
    `dataset` parameter), `bits` (a packed fingerprint property, unpacked) or `vectors` (a list
    property, when every node has one of the same length)."""

    rule: str
    prop: str = ""

    def __post_init__(self) -> None:
        if self.rule not in ("dataset", "bits", "vectors"):
            raise KgctlError(f"unknown feature rule {self.rule!r}")


@dataclass(frozen=True)
class ViewSpec:
    """A registered view. `edges` None: the caller chooses Gene–Gene relationship types (each
    weighed by its score property), as the gene-association view does."""

    name: str
    description: str
    labels: tuple[str, ...]
    edges: tuple[EdgeSpec, ...] | None
    features: dict[str, Features] = field(default_factory=dict)
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    homogeneous: bool = False  # one label: exported as a PyG `Data`, else a `HeteroData`

    def bind(
        self,
        *,
        dataset: str | None = None,
        relationships: tuple[str, ...] = ("INTERACTS_WITH",),
        min_score: float | None = None,
    ) -> BoundView:
        """The spec with its parameters: the edges it exports and what it reads."""
        if self.edges is None:
            edges = tuple(
                EdgeSpec("Gene", t, "Gene", f"r.{SCORE_PROPERTY.get(t, 'score')}") for t in dict.fromkeys(relationships)
            )
        else:
            if min_score is not None or relationships != ("INTERACTS_WITH",):
                raise KgctlError(f"view {self.name}: --relationship and --min-score do not apply")
            edges = self.edges
        if dataset is not None and not any(f.rule == "dataset" for f in self.features.values()):
            raise KgctlError(f"view {self.name}: --dataset does not apply (no features come from one)")
        return BoundView(self, edges, dataset, min_score)


@dataclass(frozen=True)
class BoundView:
    spec: ViewSpec
    edges: tuple[EdgeSpec, ...]
    dataset: str | None
    min_score: float | None

    def params(self) -> dict[str, object]:
        return {
            "view": self.spec.name,
            "dataset": self.dataset,
            "edges": [e.name for e in self.edges],
            "min_score": self.min_score,
        }

    def reads(self, dataset_label: str | None) -> tuple[list[str], list[str]]:
        """(labels, relationship types) whose change can change the export; a dataset's features
        also read the Dataset node, its vector label and PERTURBS (perturbation profiles)."""
        labels = set(self.spec.labels) | {e.start for e in self.edges} | {e.end for e in self.edges}
        types = {e.type for e in self.edges}
        if self.dataset is not None:
            labels |= {"Dataset", dataset_label or "Gene"}
            types.add("PERTURBS")
        return sorted(labels), sorted(types)


VIEWS: dict[str, ViewSpec] = {}


def register_view(spec: ViewSpec) -> ViewSpec:
    for label in spec.labels:
        check_label(label)
    VIEWS[spec.name] = spec
    return spec


def view_spec(name: str) -> ViewSpec:
    if name not in VIEWS:
        raise KgctlError(f"unknown view {name!r}; choose from {', '.join(VIEWS)}")
    return VIEWS[name]


register_view(
    ViewSpec(
        "gene-association",
        "Genes with features from a Dataset and their Gene–Gene relationships (CAL).",
        labels=("Gene",),
        edges=None,
        features={"Gene": Features("dataset")},
        homogeneous=True,
    )
)

# InfoAlign's context graph (methods/infoalign.md §1.2): the edge kinds and their walk weights.
register_view(
    ViewSpec(
        "context",
        "Molecules, genes, expression and morphology profiles with walk weights (InfoAlign).",
        labels=("Molecule", "Gene", "ExpressionProfile", "MorphologyProfile"),
        edges=(
            EdgeSpec("Molecule", "TARGETS", "Gene"),  # E1
            EdgeSpec("Molecule", "PERTURBS", "MorphologyProfile"),  # E2
            EdgeSpec("Molecule", "PERTURBS", "ExpressionProfile"),  # E3
            EdgeSpec("Gene", "PERTURBS", "ExpressionProfile"),  # genetic perturbations
            EdgeSpec("Gene", "PERTURBS", "MorphologyProfile"),
            EdgeSpec("Gene", "INTERACTS_WITH", "Gene"),  # E4
            EdgeSpec("Molecule", "SIMILAR_TO", "Molecule", "r.similarity"),  # E6
            EdgeSpec("Gene", "SIMILAR_TO", "Gene", "r.similarity"),  # E7
            EdgeSpec("MorphologyProfile", "SIMILAR_TO", "MorphologyProfile", "r.similarity"),  # E8
            EdgeSpec("ExpressionProfile", "SIMILAR_TO", "ExpressionProfile", "r.similarity"),  # E9
        ),
        features={
            "Molecule": Features("bits", "fingerprint"),
            "Gene": Features("dataset"),
            "ExpressionProfile": Features("vectors", "features"),
            "MorphologyProfile": Features("vectors", "features"),
        },
        columns={"Molecule": ("smiles",)},
    )
)

# IsoCLR's transcripts: sequence and structure as columns, their genes, orthologs between genes.
register_view(
    ViewSpec(
        "transcripts",
        "Transcripts with sequence and structure, their genes, and orthologs (IsoCLR).",
        labels=("Transcript", "Gene"),
        edges=(EdgeSpec("Transcript", "ISOFORM_OF", "Gene"), EdgeSpec("Gene", "ORTHOLOG_OF", "Gene")),
        columns={"Transcript": ("gene_id", "gene_symbol", "length", "cds_start", "cds_end", "exon_ends", "sequence")},
    )
)
