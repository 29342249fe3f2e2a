"""What the graph architectures share: the config fields every one has, and the layer stack around
their message-passing layers (dropout, activation, residual connections, read-out, head).

Each architecture (gcn.py, graphsage.py, gat.py, gin.py, seed.py) subclasses :class:`GraphNetwork`
and says only how its l-th layer is built (:meth:`GraphNetwork.make_conv`).

Two levels:

* ``level="node"`` (transductive node classification, Kipf & Welling 2017 §3.2): L layers
  F → D → … → D → K; the last layer's output are the logits (N, K).
* ``level="graph"`` (graph classification/regression, Xu et al. 2019 §4.2): L layers F → D → … → D,
  a read-out h_G = READOUT({h_v : v ∈ G}) (sum, mean, max, or Li et al. 2016's soft attention),
  optionally of every layer's output concatenated (``readout_layers="all"``, Xu et al. Eq. 4.2), then
  a linear head: (G, K).

Letters: N nodes, E edges, G graphs, F node features, D hidden width, K classes (or targets), L layers.
Shapes: x (N, F), edge_index (2, E), batch (N,) → (N, K) (node level) or (G, K) (graph level).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from archlab.layers.activations import get_activation
from archlab.layers.message_passing import (
    AttentionReadout,
    Readout,
    SparseFeatures,
    TensorCache,
    check_graph,
    dropout,
    global_pool,
)
from archlab.registry.config import LayerCount, ModelConfig, PositiveInt, Probability

GRAPH_TASKS = ("node_classification", "graph_classification", "graph_regression")


@dataclass
class GraphConfig(ModelConfig):
    """Fields every graph architecture has; defaults are Kipf & Welling's Cora setting (§5.2)."""

    in_shape: tuple[PositiveInt] = (1433,)  # (F,): features per node (Cora's 1,433-word bag of words)
    num_classes: PositiveInt = 7  # K: classes (node or graph), or regression targets
    hidden: PositiveInt = 16  # D: width of every hidden layer (per head for GAT)
    num_layers: LayerCount = 2  # L: message-passing layers
    dropout: Probability = 0.5  # on the input of every layer (and of the head)
    activation: str = "relu"  # σ between layers
    level: Literal["node", "graph"] = "node"  # node logits (N, K), or a read-out and graph logits (G, K)
    readout: Readout = "mean"  # graph level: sum, mean, max or attention (Li et al. 2016)
    readout_layers: Literal["last", "all"] = "last"  # graph level: read out the last layer, or all (GIN Eq. 4.2)
    residual: bool = False  # h ← h + σ(layer(h)) where the width does not change (deep stacks)


class GraphNetwork(nn.Module):
    """L message-passing layers with dropout and σ between them; see the module docstring.

    Subclasses implement :meth:`make_conv`. Raises :class:`~archlab.utils.errors.ShapeError` (one
    line) for features of the wrong width, an edge index outside 0…N−1 or a batch vector of the
    wrong length.
    """

    config: GraphConfig

    def __init__(self, config: GraphConfig):
        super().__init__()
        self.config = config
        self.input_shape = tuple(config.in_shape)
        self.input_spec = ("N", *self.input_shape)  # nodes are free, the feature width is fixed
        f, d, k, n_layers = config.in_shape[0], config.hidden, config.num_classes, config.num_layers
        node = config.level == "node"
        widths = [f]
        convs = []
        for i in range(n_layers):
            last = node and i == n_layers - 1
            conv, out = self.make_conv(i, widths[-1], k if last else d, last)
            convs.append(conv)
            widths.append(out)
        self.convs = nn.ModuleList(convs)
        self.act = get_activation(config.activation)
        # bag-of-words inputs (mostly zeros) go to the first layer as a sparse matrix, cached per graph:
        # dropout then draws masks for the non-zeros only and X·W is a sparse × dense product
        self._sparse_x = TensorCache() if getattr(self.convs[0], "accepts_sparse", False) else None
        self._seen_x = TensorCache()  # the features of the last call: converted when they come back
        self.readout = None
        self.head = None
        if node:  # the last graph layer is the head: no pooled features to compose (N, D) → (N, K) with
            self.forward_head = None  # type: ignore[assignment]
        else:
            read = widths if config.readout_layers == "all" else widths[-1:]
            if config.readout == "attention":
                self.readout = nn.ModuleList(AttentionReadout(w) for w in read)
            self.head = nn.Linear(sum(read), k)

    def make_conv(self, i: int, in_dim: int, out_dim: int, last: bool) -> tuple[nn.Module, int]:
        """Layer ``i`` from ``in_dim`` to ``out_dim`` features (``last``: the node-level output layer)
        and its real output width (GAT concatenates heads)."""
        raise NotImplementedError

    def conv(self, i: int, h: Tensor, edge_index: Tensor) -> Tensor:
        """Layer ``i`` applied to h (N, ·); GIN and the others take (h, edge_index)."""
        return self.convs[i](h, edge_index)

    def node_states(self, x: Tensor, edge_index: Tensor, batch: Tensor | None = None) -> list[Tensor]:
        """h^(0) = x, h^(1), …, h^(L): every layer's output (N, ·); at node level h^(L) are the logits."""
        check_graph(x, edge_index, self.input_shape[0], batch)
        p, training = self.config.dropout, self.training
        states = [x]
        h = x
        last = len(self.convs) - 1
        for i in range(len(self.convs)):
            out = self.conv(i, self.input_dropout(h) if i == 0 else dropout(h, p, training), edge_index)
            if not (self.config.level == "node" and i == last):
                out = self.act(out)
                if self.config.residual and out.shape == h.shape:
                    out = h + out  # h^(l+1) = h^(l) + σ(layer(h^(l)))
            h = out
            states.append(h)
        return states

    def input_dropout(self, x: Tensor) -> Tensor | SparseFeatures:
        """Dropout of the node features; a mostly-zero x (≤ 10 % non-zeros, e.g. a bag of words) is
        passed on as :class:`SparseFeatures` when the first layer takes them — the same distribution (a zero
        stays zero whatever its mask) at the cost of the non-zeros. The conversion is made when the same
        feature tensor comes back (full-batch training), so a stream of new batches never pays for it."""
        p, training = self.config.dropout, self.training
        if self._sparse_x is None or not self._seen_x.holds(x):
            if self._sparse_x is not None:
                self._seen_x.get(x, None, lambda: None)
            return dropout(x, p, training)
        xs = self._sparse_x.get(x, None, lambda: SparseFeatures.from_dense(x))
        return dropout(x, p, training) if xs is None else xs.dropout(p, training)

    def forward_features(self, x: Tensor, edge_index: Tensor, batch: Tensor | None = None) -> Tensor:
        """Graph level: the read-out h_G (G, ·). Node level: the last hidden states (N, D)."""
        states = self.node_states(x, edge_index, batch)
        if self.config.level == "node":
            return states[-2]
        read = states if self.config.readout_layers == "all" else states[-1:]
        if self.readout is not None:
            pooled = [r(h, batch) for r, h in zip(self.readout, read, strict=True)]
        else:
            pooled = [global_pool(h, batch, self.config.readout) for h in read]
        return torch.cat(pooled, dim=-1)  # (G, Σ widths)

    def forward_head(self, h: Tensor) -> Tensor:
        """Graph level: dropout and the linear head, (G, ·) → (G, K)."""
        assert self.head is not None  # graph level only (node level: forward_head is None)
        return self.head(dropout(h, self.config.dropout, self.training))

    def forward(self, x: Tensor, edge_index: Tensor, batch: Tensor | None = None) -> Tensor:
        if self.config.level == "node":
            return self.node_states(x, edge_index, batch)[-1]  # (N, K)
        return self.forward_head(self.forward_features(x, edge_index, batch))  # (G, K)

    def example_inputs(self, batch: int = 1) -> tuple[Tensor, ...]:
        """A small random graph batch for ``model(*example_inputs)``: node level, one ring of ``batch``
        nodes (each node one example; a single node has no edge); graph level, ``batch`` rings of 5
        nodes. Returns (x (N, F), edge_index (2, E), batch (N,))."""
        device = next(self.parameters()).device
        size = batch if self.config.level == "node" else 5
        graphs = 1 if self.config.level == "node" else batch
        n = size * graphs
        edges = torch.empty(2, 0, dtype=torch.long, device=device)
        if size > 1:
            local = torch.arange(size, device=device)
            ring = torch.stack([local, (local + 1) % size])  # u → u+1
            ring = torch.cat([ring, ring.flip(0)], dim=1)  # and back: undirected
            offsets = torch.arange(graphs, device=device).repeat_interleave(ring.shape[1]) * size
            edges = ring.repeat(1, graphs) + offsets
        vector = torch.arange(graphs, device=device).repeat_interleave(size)
        return torch.randn(n, self.input_shape[0], device=device), edges, vector


def mlp(in_dim: int, out_dim: int, hidden: int, batch_norm: bool, final_activation: bool) -> nn.Sequential:
    """Linear → [BN] → ReLU → Linear [→ BN → ReLU]: GIN's 2-layer MLP (Xu et al. 2019 §7)."""
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden)]
    if batch_norm:
        layers.append(nn.BatchNorm1d(hidden))
    layers += [nn.ReLU(), nn.Linear(hidden, out_dim)]
    if final_activation:
        if batch_norm:
            layers.append(nn.BatchNorm1d(out_dim))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)
