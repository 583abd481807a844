"""Cell Painting profiles as their users have them: pycytominer tables (CSV or parquet, one row per
well, `Metadata_*` columns, or an IDR-style annotated table) with CellProfiler features
`<Compartment>_…`. By default one consensus `MorphologyProfile` per perturbation, dose and time
(the median of its wells over the values each feature has, the replicate count kept), else one per well; `PERTURBS` from the
compound (its full InChIKey, a Broad id or a unique InChIKey first block, mapped to an existing
Molecule) or gene. A dataset is one feature space (name, version and the sha256 of its columns):
files or datasets whose columns differ are never pooled."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option
from kgctl.graph.records import Edge, Node, Record, Reject, RowDone
from kgctl.ingest.base import GENE_SYMBOL, Adapter, clean_props, gene_id, register
from kgctl.ingest.matrix import dataset_node
from kgctl.ingest.molecule_nodes import broad_compound
from kgctl.ingest.readers import ByteCounter, file_format, open_text, sniff_delimiter

INCHIKEY = re.compile(r"^[A-Z]{14}-[A-Z]{10}-[A-Z]$")
COMPARTMENTS = ("Cells_", "Cytoplasm_", "Nuclei_")  # pycytominer's default feature compartments
# The columns each role is read from, first found wins; `--column role=name` overrides.
ROLES: dict[str, tuple[str, ...]] = {
    "inchikey": ("Metadata_InChIKey", "Metadata_inchikey", "Metadata_InChIKey_standard", "Compound InChIKey"),
    "inchikey14": ("Metadata_InChIKey14",),
    "broad": ("Metadata_broad_sample", "Metadata_broad_id", "Metadata_pert_id", "Compound BRD"),
    "gene": ("Metadata_Symbol", "Metadata_gene", "Metadata_Gene", "Metadata_gene_symbol"),
    "dose": (
        "Metadata_mmoles_per_liter",
        "Metadata_dose",
        "Metadata_pert_dose",
        "Compound Concentration (microMolar)",
    ),
    "time": ("Metadata_time", "Metadata_pert_time", "Experimental Condition [Treatment time (h)]"),
    "plate": ("Metadata_Plate", "Plate"),
    "well": ("Metadata_Well", "Well"),
    "source": ("Metadata_Source",),
}
CONTROL_COLUMNS = ("Metadata_control_type", "Metadata_pert_type", "Control Type")
CONTROL_TYPES = {"negcon", "ctl_vehicle", "control", "empty", "negative"}
ROWS_PER_READ = 5_000


def frames(path: Path, counter: ByteCounter) -> Iterator[pd.DataFrame]:
    """The table in row blocks (parquet row groups / CSV chunks), so reading stays flat."""
    if file_format(path) == "parquet":
        try:
            table = pq.ParquetFile(path)
        except Exception as exc:
            raise KgctlError(f"{path}: not a readable parquet file: {exc}") from exc
        size = path.stat().st_size
        batches = table.iter_batches(batch_size=ROWS_PER_READ)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as exc:  # a damaged row group
                raise KgctlError(f"{path}: not a readable parquet file: {exc}") from None
            counter.done += int(size * batch.num_rows / max(1, table.metadata.num_rows))
            yield batch.to_pandas()
    with open_text(path) as handle:
        delimiter = sniff_delimiter(handle.readline(), path)
    with open_text(path, counter) as handle:
        try:
            yield from pd.read_csv(handle, sep=delimiter, chunksize=ROWS_PER_READ, low_memory=False)
        except pd.errors.ParserError as exc:  # e.g. a quote that never closes
            raise KgctlError(f"{path}: not a readable {delimiter!r}-separated table: {exc}") from None


def columns_of(path: Path) -> list[str]:
    if file_format(path) == "parquet":
        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as exc:  # truncated: no footer
            raise KgctlError(f"{path}: not a readable parquet file: {exc}") from None
    with open_text(path) as handle:
        header = handle.readline().rstrip("\r\n")
    return header.split(sniff_delimiter(header, path))


def feature_sha256(features: list[str]) -> str:
    """The feature space's fingerprint: its column names in order."""
    return hashlib.sha256("\n".join(features).encode()).hexdigest()


def text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def number(value: Any) -> float | None:
    """A dose or time: None when absent; ValueError when not a number."""
    if value is None or value == "":
        return None
    return float(value)


@dataclass(frozen=True)
class Perturbation:
    """What a treated well received: the start node, the PERTURBS type and how the compound was
    matched."""

    label: str  # Molecule or Gene
    id: str
    type: str  # compound, or the genetic perturbation type
    matched_by: str | None = None


@dataclass
class Well:
    """One well that passed validation, waiting for its consensus."""

    path: str
    line: int
    plate: str
    well: str
    vector: np.ndarray


@register
class MorphologyAdapter(Adapter):
    name = "morphology"
    source = "Cell Painting"
    licence = "CC0-1.0"  # JUMP and LINCS Cell Painting: CC0 1.0; pass --licence for others
    formats = "pycytominer Cell Painting profiles (CSV/parquet, well level): Metadata_* or IDR columns"
    parser_version = 2
    options = (
        Option("dataset", "Dataset name; files given the same one are pooled (default: the file name)."),
        Option(
            "level",
            "consensus: one profile per perturbation, dose and time (median of its wells); well: one per well.",
            str,
            "consensus",
            choices=("consensus", "well"),
        ),
        Option("feature-space", "Name of the feature space the columns belong to (default: the dataset)."),
        Option(
            "column",
            f"role=column: read a role from another column (roles: {', '.join(ROLES)}).",
            multiple=True,
        ),
        Option("perturbation-type", "PERTURBS type for gene wells (compound wells say 'compound').", str, "ORF"),
        Option("source-name", "Profile source recorded on nodes (e.g. JUMP, LINCS).", str, "JUMP"),
        Option("source-version", "Release to record."),
    )

    def validate(self) -> None:
        overrides = self._overrides()
        self.layout: dict[Path, dict[str, Any]] = {}
        for path in self.files:
            columns = columns_of(path)
            features = [c for c in columns if c.startswith(COMPARTMENTS)]
            if not features:
                raise KgctlError(
                    f"{path}:1: not a Cell Painting profile table: no CellProfiler feature columns "
                    f"({', '.join(p + '*' for p in COMPARTMENTS)}) among {len(columns)} columns"
                )
            roles: dict[str, str | None] = {}
            for role, names in ROLES.items():
                chosen = overrides.get(role)
                if chosen is not None and chosen not in columns:
                    raise KgctlError(f"{path}:1: field {chosen!r}: no such column (--column {role}={chosen})")
                roles[role] = chosen or next((c for c in names if c in columns), None)
            if roles["well"] is None:
                raise KgctlError(f"{path}:1: field 'Metadata_Well': missing (name it with --column well=...)")
            if not any(roles[r] for r in ("inchikey", "inchikey14", "broad", "gene")):
                raise KgctlError(
                    f"{path}:1: field 'Metadata_InChIKey': no perturbation column (one of "
                    f"{', '.join(ROLES['inchikey'] + ROLES['inchikey14'] + ROLES['broad'] + ROLES['gene'])})"
                )
            self.layout[path] = {
                "features": features,
                "roles": roles,
                "controls": [c for c in CONTROL_COLUMNS if c in columns],
                "dataset": self._dataset(path),
            }
        self._check_feature_spaces()

    def _overrides(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.opts.get("column") or ():
            role, _, column = str(item).partition("=")
            if role not in ROLES or not column:
                raise KgctlError(f"--column {item!r}: expected role=column with a role among {', '.join(ROLES)}")
            out[role] = column
        return out

    def _dataset(self, path: Path) -> str:
        return str(self.opts.get("dataset") or re.sub(r"\.(csv|tsv|parquet)(\.gz)?$", "", path.name))

    def _check_feature_spaces(self) -> None:
        """Files pooled into one dataset share their columns exactly, and a dataset or feature
        space already in the graph keeps the columns it was made with."""
        first: dict[str, tuple[Path, list[str]]] = {}
        for path, layout in self.layout.items():
            name, features = layout["dataset"], layout["features"]
            if name in first and first[name][1] != features:
                other, theirs = first[name]
                differ = next((a for a, b in zip(features, theirs, strict=False) if a != b), "(the count)")
                raise KgctlError(
                    f"{path}:1: field {differ!r}: its {len(features)} feature columns differ from those of "
                    f"{other.name} ({len(theirs)}) in dataset {name!r}: ingest them as separate datasets "
                    "(--dataset), never pooled"
                )
            first.setdefault(name, (path, features))
        version = self.source_version()
        sha_of = {d: s for s, ds in self.lookup.grouped("Dataset", "feature_space_sha256").items() for d in ds}
        space_of = {d: s for s, ds in self.lookup.grouped("Dataset", "feature_space").items() for d in ds}
        for name, (path, features) in first.items():
            sha, dataset, space = feature_sha256(features), f"{name}@{version}", self.feature_space(name)
            if sha_of.get(dataset, sha) != sha:
                raise KgctlError(f"{path}:1: dataset {dataset} is in the graph with other feature columns")
            clash = [d for d, s in space_of.items() if s == space and sha_of.get(d, sha) != sha]
            if clash:
                raise KgctlError(
                    f"{path}:1: feature space {space} is in the graph ({clash[0]}) with other columns: "
                    "name this one with --feature-space"
                )

    def feature_space(self, dataset: str) -> str:
        return f"{self.opts.get('feature_space') or dataset}@{self.source_version()}"

    def records(self, counter: ByteCounter) -> Iterator[Record]:
        self.molecules = set(self.lookup.ids("Molecule", "id"))
        self.broad = self.lookup.grouped("Molecule", "broad_id")
        self.blocks: dict[str, list[str]] = defaultdict(list)
        for key in sorted(self.molecules):
            self.blocks[key[:14]].append(key)
        by_dataset: dict[str, list[Path]] = defaultdict(list)
        for path in self.files:
            by_dataset[self.layout[path]["dataset"]].append(path)
        for dataset, paths in by_dataset.items():
            yield from self._dataset_records(dataset, paths, counter)

    def _dataset_records(self, dataset: str, paths: list[Path], counter: ByteCounter) -> Iterator[Record]:
        version = self.source_version()
        features: list[str] = self.layout[paths[0]]["features"]
        node = dataset_node(
            dataset,
            version,
            kind="morphology",
            features=features,
            axis="CellProfiler features",
            vector_property="features",
            vector_label="MorphologyProfile",
        )
        node.props |= {
            "feature_space": self.feature_space(dataset),
            "feature_space_sha256": feature_sha256(features),
            "profile_level": self.opts["level"],
        }
        yield node
        groups: dict[tuple[Perturbation | None, float | None, float | None], list[Well]] = defaultdict(list)
        for path in paths:
            for item in self._wells(path, counter):
                if isinstance(item, Reject):
                    yield item
                    continue
                key, well, meta = item
                if self.opts["level"] == "well":
                    yield from self._profile(dataset, version, key, [well], meta.get("source"))
                    yield RowDone()
                else:
                    groups[key].append(well)
        for key in sorted(groups, key=lambda k: (k[0] is not None, k[0].id if k[0] else "", str(k[1]), str(k[2]))):
            wells = groups[key]
            stacked = np.stack([w.vector for w in wells])
            absent = ~np.isfinite(stacked).any(axis=0)
            if absent.any():  # a feature none of the replicates measured: no consensus to give
                for well in wells:
                    bad = features[int(np.argmax(absent))]
                    yield Reject(well.path, well.line, bad, "no replicate of this well's group has this feature", "")
                continue
            yield from self._profile(dataset, version, key, wells, None)
            for _ in wells:
                yield RowDone()

    def _wells(
        self, path: Path, counter: ByteCounter
    ) -> Iterator[Reject | tuple[tuple[Perturbation | None, float | None, float | None], Well, dict[str, Any]]]:
        layout = self.layout[path]
        features: list[str] = layout["features"]
        roles: dict[str, str | None] = layout["roles"]
        wanted = sorted({c for c in roles.values() if c} | set(layout["controls"]))
        line = 1  # the header; for parquet, row numbers count the same way
        for frame in frames(path, counter):
            missing = [c for c in features + wanted if c not in frame.columns]
            if missing:  # the header as validated is not the header pandas read: a stray quote
                raise KgctlError(
                    f"{path}:1: the header cannot be read as a table's columns "
                    f"({len(missing)} missing once parsed, e.g. {missing[0][:80]!r}; an unclosed quote?)"
                )
            values = frame[features].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
            meta = frame[wanted].astype(object)
            meta = meta.where(meta.notna(), None)
            for i, row in enumerate(meta.itertuples(index=False)):
                line += 1
                record = dict(zip(wanted, row, strict=True))
                yield self._well(path, line, record, values[i], features, layout)

    def _well(
        self,
        path: Path,
        line: int,
        record: dict[str, Any],
        vector: np.ndarray,
        features: list[str],
        layout: dict[str, Any],
    ) -> Reject | tuple[tuple[Perturbation | None, float | None, float | None], Well, dict[str, Any]]:
        roles: dict[str, str | None] = layout["roles"]

        def get(role: str) -> str:
            column = roles[role]
            return text(record.get(column)) if column else ""

        plate, well = get("plate"), get("well")
        raw = f"{plate} {well}"
        if not well:
            return Reject(path.name, line, roles["well"] or "", "empty well", raw)
        finite = np.isfinite(vector)
        if not finite.any() or (self.opts["level"] == "well" and not finite.all()):
            bad = features[int(np.argmax(~finite))]
            return Reject(path.name, line, bad, "missing or non-numeric feature value", raw)
        parsed: dict[str, float | None] = {}
        for role in ("dose", "time"):
            try:
                parsed[role] = number(get(role))
            except ValueError:
                return Reject(path.name, line, roles[role] or "", f"{role} is not a number: {get(role)!r}", raw)
        control = any(text(record.get(c)).lower() in CONTROL_TYPES for c in layout["controls"])
        perturbation: Perturbation | None = None
        if not control:
            found = self._perturbation(get)
            if isinstance(found, tuple):
                field, message = found
                return Reject(path.name, line, roles[field] or field, message, raw)
            perturbation = found
        return (
            (perturbation, parsed["dose"], parsed["time"]),
            Well(path.name, line, plate, well, vector),
            {"source": get("source")},
        )

    def _perturbation(self, get: Any) -> Perturbation | tuple[str, str]:
        """The well's perturbation, or (role, why not) when it names none that is in the graph."""
        inchikey, block, broad, gene = get("inchikey"), get("inchikey14"), get("broad"), get("gene")
        if inchikey and not INCHIKEY.match(inchikey):
            return "inchikey", f"not an InChIKey: {inchikey!r}"
        if inchikey in self.molecules:
            return Perturbation("Molecule", inchikey, "compound", "inchikey")
        short = broad_compound(broad)
        if short and len(self.broad.get(short, ())) == 1:
            return Perturbation("Molecule", self.broad[short][0], "compound", "broad_id")
        first = block or inchikey[:14]
        if first:
            candidates = self.blocks.get(first, [])
            if len(candidates) == 1:
                return Perturbation("Molecule", candidates[0], "compound", "inchikey_first_block")
            tried = ", ".join(x for x in (inchikey, short or "") if x)
            why = f"{len(candidates)} Molecules share it" if candidates else "no Molecule has it"
            return (
                "inchikey" if inchikey else "inchikey14",
                f"unknown compound ({tried + '; ' if tried else ''}InChIKey first block {first}: {why}; "
                "ingest its molecule first)",
            )
        if short or broad:
            shared = len(self.broad.get(short, ())) if short else 0
            why = f"{shared} Molecules share that Broad id" if shared else "no Molecule has that Broad id"
            return "broad", f"unknown compound {broad!r} ({why}; ingest its molecule first)"
        if gene:
            if not GENE_SYMBOL.match(gene):
                return "gene", f"not a gene symbol: {gene!r}"
            return Perturbation("Gene", gene_id(gene), str(self.opts["perturbation_type"]))
        return "inchikey", "no perturbation and not a control"

    def _profile(
        self,
        dataset: str,
        version: str,
        key: tuple[Perturbation | None, float | None, float | None],
        wells: list[Well],
        source: str | None,
    ) -> Iterator[Record]:
        perturbation, dose, time = key
        missing = 0
        if self.opts["level"] == "well":
            well = wells[0]
            profile = f"{dataset}:{f'{source}:' if source else ''}{well.plate}:{well.well}"
            vector = well.vector
        else:
            parts = [dataset, perturbation.id if perturbation else "control"]
            parts += [f"dose={dose:g}"] if dose is not None else []
            parts += [f"time={time:g}"] if time is not None else []
            profile = ":".join(parts)
            stacked = np.stack([w.vector for w in wells])
            vector = np.nanmedian(stacked, axis=0)
            missing = int((~np.isfinite(stacked)).sum())
        yield Node(
            "MorphologyProfile",
            profile,
            clean_props(
                {
                    "dataset": f"{dataset}@{version}",
                    "feature_space": self.feature_space(dataset),
                    "profile_source": str(self.opts["source_name"]),
                    "level": self.opts["level"],
                    "replicates": len(wells),
                    "missing_values": missing or None,
                    "plate": (wells[0].plate or None) if len(wells) == 1 else None,
                    "plates": sorted({w.plate for w in wells if w.plate}) or None,
                    "well": wells[0].well if len(wells) == 1 else None,
                    "control": perturbation is None,
                    "perturbation": perturbation.id if perturbation else "control",
                    "dose": dose,
                    "time": time,
                    "features": vector.tolist(),
                }
            ),
        )
        if perturbation is None:
            return
        if perturbation.label == "Gene":
            yield Node("Gene", perturbation.id)
        yield Edge(
            "PERTURBS",
            perturbation.label,
            perturbation.id,
            "MorphologyProfile",
            profile,
            clean_props(
                {
                    "type": perturbation.type,
                    "dose": dose,
                    "time": time,
                    "matched_by": perturbation.matched_by,
                    "replicates": len(wells),
                    "dataset": f"{dataset}@{version}",
                }
            ),
        )
