"""Graph workloads for the speed comparison with PyG: a Cora-sized synthetic graph, full-batch training.

The graph has Cora's sizes (Sen et al. 2008, as in Kipf & Welling 2017 Table 1): N = 2,708 nodes,
E = 10,556 directed edges (5,278 undirected pairs stored both ways, no self-loops, no duplicates),
F = 1,433 binary bag-of-words features at Cora's density (49,216 ones, 1.27 %, stored dense as PyG's
``Planetoid`` gives them), K = 7 classes, 140 training nodes (20 per class). Nothing can be learned
from it; it is for timing only.

Each model is timed in the plain PyTorch loop a PyG user writes (zero_grad, forward over the whole
graph, cross-entropy on the training nodes, backward, Adam step), with the same math on both sides:

* GCN, 2 layers, 16 hidden, dropout 0.5 on both layers' inputs, ReLU (PyG's ``examples/gcn.py``:
  ``GCNConv(..., cached=True)``, the normalised adjacency computed once);
* GAT, 2 layers, 8 heads × 8, ELU, dropout 0.6 on both layers' inputs and on the attention
  coefficients, one averaged output head (PyG's ``examples/gat.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archlab.registry.models import create_model

NODES, EDGES, FEATURES, CLASSES = 2708, 10556, 1433, 7
FEATURE_ONES = 49_216  # Cora's non-zero features
TRAIN_PER_CLASS = 20


@dataclass
class GraphProblem:
    x: Tensor  # (N, F) dense, binary
    edge_index: Tensor  # (2, E)
    y: Tensor  # (N,)
    train_mask: Tensor  # (N,) bool


def cora_sized_graph(seed: int = 0) -> GraphProblem:
    """The synthetic Cora-sized graph (see the module docstring), the same for a given ``seed``."""
    g = torch.Generator().manual_seed(seed)
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < EDGES // 2:
        u, v = torch.randint(0, NODES, (2, EDGES), generator=g).tolist()
        for a, b in zip(u, v, strict=True):
            if a != b and len(pairs) < EDGES // 2:
                pairs.add((min(a, b), max(a, b)))
    e = torch.tensor(sorted(pairs)).T
    edge_index = torch.cat([e, e.flip(0)], dim=1)
    x = torch.zeros(NODES * FEATURES)
    x[torch.randperm(NODES * FEATURES, generator=g)[:FEATURE_ONES]] = 1.0
    y = torch.randint(0, CLASSES, (NODES,), generator=g)
    train = torch.zeros(NODES, dtype=torch.bool)
    for c in range(CLASSES):
        train[(y == c).nonzero().flatten()[:TRAIN_PER_CLASS]] = True
    return GraphProblem(x.view(NODES, FEATURES), edge_index, y, train)


class PygGCN(nn.Module):
    """PyG's examples/gcn.py network."""

    def __init__(self, hidden: int = 16, p: float = 0.5):
        super().__init__()
        from torch_geometric.nn import GCNConv

        self.conv1 = GCNConv(FEATURES, hidden, cached=True)
        self.conv2 = GCNConv(hidden, CLASSES, cached=True)
        self.p = p

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = F.dropout(x, p=self.p, training=self.training)
        x = self.conv1(x, edge_index).relu()
        x = F.dropout(x, p=self.p, training=self.training)
        return self.conv2(x, edge_index)


class PygGAT(nn.Module):
    """PyG's examples/gat.py network."""

    def __init__(self, hidden: int = 8, heads: int = 8, p: float = 0.6):
        super().__init__()
        from torch_geometric.nn import GATConv

        self.conv1 = GATConv(FEATURES, hidden, heads, dropout=p)
        self.conv2 = GATConv(hidden * heads, CLASSES, heads=1, concat=False, dropout=p)
        self.p = p

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        x = F.dropout(x, p=self.p, training=self.training)
        x = F.elu(self.conv1(x, edge_index))
        x = F.dropout(x, p=self.p, training=self.training)
        return self.conv2(x, edge_index)


def build(name: str) -> nn.Module:
    """A model by workload name: ``pyg-gcn``, ``archlab-gcn``, ``pyg-gat``, ``archlab-gat``."""
    shape = {"in_shape": (FEATURES,), "num_classes": CLASSES}
    return {
        "pyg-gcn": lambda: PygGCN(),
        "archlab-gcn": lambda: create_model("gcn", **shape, hidden=16, dropout=0.5),
        "pyg-gat": lambda: PygGAT(),
        "archlab-gat": lambda: create_model("gat", **shape, hidden=8, heads=8, dropout=0.6, attention_dropout=0.6),
    }[name]()


WORKLOADS = ("pyg-gcn", "archlab-gcn", "pyg-gat", "archlab-gat")
PEER = {"archlab-gcn": "pyg-gcn", "archlab-gat": "pyg-gat"}


def full_batch_step(model: nn.Module, problem: GraphProblem, lr: float = 0.01) -> Callable[[], float]:
    """One full-batch training step as PyG's examples write it: zero_grad, forward over every node,
    cross-entropy on the training nodes, backward, Adam (weight decay 5e-4). Returns the loss."""
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=5e-4)
    x, ei, y, mask = problem.x, problem.edge_index, problem.y, problem.train_mask

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x, ei)[mask], y[mask])
        loss.backward()
        opt.step()
        return float(loss)

    return step
