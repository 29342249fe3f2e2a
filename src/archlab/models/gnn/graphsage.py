"""GraphSAGE.

Hamilton, Ying & Leskovec, *Inductive Representation Learning on Large Graphs*, NeurIPS 2017
(arXiv:1706.02216): Algorithm 1 (CONCAT(h_v, AGG) · W, written here as W_l · AGG + W_r · h_v), the
mean aggregator (§3.3) and the pooling aggregator (Eq. 3), K = 2 layers. Full neighbourhoods (no
sampling: the graphs here fit in memory).

Letters: N nodes, F features, D hidden width, C classes, N(v) the in-neighbours of v, σ = ReLU.

Equations:
    mean:  a_v = mean_{u ∈ N(v)} h_u                                    §3.3
    max:   a_v = max_{u ∈ N(v)} σ(W_pool h_u + b_pool)                  Eq. 3 (elementwise max)
    h_v'   = W_l a_v + b + W_r h_v                                      Alg. 1 line 5 (CONCAT · W)
    h_v'   = h_v' / ‖h_v'‖₂   (normalize=true)                          Alg. 1 line 7
    σ and dropout between layers; graph level: h_G = READOUT({h_v}), y = W_o h_G + b_o

Parameter arithmetic (F = 1,433, D = 256, C = 7, mean): layer 1 W_l 1,433·256 + b 256 + W_r 1,433·256
= 733,952; layer 2 W_l 256·7 + b 7 + W_r 256·7 = 3,591: 737,543. The pooling aggregator adds
W_pool, b_pool per layer: F·F + F + D·D + D = 2,120,714 more (2,858,257).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from archlab.layers.message_passing import Aggregation, SAGEConv
from archlab.models.gnn.base import GRAPH_TASKS, GraphConfig, GraphNetwork
from archlab.registry import register_model
from archlab.registry.config import PositiveInt


@dataclass
class GraphSAGEConfig(GraphConfig):
    """GraphSAGE options: K = 2 layers, mean or pooling ("max") aggregator."""

    hidden: PositiveInt = 256  # D
    aggr: Aggregation = "mean"  # mean, max (the pooling aggregator, Eq. 3) or sum
    normalize: bool = False  # ℓ2-normalise every layer's output (Alg. 1 line 7; off as in PyG's default)


class GraphSAGE(GraphNetwork):
    """Hamilton et al.'s GraphSAGE with full neighbourhoods: L :class:`~archlab.layers.message_passing.SAGEConv`
    layers. Shapes: x (N, F), edge_index (2, E), batch (N,) → (N, C) or (G, C)."""

    config: GraphSAGEConfig

    def make_conv(self, i: int, in_dim: int, out_dim: int, last: bool) -> tuple[nn.Module, int]:
        c = self.config
        return SAGEConv(in_dim, out_dim, aggr=c.aggr, normalize=c.normalize and not last), out_dim


_PAPER = "Hamilton, Ying & Leskovec, Inductive Representation Learning on Large Graphs (NeurIPS 2017)"


@register_model(
    family="gnn",
    config=GraphSAGEConfig,
    paper=_PAPER,
    tasks=GRAPH_TASKS,
    meta={"num_params": 737_543, "macs": 737_280},
    test_overrides={"in_shape": (6,), "hidden": 8},
)
def graphsage(**overrides) -> GraphSAGE:
    """GraphSAGE-mean, two layers of 256."""
    return GraphSAGE(GraphSAGEConfig(**overrides))


@register_model(
    family="gnn",
    config=GraphSAGEConfig,
    paper=_PAPER,
    tasks=GRAPH_TASKS,
    defaults={"aggr": "max"},
    meta={"num_params": 2_858_257, "macs": 2_856_305},
    test_overrides={"in_shape": (6,), "hidden": 8},
)
def graphsage_max(**overrides) -> GraphSAGE:
    """GraphSAGE-pool: the max-pooling aggregator (Eq. 3)."""
    return GraphSAGE(GraphSAGEConfig(**overrides))
