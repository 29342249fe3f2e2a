"""The seed's graph network: layers of the message-passing rule h_v ← σ(Σ_{u∈N(v)} W·h_u + b).

The rule is the neighbourhood aggregation of Scarselli et al. 2009 (*The Graph Neural Network
Model*, IEEE TNN 20(1)) in the one-step, per-layer-weights form of Gilmer et al. 2017
(arXiv:1704.01212, Eq. 1–2, with φ = W h_u, ⊕ = Σ, γ = σ(· + b)): no self term and no normalisation,
the baseline every later layer (GCN, GraphSAGE, GAT, GIN) refines.

Letters: N nodes, F features, D hidden width, K classes, N(v) the in-neighbours of v, σ = ReLU.

Equations:
    h_v^(l+1) = σ(Σ_{u ∈ N(v)} W^(l) h_u^(l) + b^(l))        the seed's rule (sum; mean/max by aggr)
    output    = Σ_{u ∈ N(v)} W^(L) h_u^(L) + b^(L)           node level: the logits (no σ)
    dropout on the input of each layer; graph level: h_G = READOUT({h_v}), y = W_o h_G + b_o

Parameter arithmetic (F = 1,433, D = 16, K = 7, the GCN's Cora sizes): 1,433·16 + 16 + 16·7 + 7 = 23,063.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from archlab.layers.message_passing import Aggregation, SeedConv
from archlab.models.gnn.base import GRAPH_TASKS, GraphConfig, GraphNetwork
from archlab.registry import register_model


@dataclass
class SeedGNNConfig(GraphConfig):
    """The seed network's options: the fields of :class:`GraphConfig` and the aggregation."""

    aggr: Aggregation = "sum"  # Σ as in the seed; mean or max also possible


class SeedGNN(GraphNetwork):
    """L :class:`~archlab.layers.message_passing.SeedConv` layers (σ applied between layers).
    Shapes: x (N, F), edge_index (2, E), batch (N,) → (N, K) or (G, K)."""

    config: SeedGNNConfig

    def make_conv(self, i: int, in_dim: int, out_dim: int, last: bool) -> tuple[nn.Module, int]:
        # σ is the network's, applied after every layer but the node-level output
        return SeedConv(in_dim, out_dim, aggr=self.config.aggr, activation="identity"), out_dim


_PAPER = (
    "Scarselli et al., The Graph Neural Network Model (IEEE TNN 2009); "
    "Gilmer et al., Neural Message Passing for Quantum Chemistry (ICML 2017)"
)


@register_model(
    family="gnn",
    config=SeedGNNConfig,
    paper=_PAPER,
    tasks=GRAPH_TASKS,
    meta={"num_params": 23_063, "macs": 23_040},
    test_overrides={"in_shape": (6,)},
)
def seed_gnn(**overrides) -> SeedGNN:
    """The seed's rule h_v ← σ(Σ_u W h_u + b), two layers."""
    return SeedGNN(SeedGNNConfig(**overrides))
