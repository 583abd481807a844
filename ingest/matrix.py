"""Shared pieces for matrix sources (expression, DepMap, Perturb-seq, L1000, morphology): the
`Dataset` node that records feature order, safe property names, and float parsing."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from kgctl.graph.records import Node

MISSING = {"", "na", "nan", "NA", "NaN", "-666", "null", "None"}


def versioned(prop: str, version: str) -> str:
    """The per-gene vector property of one release: `depmap_gene_effect_24q4`. Releases keep
    their own values side by side; the `Dataset` node names the property of each."""
    tag = re.sub(r"[^a-z0-9]+", "_", version.lower()).strip("_")
    return f"{prop}_{tag or 'unversioned'}"


def slug(text: str) -> str:
    """A property-name-safe version of a dataset name: lower_snake, starting with a letter."""
    out = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    return out if out and out[0].isalpha() else f"d_{out}"


def to_float(text: str) -> float:
    """A finite float, NaN for the usual missing markers; ValueError for anything else (an
    infinity too: `inf` or `1e999` is no measurement)."""
    text = text.strip()
    if text in MISSING:
        return math.nan
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"infinite: {text!r}")
    return value


def dataset_node(
    name: str,
    version: str,
    *,
    kind: str,
    features: Sequence[str],
    axis: str,
    units: str | None = None,
    vector_property: str | None = None,
    vector_label: str | None = None,
) -> Node:
    """`Dataset {id: name@version}`: `features` names the positions of every vector it produced
    (`axis` says what they are: genes, probes, cell lines, morphology features)."""
    props = {
        "name": name,
        "version": version,
        "kind": kind,
        "features": list(features),
        "feature_axis": axis,
        "n_features": len(features),
        "units": units,
        "vector_property": vector_property,
        "vector_label": vector_label,
    }
    return Node("Dataset", f"{name}@{version}", {k: v for k, v in props.items() if v is not None})
