"""Graph isomorphism network (GIN).

Xu, Hu, Leskovec & Jegelka, *How Powerful are Graph Neural Networks?*, ICLR 2019 (arXiv:1810.00826):
the layer Eq. 4.1, the read-out over all layers Eq. 4.2, the graph-classification setting §7 (5 GNN
layers counting the input layer, i.e. 4 GIN layers; 2-layer MLPs with batch normalisation; sum
read-out; GIN-0 fixes ε = 0, GIN-ε learns it).

Letters: N nodes, F features, D hidden width, K classes, L GIN layers, G a graph.

Equations:
    h_v^(l) = MLP^(l)((1 + ε^(l)) h_v^(l−1) + Σ_{u ∈ N(v)} h_u^(l−1))   Eq. 4.1
    MLP(z)  = ReLU(BN(W_2 ReLU(BN(W_1 z + b_1)) + b_2))                  §7 (2 layers, batch norm)
    h_G     = ‖_{l=0..L} Σ_{v ∈ G} h_v^(l)                                Eq. 4.2 (sum read-out of every layer)
    y       = W_o dropout(h_G) + b_o

Parameter arithmetic (MUTAG-sized: F = 7, D = 64, K = 2, L = 4): layer 1 W_1 7·64 + 64, BN 128,
W_2 64·64 + 64, BN 128 = 4,928; layers 2–4 (64·64 + 64 + 128)·2 = 8,576 each; head (7 + 4·64)·2 + 2
= 528: 4,928 + 3·8,576 + 528 = 31,184 (+1 per layer for GIN-ε: 31,188).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from archlab.layers.message_passing import GINConv, Readout
from archlab.models.gnn.base import GRAPH_TASKS, GraphConfig, GraphNetwork, mlp
from archlab.registry import register_model
from archlab.registry.config import LayerCount, PositiveInt


@dataclass
class GINConfig(GraphConfig):
    """GIN options; the defaults are the paper's graph-classification network (§7) at MUTAG's sizes."""

    in_shape: tuple[PositiveInt] = (7,)  # (F,): MUTAG's one-hot atom types
    num_classes: PositiveInt = 2  # K
    hidden: PositiveInt = 64  # D
    num_layers: LayerCount = 4  # L GIN layers (the paper's "5 layers" count the input)
    level: Literal["node", "graph"] = "graph"
    readout: Readout = "sum"  # sum: injective on multisets (§4.2)
    readout_layers: Literal["last", "all"] = "all"  # Eq. 4.2
    eps: float = 0.0  # ε's value (GIN-0) or initial value (GIN-ε)
    train_eps: bool = False  # GIN-ε: learn ε
    batch_norm: bool = True  # in the MLPs (§7)


class GIN(GraphNetwork):
    """Xu et al.'s GIN: L :class:`~archlab.layers.message_passing.GINConv` layers with 2-layer MLPs.
    Shapes: x (N, F), edge_index (2, E), batch (N,) → (G, K) or (N, K)."""

    config: GINConfig

    def make_conv(self, i: int, in_dim: int, out_dim: int, last: bool) -> tuple[nn.Module, int]:
        c = self.config
        net = mlp(in_dim, out_dim, c.hidden, c.batch_norm and not last, final_activation=not last)
        return GINConv(net, eps=c.eps, train_eps=c.train_eps), out_dim


_PAPER = "Xu, Hu, Leskovec & Jegelka, How Powerful are Graph Neural Networks? (ICLR 2019)"


@register_model(
    family="gnn",
    config=GINConfig,
    paper=_PAPER,
    tasks=GRAPH_TASKS,
    meta={"num_params": 31_184, "macs": 146_126},
    test_overrides={"hidden": 8},
)
def gin(**overrides) -> GIN:
    """GIN-0: four GIN layers of 64, batch norm, sum read-out of every layer (graph classification)."""
    return GIN(GINConfig(**overrides))


@register_model(
    family="gnn",
    config=GINConfig,
    paper=_PAPER,
    tasks=GRAPH_TASKS,
    defaults={"train_eps": True},
    meta={"num_params": 31_188, "macs": 146_126},
    test_overrides={"hidden": 8},
)
def gin_eps(**overrides) -> GIN:
    """GIN-ε: ε learned per layer."""
    return GIN(GINConfig(**overrides))
