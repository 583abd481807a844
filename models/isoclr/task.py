"""IsoCLR's training problem for the shared trainer: every epoch one positive pair per gene
(two different isoforms, or with `ortholog_prob` a transcript of an orthologous gene), batches
of similar lengths so that they are not mostly padding, both views masked, and the decoupled
contrastive loss weighted by the size of the pair's homology group."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from kgctl.core.errors import KgctlError
from kgctl.models.base import Task
from kgctl.models.isoclr.config import IsoCLRConfig
from kgctl.models.isoclr.data import Inputs
from kgctl.models.isoclr.model import IsoCLRNet, dcl_loss
from kgctl.models.trainer import epoch_seed, shard

Batch = tuple[Tensor, Tensor, Tensor, Tensor, Tensor]


class PairSampler:
    """Positive pairs from genes and orthologs; a transcript is never paired with itself, so a
    gene with one transcript and no ortholog gives no pair (its transcript is still embedded)."""

    def __init__(self, inputs: Inputs, max_length: int, ortholog_prob: float, weight_c: float) -> None:
        eligible = np.flatnonzero(inputs.lengths <= max_length)
        n_genes = len(inputs.genes)
        self.members: list[np.ndarray] = [np.zeros(0, np.int64)] * n_genes
        order = eligible[np.argsort(inputs.gene_of[eligible], kind="stable")]
        genes, starts = np.unique(inputs.gene_of[order], return_index=True)
        for g, part in zip(genes, np.split(order, starts[1:]), strict=True):
            self.members[int(g)] = part
        linked: list[set[int]] = [set() for _ in range(n_genes)]
        for a, b in inputs.orthologs.tolist():
            if a != b and len(self.members[a]) and len(self.members[b]):
                linked[a].add(b)
                linked[b].add(a)
        self.partners = [np.array(sorted(s), dtype=np.int64) for s in linked]
        self.units = np.array(
            [
                g
                for g in range(n_genes)
                if len(self.members[g]) >= 2 or (len(self.members[g]) and len(self.partners[g]))
            ],
            dtype=np.int64,
        )
        group = inputs.homology()
        size = np.bincount(group[inputs.gene_of[eligible]], minlength=int(group.max(initial=0)) + 1)
        raw = np.log(size[group[self.units]] + weight_c) if weight_c >= 0 else np.ones(len(self.units))
        self.weights = (raw / raw.mean() if len(raw) and raw.mean() > 0 else raw).astype(np.float32)
        self.ortholog_prob = ortholog_prob
        self.left_out = {
            "too_long": int(inputs.n - len(eligible)),
            "genes_without_pair": int(sum(1 for m in self.members if len(m)) - len(self.units)),
        }

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(anchors, partners, weights), one pair per unit gene in a random order."""
        order = rng.permutation(len(self.units))
        anchors = np.empty(len(order), dtype=np.int64)
        partners = np.empty(len(order), dtype=np.int64)
        for row, u in enumerate(order):
            g = int(self.units[u])
            members, others = self.members[g], self.partners[g]
            if len(others) and (len(members) < 2 or rng.random() < self.ortholog_prob):
                anchors[row] = rng.choice(members)
                partners[row] = rng.choice(self.members[int(rng.choice(others))])
            else:
                anchors[row], partners[row] = rng.choice(members, 2, replace=False)
        return anchors, partners, self.weights[order]


def padded(inputs: Inputs, rows: np.ndarray, tracks: int) -> tuple[Tensor, Tensor]:
    """uint8 [B, max length, tracks] zero-padded, and the lengths."""
    lengths = inputs.lengths[rows]
    out = np.zeros((len(rows), int(lengths.max(initial=1)), tracks), dtype=np.uint8)
    for i, r in enumerate(rows):
        out[i, : lengths[i]] = inputs.track(int(r))[:, :tracks]
    return torch.from_numpy(out), torch.from_numpy(lengths.astype(np.int64))


def mask_positions(x: Tensor, lengths: Tensor, share: float) -> Tensor:
    """Zero `share` of each sequence's true positions in every track (a fresh draw per call)."""
    if share <= 0:
        return x
    keep = torch.rand(x.shape[:2], device=x.device) >= share
    inside = torch.arange(x.shape[1], device=x.device)[None, :] < lengths[:, None]
    return x * (keep | ~inside)[:, :, None].to(x.dtype)


def module_args(config: IsoCLRConfig) -> dict[str, Any]:
    return {
        "tracks": config.tracks,
        "size": config.encoder,
        "kernel": config.kernel,
        "dropout": config.dropout,
        "pooling": config.pooling,
        "widths": config.widths(),
    }


class IsoCLRTask(Task):
    config: IsoCLRConfig

    def __init__(self, config: IsoCLRConfig, inputs: Inputs) -> None:
        super().__init__("isoclr", config, module_args(config))
        self.inputs = inputs
        self.sampler = PairSampler(inputs, config.max_length, config.ortholog_prob, config.weight_c)
        if len(self.sampler.units) < 2:
            raise KgctlError(
                f"IsoCLR needs at least two genes with a positive pair (two transcripts "
                f"or an ortholog); these inputs have {len(self.sampler.units)}"
            )
        self.device = torch.device("cpu")

    def build_module(self) -> nn.Module:
        return IsoCLRNet(**self.module_args)

    def to(self, device: torch.device) -> None:
        self.device = device

    def batches(self, epoch: int, rank: int, world: int) -> Iterator[Batch]:
        rng = np.random.default_rng(epoch_seed(self.config.seed, epoch))
        anchors, partners, weights = self.sampler.draw(rng)
        size = min(self.config.batch_size, len(anchors))
        # length buckets: sort by length (ties in random order), cut into batches, shuffle them
        order = np.lexsort((rng.random(len(anchors)), self.inputs.lengths[anchors]))
        cuts = [order[i : i + size] for i in range(0, len(order), size)]
        cuts = [c for c in cuts if len(c) >= max(2, size // 2)]  # no tiny last batch
        for b in rng.permutation(len(cuts)):
            mine = shard(torch.from_numpy(cuts[b]), rank, world).numpy()
            if len(mine) < 2:
                continue
            x1, l1 = padded(self.inputs, anchors[mine], self.config.tracks)
            x2, l2 = padded(self.inputs, partners[mine], self.config.tracks)
            dev = self.device
            yield (x1.to(dev), l1.to(dev), x2.to(dev), l2.to(dev), torch.from_numpy(weights[mine]).to(dev))

    def loss(self, module: nn.Module, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        x1, l1, x2, l2, w = batch
        share = self.config.mask
        z1 = module(mask_positions(x1, l1, share), l1, True)
        z2 = module(mask_positions(x2, l2, share), l2, True)
        loss, accuracy = dcl_loss(z1, z2, w, self.config.temperature)
        return loss, {"accuracy": accuracy}

    def fingerprint(self) -> str:
        return self.inputs.sha256()

    def warnings(self, epochs: list[dict[str, Any]]) -> list[str]:
        out = []
        if len(self.sampler.units) < self.config.batch_size:
            out.append(
                f"only {len(self.sampler.units)} genes have a positive pair: each batch holds "
                f"fewer negatives than batch_size {self.config.batch_size}"
            )
        if epochs and epochs[-1].get("accuracy", 0) >= 0.999:
            out.append(
                "in-batch accuracy reached 1.0: the pairs may be too easy to tell apart "
                "(raise mask, or check that isoforms are not identical)"
            )
        return out
