"""A directed message-passing network (D-MPNN; Yang et al. 2019, the model behind Chemprop)
trained end to end on each probe's labels: the baseline a chemist would train on the molecules
alone. Our own implementation (Chemprop 2 from PyPI pulls Lightning and a CUDA featuriser pin),
with Chemprop's default shape: bond messages of width 300, depth 3, mean readout, one hidden
layer of 300 in the feed-forward head, 50 epochs, batches of 50, Adam 1e-3."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from kgctl.core.errors import KgctlError
from kgctl.models.probing.endtoend import EndToEnd, train_end_to_end
from kgctl.models.probing.heads import Split, validation_share
from kgctl.models.probing.labels import Labelled, PredictorBaseline, register_predictor
from kgctl.models.probing.molgraph import ATOM_DIMS, BOND_DIMS, FeatureSum, MolGraphs, featurise

if TYPE_CHECKING:
    from kgctl.models.probing.evaluate import ProbeOptions


class DMPNN(nn.Module):
    """Messages live on directed bonds: h⁰(v→w) = ReLU(W_i[x_v ‖ e_vw]); each step
    h(v→w) = ReLU(h⁰(v→w) + W_m Σ_{k→v, k≠w} h(k→v)); atoms read their incoming messages,
    h_v = ReLU(W_o[x_v ‖ Σ_{k→v} h(k→v)]), and a molecule is the mean of its atoms. The
    embedding sums are W·one-hot of the integer atom and bond features."""

    def __init__(self, tasks: int, hidden: int = 300, depth: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        self.depth = depth
        self.input_atoms, self.input_bonds = FeatureSum(ATOM_DIMS, hidden), FeatureSum(BOND_DIMS, hidden)
        self.message = nn.Linear(hidden, hidden, bias=False)
        self.output_atoms, self.output_messages = FeatureSum(ATOM_DIMS, hidden), nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.ffn = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), self.dropout, nn.Linear(hidden, tasks))

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor, size: int) -> Tensor:
        src, dst = edge_index
        reverse = torch.arange(len(src), device=src.device) ^ 1  # bonds come as (a→b, b→a) pairs
        h0 = torch.relu(self.input_atoms(x)[src] + self.input_bonds(edge_attr))
        h = h0
        for _ in range(self.depth - 1):
            incoming = torch.zeros(len(x), h.shape[1], device=h.device).index_add_(0, dst, h)
            h = self.dropout(torch.relu(h0 + self.message(incoming[src] - h[reverse])))
        incoming = torch.zeros(len(x), h.shape[1], device=h.device).index_add_(0, dst, h)
        atoms = self.dropout(torch.relu(self.output_atoms(x) + self.output_messages(incoming)))
        counts = torch.zeros(size, device=x.device).index_add_(0, batch, torch.ones(len(x), device=x.device))
        pooled = torch.zeros(size, atoms.shape[1], device=x.device).index_add_(0, batch, atoms)
        out: Tensor = self.ffn(pooled / counts.clamp_min(1).unsqueeze(1))
        return out


@functools.lru_cache(maxsize=2)
def molecule_graphs(smiles: tuple[str, ...]) -> MolGraphs:
    graphs, readable = featurise(smiles)
    if not readable.all():
        raise KgctlError(f"{int((~readable).sum())} molecules have no readable graph for the D-MPNN")
    return graphs


@register_predictor
class DirectedMPNN(PredictorBaseline):
    """The D-MPNN trained from random weights on the training rows, the epoch chosen on the
    validation rows (or a grouped share of training)."""

    name = "dmpnn"
    kind = "molecule"
    description = "D-MPNN (Chemprop's architecture, our implementation) trained end to end; epoch chosen on validation"
    settings = EndToEnd()

    def fit_predict(self, data: Labelled, split: Split, seed: int, options: ProbeOptions) -> np.ndarray:
        graphs = molecule_graphs(tuple(data.items))
        chosen = validation_share(split, data.groups, seed)
        torch.manual_seed(seed)
        net = DMPNN(data.labels.shape[1])
        predicted, self.chosen = train_end_to_end(net, graphs, data.labels, chosen, data.metric, seed, self.settings)
        return predicted
