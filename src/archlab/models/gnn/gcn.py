"""Graph convolutional network (GCN).

Kipf & Welling, *Semi-Supervised Classification with Graph Convolutional Networks*, ICLR 2017
(arXiv:1609.02907): the layer is Eq. 2 / 8, the two-layer node classifier Eq. 9, the Cora setting §5.2
(16 hidden units, dropout 0.5, ReLU).

Letters: N nodes, F features, D hidden width, K classes, A the adjacency matrix, Â = A + I,
D̂_vv = Σ_u Â_vu, σ = ReLU, X (N, F) the node features.

Equations:
    H^(l+1) = σ(D̂^{-1/2} Â D̂^{-1/2} H^(l) W^(l) + b^(l))          Eq. 2 (bias as in the authors' code)
    Z       = D̂^{-1/2} Â D̂^{-1/2} · σ(D̂^{-1/2} Â D̂^{-1/2} X W^(0)) W^(1)   Eq. 9 (softmax in the loss)
    node-wise: h_v' = Σ_{u ∈ N(v) ∪ {v}} (d̂_u d̂_v)^{-1/2} W h_u + b
    dropout on the input of each layer (§5.2); graph level: h_G = READOUT({h_v}), y = W_o h_G + b_o

Parameter arithmetic (Cora: F = 1,433, D = 16, K = 7): W^(0) 1,433·16 = 22,928 + b 16,
W^(1) 16·7 = 112 + b 7: 23,063.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from archlab.layers.message_passing import GCNConv
from archlab.models.gnn.base import GRAPH_TASKS, GraphConfig, GraphNetwork
from archlab.registry import register_model


@dataclass
class GCNConfig(GraphConfig):
    """GCN options; the defaults are the paper's Cora network (§5.2), the fields of :class:`GraphConfig`."""

    cached: bool = True  # keep the normalised adjacency while the same graph comes back (full-batch training)


class GCN(GraphNetwork):
    """Kipf & Welling's GCN: L :class:`~archlab.layers.message_passing.GCNConv` layers.
    Shapes: x (N, F), edge_index (2, E), batch (N,) → (N, K) or (G, K)."""

    config: GCNConfig

    def make_conv(self, i: int, in_dim: int, out_dim: int, last: bool) -> tuple[nn.Module, int]:
        return GCNConv(in_dim, out_dim, cached=self.config.cached), out_dim


_PAPER = "Kipf & Welling, Semi-Supervised Classification with Graph Convolutional Networks (ICLR 2017)"


@register_model(
    family="gnn",
    config=GCNConfig,
    paper=_PAPER,
    tasks=GRAPH_TASKS,
    meta={"num_params": 23_063, "macs": 23_040},
    test_overrides={"in_shape": (6,)},
)
def gcn(**overrides) -> GCN:
    """GCN, two layers, 16 hidden units, dropout 0.5 (the paper's Cora network)."""
    return GCN(GCNConfig(**overrides))
