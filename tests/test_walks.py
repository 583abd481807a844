"""Random walks: only existing edges, weights respected (chi-square), reproducible by seed, dead
ends, restarts, node-type filters and InfoAlign path weights; the same on CUDA when there is one."""

from __future__ import annotations

import pytest
import torch
from scipy.stats import chisquare

from kgctl.graph.walks import DEAD_END, RESTART, CSRGraph, Walks, path_weights, random_walks

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def random_graph(n: int = 200, e: int = 1000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n, (2, e), generator=g)
    weight = torch.rand(e, generator=g) + 0.1
    return edge_index, weight


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("undirected", [False, True])
def test_walks_follow_existing_edges(device: str, weighted: bool, undirected: bool) -> None:
    edge_index, weight = random_graph()
    graph = CSRGraph.from_edge_index(edge_index, 200, weight, undirected=undirected).to(device)
    walks = random_walks(graph, torch.arange(200), 8, walks_per_node=3, weighted=weighted, seed=1)
    assert walks.nodes.shape == (600, 9) and walks.edges.shape == (600, 8)
    src, dst = walks.nodes[:, :-1].cpu(), walks.nodes[:, 1:].cpu()
    taken = walks.edges.cpu()
    moved = taken >= 0
    ends = edge_index[:, taken[moved]]
    forward = (ends[0] == src[moved]) & (ends[1] == dst[moved])
    backward = (ends[1] == src[moved]) & (ends[0] == dst[moved])
    assert bool((forward | (backward if undirected else False)).all())
    stuck = taken == DEAD_END
    assert bool((src[stuck] == dst[stuck]).all())
    assert moved.float().mean() > 0.5


@pytest.mark.parametrize("device", DEVICES)
def test_weighted_step_follows_the_weights(device: str) -> None:
    weights = torch.tensor([1.0, 2.0, 3.0, 4.0, 0.0])
    edge_index = torch.tensor([[0, 0, 0, 0, 0], [1, 2, 3, 4, 5]])
    graph = CSRGraph.from_edge_index(edge_index, 6, weights).to(device)
    n = 40_000
    walks = random_walks(graph, torch.zeros(n, dtype=torch.long), 1, weighted=True, seed=3)
    counts = torch.bincount(walks.nodes[:, 1].cpu(), minlength=6)
    assert int(counts[5]) == 0  # weight 0: never taken
    expected = (weights[:4] / weights.sum() * n).numpy()
    assert chisquare(counts[1:5].numpy(), expected).pvalue > 1e-3
    uniform = random_walks(graph, torch.zeros(n, dtype=torch.long), 1, seed=3)
    counts = torch.bincount(uniform.nodes[:, 1].cpu(), minlength=6)
    assert chisquare(counts[1:6].numpy(), [n / 5] * 5).pvalue > 1e-3
    # and the chi-square test does reject the wrong distribution
    skewed = [0.16 * n, 0.2 * n, 0.2 * n, 0.2 * n, 0.24 * n]
    assert chisquare(counts[1:6].numpy(), skewed).pvalue < 1e-6


def test_same_seed_same_walks_other_seed_other_walks() -> None:
    edge_index, weight = random_graph()
    graph = CSRGraph.from_edge_index(edge_index, 200, weight, undirected=True)
    a = random_walks(graph, torch.arange(200), 10, weighted=True, restart=0.1, seed=7)
    b = random_walks(graph, torch.arange(200), 10, weighted=True, restart=0.1, seed=7)
    c = random_walks(graph, torch.arange(200), 10, weighted=True, restart=0.1, seed=8)
    assert torch.equal(a.nodes, b.nodes) and torch.equal(a.edges, b.edges)
    assert not torch.equal(a.nodes, c.nodes)


def test_dead_end_stays_and_zeroes_the_path_weight() -> None:
    graph = CSRGraph.from_edge_index(torch.tensor([[0], [1]]), 3, torch.tensor([0.9]))
    walks = random_walks(graph, torch.tensor([0, 2]), 3)
    assert walks.nodes.tolist() == [[0, 1, 1, 1], [2, 2, 2, 2]]
    assert walks.edges.tolist() == [[0, DEAD_END, DEAD_END], [DEAD_END] * 3]
    weights = path_weights(walks, torch.tensor([0.9]))
    assert torch.allclose(weights, torch.tensor([[1, 0.9, 0, 0], [1, 0, 0, 0]]))


def test_path_weights_multiply_along_the_walk_and_restart_at_one() -> None:
    walks = Walks(nodes=torch.tensor([[0, 1, 2, 0, 1]]), edges=torch.tensor([[0, 1, RESTART, 0]]))
    weights = path_weights(walks, torch.tensor([0.8, 0.5]))
    assert torch.allclose(weights, torch.tensor([[1.0, 0.8, 0.4, 1.0, 0.8]]))


def test_restart_returns_to_the_start() -> None:
    graph = CSRGraph.from_edge_index(torch.tensor([[0, 1], [1, 2]]), 3)
    always = random_walks(graph, torch.tensor([0]), 4, restart=1.0)
    assert always.nodes.tolist() == [[0, 0, 0, 0, 0]] and always.edges.tolist() == [[RESTART] * 4]
    edge_index, _ = random_graph()
    graph = CSRGraph.from_edge_index(edge_index, 200, undirected=True)
    walks = random_walks(graph, torch.arange(200), 20, walks_per_node=5, restart=0.25, seed=2)
    share = (walks.edges == RESTART).float().mean().item()
    assert 0.22 < share < 0.28


def test_node_type_filter_keeps_walkers_out() -> None:
    edge_index, _ = random_graph()
    types = torch.arange(200) % 3
    graph = CSRGraph.from_edge_index(edge_index, 200, node_type=types, undirected=True)
    kept = graph.keep_types([0, 1])
    assert kept.num_edges < graph.num_edges
    walks = random_walks(kept, torch.arange(0, 200, 3), 10, walks_per_node=4, seed=5)
    assert not bool((types[walks.nodes[:, 1:]] == 2).any())
    assert bool((walks.edges >= 0).any())


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        CSRGraph.from_edge_index(torch.tensor([[0], [5]]), 3)
    with pytest.raises(ValueError, match="non-negative"):
        CSRGraph.from_edge_index(torch.tensor([[0], [1]]), 3, torch.tensor([-1.0]))
    graph = CSRGraph.from_edge_index(torch.tensor([[0], [1]]), 3)
    with pytest.raises(ValueError, match="start nodes"):
        random_walks(graph, torch.tensor([3]), 2)
