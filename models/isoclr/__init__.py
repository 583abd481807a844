"""IsoCLR (methods/isoclr.md): a transcript encoder learned contrastively from splice isoforms
and orthologs of one gene, read from the `transcripts` view (or a sequence corpus file), probed
on RNA stability and translation. Registered as `isoclr`: `kgctl train isoclr` and the rest of
the model platform come from this declaration."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa
import torch
from torch import nn

from kgctl.core.errors import KgctlError
from kgctl.core.options import Option
from kgctl.graph.connection import Connection
from kgctl.models.base import Model, Prediction, Writes
from kgctl.models.isoclr import rna  # noqa: F401  (registers the rna label sets, baselines and isoforms task)
from kgctl.models.isoclr.config import IsoCLRConfig
from kgctl.models.isoclr.data import Inputs, collect_inputs
from kgctl.models.isoclr.model import IsoCLRNet
from kgctl.models.isoclr.probe import embed, from_scratch
from kgctl.models.isoclr.task import IsoCLRTask, module_args
from kgctl.models.neighbours import cosine_rows, top_k
from kgctl.models.probing.heads import Split
from kgctl.models.probing.labels import Labelled
from kgctl.models.registry import register
from kgctl.models.runs import Run
from kgctl.models.trainer import run_module

__all__ = ["IsoCLR", "IsoCLRConfig"]


@register
class IsoCLR(Model):
    name = "isoclr"
    description = "IsoCLR: an RNA encoder contrasting splice isoforms and orthologs (dilated 1-D CNN)."
    config_class = IsoCLRConfig
    view = "transcripts"
    writes = Writes("SIMILAR_TO", "Transcript", "Transcript", embedding_label="Transcript")
    evaluators = ("retrieval", "probe")
    item_kind = "rna"
    predict_options: ClassVar[tuple[Option, ...]] = (
        Option("top-k", "Most similar transcripts kept per transcript.", int, 5),
    )
    test_config = {"encoder": "tiny", "projection": "16,16,8", "epochs": 2, "batch_size": 8, "checkpoint_every": 1}
    config: IsoCLRConfig

    def build_inputs(self, conn: Connection, views: Path) -> Inputs:
        return collect_inputs(conn, self.config, views)

    def load_inputs(self, path: Path) -> Inputs:
        return Inputs.load(path)

    def task(self, inputs: Inputs) -> IsoCLRTask:
        return IsoCLRTask(self.config, inputs)

    def describe(self, inputs: Inputs, task: IsoCLRTask) -> dict[str, Any]:
        sampler = task.sampler
        return {
            **inputs.meta,
            "view_fingerprint": inputs.meta.get("fingerprint"),
            "genes": len(inputs.genes),
            "ortholog_pairs": int(len(inputs.orthologs)),
            "nucleotides": int(inputs.lengths.sum()),
            "positive_genes": int(len(sampler.units)),
            "genes_with_orthologs": int(sum(1 for p in sampler.partners if len(p))),
            "left_out": sampler.left_out,
            "inputs_sha256": inputs.sha256(),
        }

    def build_module(self, **module_args: Any) -> nn.Module:
        return IsoCLRNet(**module_args)

    def embed(self, run: Run, inputs: Inputs, device: str = "cpu", *, untrained: bool = False) -> np.ndarray:
        """Mean-pooled embeddings of every transcript of the run's view (frozen encoder, eval mode)."""
        return self.encode(run, inputs, device, untrained=untrained)

    def encode(self, run: Run, items: Inputs, device: str = "cpu", *, untrained: bool = False) -> np.ndarray:
        """Mean-pooled embeddings of packed transcripts (frozen encoder, eval mode)."""
        module = run_module(run.dir, IsoCLRNet, self.config.seed, device, untrained=untrained)
        return embed(module, items, device=device, tracks=self.config.tracks)

    def from_scratch(self, run: Run, data: Labelled, split: Split, seed: int, steps: int, device: str) -> np.ndarray:
        return from_scratch(data, module_args(self.config), split, seed, steps, device)

    def probe_facts(self, inputs: Inputs, data: Labelled) -> dict[str, Any]:
        return {"pretrained_on": inputs.meta.get("corpus", "graph")}

    def predict(self, run: Run, inputs: Inputs, module: nn.Module, options: dict[str, Any], device: str) -> Prediction:
        """Embeddings of every transcript, and each one's most similar transcripts (cosine),
        flagged as an isoform of the same gene or a homologous transcript."""
        k = int(options.get("top_k", 5))
        if k < 1:
            raise KgctlError("--top-k must be at least 1")
        vectors = embed(module, inputs, device=device, tracks=self.config.tracks)
        homology = inputs.homology()[inputs.gene_of]
        top = top_k(cosine_rows(torch.from_numpy(vectors)), inputs.n, k)
        k = top.partner.shape[1]
        a = np.repeat(np.arange(inputs.n), k)
        b = top.partner.reshape(-1)
        same_gene = inputs.gene_of[a] == inputs.gene_of[b]
        edges = pa.table(
            {
                "start": inputs.ids[a].tolist(),
                "end": inputs.ids[b].tolist(),
                "score": np.round(top.raw.reshape(-1), 6),
                "rank": np.tile(np.arange(1, k + 1, dtype=np.int64), inputs.n),
                "same_gene": same_gene,
                "homologous": homology[a] == homology[b],
            }
        )
        same = float(same_gene.mean()) if len(a) else 0.0
        facts = {
            "transcripts": inputs.n,
            "edges": len(a),
            "top_k": k,
            "share_same_gene": round(same, 4),
            "embedding_dim": int(vectors.shape[1]),
        }
        return Prediction(edges=edges, embedding_ids=inputs.ids.tolist(), embeddings=vectors, facts=facts)
