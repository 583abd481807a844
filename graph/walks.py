"""Random walks on a CSR graph in pure PyTorch (torch_cluster has no PyPI wheels): one step moves
every walker at once, on the CPU or on CUDA, deterministic for a seed.

Uniform or edge-weighted first-order walks, several walks per start node, a restart probability,
node-type filters, and InfoAlign's path weights (`../shared/docs/methods/infoalign.md` §2).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor

DEAD_END = -1  # edge id reported when a walker has no neighbour and stays put
RESTART = -2  # edge id reported when a walker jumps back to its start node


@dataclass(frozen=True)
class CSRGraph:
    """Out-neighbours of node u are `col[rowptr[u]:rowptr[u+1]]`; `edge_id` maps CSR positions
    back to the caller's edge order, `weight` is per CSR position, `node_type` per node."""

    rowptr: Tensor  # int64 [N + 1]
    col: Tensor  # int64 [E]
    edge_id: Tensor  # int64 [E]
    weight: Tensor  # float32 [E]
    node_type: Tensor | None = None  # int64 [N]
    _tables: dict[bool, WalkTable] = field(default_factory=dict, compare=False, repr=False)

    def walk_table(self, weighted: bool) -> WalkTable:
        """The walker's table for this graph, built once per kind."""
        if weighted not in self._tables:
            self._tables[weighted] = walk_table(self, weighted)
        return self._tables[weighted]

    @property
    def num_nodes(self) -> int:
        return self.rowptr.numel() - 1

    @property
    def num_edges(self) -> int:
        return self.col.numel()

    @property
    def device(self) -> torch.device:
        return self.col.device

    @classmethod
    def from_edge_index(
        cls,
        edge_index: Tensor,
        num_nodes: int,
        weight: Tensor | None = None,
        node_type: Tensor | None = None,
        *,
        undirected: bool = False,
    ) -> CSRGraph:
        """From a [2, E] edge list (PyG's layout). `undirected` adds every edge's reverse with the
        same weight and edge id, as InfoAlign's networkx → PyG conversion does."""
        src, dst = edge_index[0].long(), edge_index[1].long()
        ids = torch.arange(src.numel(), device=src.device)
        w = weight.float() if weight is not None else torch.ones(src.numel(), device=src.device, dtype=torch.float32)
        if src.numel() and (int(src.min()) < 0 or int(max(src.max(), dst.max())) >= num_nodes):
            raise ValueError(f"edge_index refers to nodes outside 0..{num_nodes - 1}")
        if w.numel() and (bool((w < 0).any()) or not bool(torch.isfinite(w).all())):
            raise ValueError("edge weights must be finite and non-negative")
        if undirected:
            src, dst = torch.cat([src, dst]), torch.cat([dst, src])
            ids, w = torch.cat([ids, ids]), torch.cat([w, w])
        order = torch.argsort(src * num_nodes + dst, stable=True)  # rows, then neighbours sorted
        src, dst, ids, w = src[order], dst[order], ids[order], w[order]
        counts = torch.bincount(src, minlength=num_nodes)
        rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=src.device)
        rowptr[1:] = torch.cumsum(counts, 0)
        types = node_type.long() if node_type is not None else None
        return cls(rowptr, dst, ids, w, types)

    def to(self, device: torch.device | str) -> CSRGraph:
        nt = self.node_type.to(device) if self.node_type is not None else None
        return CSRGraph(
            self.rowptr.to(device), self.col.to(device), self.edge_id.to(device), self.weight.to(device), nt
        )

    def keep_types(self, types: Iterable[int]) -> CSRGraph:
        """The same graph without edges into nodes of other types (walkers never enter them)."""
        if self.node_type is None:
            raise ValueError("this graph has no node types")
        allowed = torch.zeros(int(self.node_type.max()) + 1, dtype=torch.bool, device=self.device)
        wanted = torch.tensor(sorted(set(types)), dtype=torch.long, device=self.device)
        allowed[wanted[wanted < allowed.numel()]] = True
        keep = allowed[self.node_type[self.col]]
        row = torch.repeat_interleave(torch.arange(self.num_nodes, device=self.device), self.rowptr.diff())
        counts = torch.bincount(row[keep], minlength=self.num_nodes)
        rowptr = torch.zeros_like(self.rowptr)
        rowptr[1:] = torch.cumsum(counts, 0)
        return CSRGraph(rowptr, self.col[keep], self.edge_id[keep], self.weight[keep], self.node_type)


@dataclass(frozen=True)
class Walks:
    """`nodes[w, t]` is walker w's node after t steps (t = 0 is its start); `edges[w, t]` is the
    caller's id of the edge taken at step t + 1, or DEAD_END / RESTART. Both are int32 (int64
    for graphs with 2³¹ entries or more), and transposed views of step-major storage: call
    `.contiguous()` for walker-major memory."""

    nodes: Tensor  # [W, L + 1]
    edges: Tensor  # [W, L]

    @property
    def steps(self) -> int:
        return self.edges.numel()


@dataclass(frozen=True)
class WalkTable:
    """The CSR the walker steps on: every node without a way out (no neighbours, or zero total
    weight when weighted) gets one self-loop with edge id DEAD_END, so a step is gathers and
    arithmetic with no branches."""

    start: Tensor  # [N]: first entry of each node (int32, or int64 for huge graphs)
    degree: Tensor  # [N] (>= 1)
    col: Tensor  # [E']
    edge_id: Tensor  # [E']
    cumulative: Tensor | None  # float64 [E']: running weight sum (weighted walks only)


def walk_table(graph: CSRGraph, weighted: bool) -> WalkTable:
    device, n = graph.device, graph.num_nodes
    degree = graph.rowptr.diff()
    row = torch.repeat_interleave(torch.arange(n, device=device), degree)
    weight = graph.weight.double()
    if weighted:
        total = torch.zeros(n, dtype=torch.float64, device=device).index_add_(0, row, weight)
        dead = total <= 0
    else:
        dead = degree == 0
    lonely = torch.nonzero(dead).flatten()
    rows = torch.cat([row, lonely])
    order = torch.argsort(rows, stable=True)  # each node's entries stay together, in CSR order
    col = torch.cat([graph.col, lonely])[order]
    edge_id = torch.cat([graph.edge_id, torch.full_like(lonely, DEAD_END)])[order]
    degree = degree + dead.long()
    start = torch.cumsum(degree, 0) - degree
    cumulative = None
    if weighted:
        w = torch.cat([weight, torch.ones(lonely.numel(), dtype=torch.float64, device=device)])[order]
        w = torch.where(dead[rows[order]], torch.where(edge_id == DEAD_END, 1.0, 0.0), w)
        cumulative = torch.cumsum(w, 0)  # float64: exact enough over 1e9 edges
    # int32 indices halve the memory traffic of every step (int64 only for graphs that need it)
    index = torch.int32 if max(n, col.numel()) < 2**31 - 1 else torch.long
    return WalkTable(start.to(index), degree.to(index), col.to(index), edge_id.to(index), cumulative)


def random_walks(
    graph: CSRGraph,
    start: Tensor,
    length: int,
    *,
    walks_per_node: int = 1,
    weighted: bool = False,
    restart: float = 0.0,
    seed: int | None = None,
    generator: torch.Generator | None = None,
) -> Walks:
    """`walks_per_node` walks of `length` steps from each node in `start`, all walkers moving
    together. Uniform: each neighbour with equal probability (torch_cluster's p = q = 1);
    `weighted`: proportional to edge weight. With probability `restart` a walker jumps back to its
    start instead of moving. A walker at a node without neighbours (or with zero total weight)
    stays put. Same seed, same device: same walks."""
    if length < 0:
        raise ValueError("length must be >= 0")
    if not 0.0 <= restart <= 1.0:
        raise ValueError("restart must be a probability")
    device = graph.device
    if generator is None:
        generator = torch.Generator(device=device)
        generator.manual_seed(0 if seed is None else seed)
    start = start.to(device=device)
    if start.numel() and (int(start.min()) < 0 or int(start.max()) >= graph.num_nodes):
        raise ValueError(f"start nodes must be in 0..{graph.num_nodes - 1}")
    table = graph.walk_table(weighted)
    index = table.col.dtype
    first_of, degree_of, col, edge_id = table.start, table.degree, table.col, table.edge_id
    starts = start.to(index).repeat_interleave(walks_per_node)
    walkers = starts.numel()
    nodes = torch.empty((length + 1, walkers), dtype=index, device=device)  # step-major: each
    edges = torch.empty((length, walkers), dtype=index, device=device)  # step is contiguous
    nodes[0] = starts
    dtype = torch.float64 if weighted else torch.float32
    draws = torch.rand((length, walkers), generator=generator, device=device, dtype=dtype)
    backs = torch.rand((length, walkers), generator=generator, device=device) < restart if restart > 0 else None
    for t in range(length):
        current = nodes[t]
        # index_select, not advanced indexing: about 3x faster for a 1-D gather on the CPU
        first = torch.index_select(first_of, 0, current)
        degree = torch.index_select(degree_of, 0, current)
        if table.cumulative is not None:
            cumulative = table.cumulative
            low = torch.where(first > 0, cumulative[(first - 1).clamp_min(0)], 0.0)
            high = cumulative[first + degree - 1]
            position = torch.searchsorted(cumulative, low + draws[t] * (high - low), right=True)
            position = torch.minimum(torch.maximum(position, first), first + degree - 1).to(index)
        else:
            position = (draws[t] * degree).to(index)
            torch.minimum(position, degree - 1, out=position)  # float rounding at r → 1
            position += first
        torch.index_select(col, 0, position, out=nodes[t + 1])
        torch.index_select(edge_id, 0, position, out=edges[t])
        if backs is not None:
            nodes[t + 1] = torch.where(backs[t], starts, nodes[t + 1])
            edges[t] = torch.where(backs[t], RESTART, edges[t])
    return Walks(nodes.t(), edges.t())  # [W, L + 1] and [W, L] views, no copy


def path_weights(walks: Walks, edge_weight: Tensor) -> Tensor:
    """InfoAlign's path weights [W, L + 1]: w₀ = 1 and w_t = ∏_{k ≤ t} weight(e_k), where a dead
    end weighs 0 (so every later position is 0 too). A restart starts a new path at weight 1."""
    weight = edge_weight.to(walks.edges.device, torch.float32)
    taken = walks.edges.clamp_min(0).long()
    factors = torch.where(walks.edges >= 0, weight[taken] if weight.numel() else 0.0, 0.0)
    factors = torch.where(walks.edges == RESTART, torch.ones_like(factors), factors)
    out = torch.ones((walks.edges.shape[0], walks.edges.shape[1] + 1), device=weight.device)
    for t in range(walks.edges.shape[1]):
        restarted = walks.edges[:, t] == RESTART
        out[:, t + 1] = torch.where(restarted, 1.0, out[:, t] * factors[:, t])
    return out
