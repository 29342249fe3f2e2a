"""Graph attention network (GAT).

Veličković, Cucurull, Casanova, Romero, Liò & Bengio, *Graph Attention Networks*, ICLR 2018
(arXiv:1710.10903): attention Eq. 1–3, multi-head Eq. 5–6, the transductive setting §3.3 (Cora:
K = 8 heads × F' = 8 features, ELU, one output head, dropout p = 0.6 on both layers' inputs and on
the normalised attention coefficients).

Letters: N nodes, F features, F' features per head, K heads, C classes, W^k (F', F) the head's
weights, a^k ∈ R^{2F'} its attention vector (here split a = [a_dst ‖ a_src]), ‖ concatenation.

Equations:
    e_vu^k = LeakyReLU_{0.2}(a^kᵀ [W^k h_v ‖ W^k h_u])                  Eq. 1, 3
    α_vu^k = softmax_{u ∈ N(v) ∪ {v}}(e_vu^k)                            Eq. 2
    h_v'   = ‖_{k=1..K} σ(Σ_u α_vu^k W^k h_u)                            Eq. 5 (hidden layers)
    h_v'   = σ((1/K) Σ_{k=1..K} Σ_u α_vu^k W^k h_u)                      Eq. 6 (output layer; σ = softmax in the loss)
    dropout p on each layer's input and on α (§3.3); σ = ELU between layers

Parameter arithmetic (Cora: F = 1,433, K = 8, F' = 8, C = 7, one output head): layer 1 W 1,433·64 =
91,712, a 2·64 = 128, bias 64; layer 2 W 64·7 = 448, a 2·7 = 14, bias 7: 92,373.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from archlab.layers.message_passing import GATConv
from archlab.models.gnn.base import GRAPH_TASKS, GraphConfig, GraphNetwork
from archlab.registry import register_model
from archlab.registry.config import PositiveInt, Probability


@dataclass
class GATConfig(GraphConfig):
    """GAT options; the defaults are the paper's Cora network (§3.3)."""

    hidden: PositiveInt = 8  # F': features per head
    heads: PositiveInt = 8  # K: attention heads of every hidden layer
    out_heads: PositiveInt = 1  # heads of the node-level output layer (averaged, Eq. 6; PubMed: 8)
    dropout: Probability = 0.6  # on every layer's input
    attention_dropout: Probability = 0.6  # on the normalised coefficients α
    activation: str = "elu"  # σ between layers
    negative_slope: float = 0.2  # LeakyReLU in the scores


class GAT(GraphNetwork):
    """Veličković et al.'s GAT: L :class:`~archlab.layers.message_passing.GATConv` layers, hidden ones
    concatenating their heads. Shapes: x (N, F), edge_index (2, E), batch (N,) → (N, C) or (G, C)."""

    config: GATConfig

    def make_conv(self, i: int, in_dim: int, out_dim: int, last: bool) -> tuple[nn.Module, int]:
        c = self.config
        heads = c.out_heads if last else c.heads
        conv = GATConv(
            in_dim,
            out_dim,
            heads=heads,
            concat=not last,
            negative_slope=c.negative_slope,
            dropout=c.attention_dropout,
        )
        return conv, out_dim if last else heads * out_dim


_PAPER = "Veličković et al., Graph Attention Networks (ICLR 2018)"


@register_model(
    family="gnn",
    config=GATConfig,
    paper=_PAPER,
    tasks=GRAPH_TASKS,
    meta={"num_params": 92_373, "macs": 92_160},
    test_overrides={"in_shape": (6,), "heads": 2, "hidden": 4},
)
def gat(**overrides) -> GAT:
    """GAT, 8 heads × 8 features, one output head, dropout 0.6 (the paper's Cora network)."""
    return GAT(GATConfig(**overrides))
