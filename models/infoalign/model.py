"""InfoAlign's network (methods/infoalign.md §3–4): a GIN with a virtual node over the molecular
graph (OGB's `gin-virtual`: residual layers, BatchNorm, dropout, sum readout), a Gaussian head
whose mean μ is the representation, and one decoder per feature space the walks reach."""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

with warnings.catch_warnings():  # PyG's import-time torch.jit deprecation notices
    warnings.simplefilter("ignore", FutureWarning)
    from torch_geometric.nn import GINEConv, global_add_pool

from kgctl.models.probing.molgraph import ATOM_DIMS, BOND_DIMS, FeatureSum


def _mlp(inside: int, hidden: int, out: int, last_norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(inside, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out)]
    if last_norm:
        layers += [nn.BatchNorm1d(out), nn.ReLU()]
    return nn.Sequential(*layers)


class GINVirtual(nn.Module):
    """`layers` GINE convolutions (message ReLU(h_j + bond), update MLP((1 + ε)·h_i + Σ)), each
    followed by BatchNorm, ReLU (not after the last), dropout and a residual add; a virtual node
    added to every atom before each layer and updated between layers; sum pooling."""

    def __init__(self, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.layers, self.dropout = layers, dropout
        self.atoms = FeatureSum(ATOM_DIMS, hidden)
        self.bonds = nn.ModuleList(FeatureSum(BOND_DIMS, hidden) for _ in range(layers))
        self.convs = nn.ModuleList(
            GINEConv(_mlp(hidden, 2 * hidden, hidden, False), train_eps=True) for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers))
        self.virtual = nn.Embedding(1, hidden)
        nn.init.zeros_(self.virtual.weight)
        self.virtual_mlps = nn.ModuleList(_mlp(hidden, 2 * hidden, hidden, True) for _ in range(layers - 1))

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor, size: int) -> Tensor:
        v = self.virtual.weight.expand(size, -1)
        h = self.atoms(x)
        for layer in range(self.layers):
            h_in = h + v[batch]
            out = self.norms[layer](self.convs[layer](h_in, edge_index, self.bonds[layer](edge_attr)))
            if layer < self.layers - 1:
                out = F.relu(out)
            h = F.dropout(out, self.dropout, self.training) + h_in
            if layer < self.layers - 1:
                pooled = global_add_pool(h_in, batch, size) + v
                v = v + F.dropout(self.virtual_mlps[layer](pooled), self.dropout, self.training)
        pooled_graph: Tensor = global_add_pool(h, batch, size)
        return pooled_graph


class Decoder(nn.Sequential):
    """Linear(h → 4h) → BatchNorm → GELU → Dropout → Linear(4h → width): logits of one space."""

    def __init__(self, hidden: int, width: int, dropout: float) -> None:
        super().__init__(
            nn.Linear(hidden, 4 * hidden),
            nn.BatchNorm1d(4 * hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(4 * hidden, width),
        )


class InfoAlignNet(nn.Module):
    """Encoder + Gaussian head q(z | x) = N(μ, σ²) + decoders on μ. `forward` returns (μ, σ, the
    decoders' logits by space); `encode` only μ, the representation used downstream."""

    def __init__(self, hidden: int, layers: int, dropout: float, decoders: dict[str, int]) -> None:
        super().__init__()
        self.hidden = hidden
        self.encoder = GINVirtual(hidden, layers, dropout)
        self.head = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 2 * hidden))
        self.decoders = nn.ModuleDict({k: Decoder(hidden, w, dropout) for k, w in decoders.items()})
        for module in self.modules():  # the method's init: PyTorch defaults, Linear biases zero
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def encode(
        self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor, size: int
    ) -> tuple[Tensor, Tensor]:
        mu, rho = self.head(self.encoder(x, edge_index, edge_attr, batch, size)).chunk(2, dim=-1)
        return mu, F.softplus(rho) + 1e-7

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, batch: Tensor, size: int
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        mu, sigma = self.encode(x, edge_index, edge_attr, batch, size)
        return mu, sigma, {k: decoder(mu) for k, decoder in self.decoders.items()}


def kl_to_standard_normal(mu: Tensor, sigma: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """KL(q ‖ N(0, I)) estimated with one reparameterised sample: batch mean of log q − log p
    (the constant terms cancel)."""
    noise = torch.randn(mu.shape, device=mu.device, dtype=mu.dtype, generator=generator)
    z = mu + sigma * noise
    log_q = (-0.5 * noise.pow(2) - sigma.log()).sum(-1)
    log_p = (-0.5 * z.pow(2)).sum(-1)
    return (log_q - log_p).mean()
