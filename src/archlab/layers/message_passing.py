"""Message passing on graphs: one base (message → aggregate → update) and the classic layers on it.

Gilmer et al. 2017 (arXiv:1704.01212, Eq. 1–2) write every graph layer as

    m_v  = ⊕_{u ∈ N(v)} φ(h_v, h_u, e_uv)          message φ, permutation-invariant aggregation ⊕
    h_v' = γ(h_v, m_v)                              update γ

and the seed's rule h_v ← σ(Σ_{u∈N(v)} W·h_u + b) is its first instance (:class:`SeedConv`).
Aggregations are scatter operations over the edge index (torch's ``index_add_`` and
``scatter_reduce``), never a dense N×N matrix: sum, mean, max (a node without in-edges gets 0).

Layers (each a :class:`MessagePassing`; PyG's names, argument names and parameter layout, so the
parity tests copy PyG's weights key by key):

* :class:`SeedConv`   h_v' = σ(Σ_{u∈N(v)} W h_u + b)
* :class:`GCNConv`    Kipf & Welling 2017 (arXiv:1609.02907, Eq. 2 / 8): H' = D̂^{-1/2} Â D̂^{-1/2} H W + b,
  Â = A + I, D̂_ii = Σ_j Â_ij
* :class:`SAGEConv`   Hamilton, Ying & Leskovec 2017 (arXiv:1706.02216, Alg. 1, Eq. 3):
  h_v' = W_l · AGG({h_u : u ∈ N(v)}) + W_r h_v; AGG mean, or max over σ(W_pool h_u + b) (pooling)
* :class:`GATConv`    Veličković et al. 2018 (arXiv:1710.10903, Eq. 1–6): per head k,
  α_vu = softmax_u(LeakyReLU_{0.2}(a_srcᵀ W h_u + a_dstᵀ W h_v)) over N(v) ∪ {v},
  h_v' = ‖_k Σ_u α_vu^k W^k h_u  (concat) or mean_k (last layer)
* :class:`GINConv`    Xu, Hu, Leskovec & Jegelka 2019 (arXiv:1810.00826, Eq. 4.1):
  h_v' = MLP((1 + ε) h_v + Σ_{u∈N(v)} h_u), ε learnable or fixed

Read-outs for graph-level models: :func:`global_pool` (sum / mean / max over each graph's nodes)
and :class:`AttentionReadout` (Li et al. 2016's soft attention). :func:`dropout` is ``F.dropout``'s
math with a faster CPU mask (the wide input features of a citation graph dominate a GCN step).

Edge direction is PyG's: ``edge_index[0]`` are the sources u, ``edge_index[1]`` the targets v, and
a message flows u → v (an undirected graph lists both directions).

Letter legend: N nodes, E edges, F input features, C output features per head, H heads,
G graphs in a batch. Shapes: x (N, F), edge_index (2, E) int64, batch (N,) node → graph.
"""

from __future__ import annotations

import warnings
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archlab.layers.activations import get_activation
from archlab.utils.errors import ConfigError, ShapeError, did_you_mean

__all__ = [
    "AGGREGATIONS",
    "Aggregation",
    "AttentionReadout",
    "GATConv",
    "GCNConv",
    "GINConv",
    "MessagePassing",
    "READOUTS",
    "SAGEConv",
    "SeedConv",
    "TensorCache",
    "add_self_loops",
    "check_graph",
    "dropout",
    "gcn_norm",
    "global_pool",
    "num_graphs",
    "scatter",
    "linear",
    "segment_softmax",
    "SparseFeatures",
]

Aggregation = Literal["sum", "mean", "max"]
AGGREGATIONS: tuple[str, ...] = get_args(Aggregation)
Readout = Literal["sum", "mean", "max", "attention"]
READOUTS: tuple[str, ...] = get_args(Readout)


def check_aggregation(aggr: str) -> str:
    """``aggr`` itself if it is one of :data:`AGGREGATIONS`; raises :class:`ConfigError` (one line) otherwise."""
    if aggr not in AGGREGATIONS:
        raise ConfigError(
            f"unknown aggregation '{aggr}'{did_you_mean(str(aggr), AGGREGATIONS)}; "
            f"choose one of {', '.join(AGGREGATIONS)}"
        )
    return aggr


# -- scatter operations on the edge index ------------------------------------------------------
def scatter(src: Tensor, index: Tensor, dim_size: int, reduce: str = "sum") -> Tensor:
    """Rows of ``src`` (E, ...) reduced into ``dim_size`` rows by ``index`` (E,): out[i] = ⊕_{e: index[e]=i} src[e].

    ``reduce``: "sum" (``index_add_``), "mean" (sum / count, rows without entries 0), "max"
    (``scatter_reduce`` "amax", rows without entries 0, as PyG). Raises :class:`ConfigError` for
    another ``reduce``. Shapes: (E, *D) → (dim_size, *D).
    """
    check_aggregation(reduce)
    out = src.new_zeros((dim_size, *src.shape[1:]))
    if reduce == "max":
        idx = index.view(-1, *([1] * (src.dim() - 1))).expand_as(src)
        return out.scatter_reduce(0, idx, src, reduce="amax", include_self=False)
    out = out.index_add(0, index, src)
    if reduce == "mean":
        count = torch.zeros(dim_size, dtype=src.dtype, device=src.device).index_add_(
            0, index, torch.ones_like(index, dtype=src.dtype)
        )
        out = out / count.clamp(min=1).view(-1, *([1] * (src.dim() - 1)))
    return out


def segment_softmax(scores: Tensor, index: Tensor, dim_size: int) -> Tensor:
    """softmax of ``scores`` (E, ...) within each group of equal ``index`` (the in-edges of a node,
    the nodes of a graph): α_e = exp(s_e − max) / Σ_{e' ~ e} exp(s_e' − max). Shapes: (E, *D) → (E, *D)."""
    idx = index.view(-1, *([1] * (scores.dim() - 1))).expand_as(scores)
    top = scores.new_full((dim_size, *scores.shape[1:]), float("-inf"))
    top = top.scatter_reduce(0, idx, scores.detach(), reduce="amax", include_self=True)
    e = (scores - top.index_select(0, index)).exp()
    denom = scores.new_zeros((dim_size, *scores.shape[1:])).index_add(0, index, e)
    return e / (denom.index_select(0, index) + 1e-16)  # PyG's ε: an empty group never divides by 0


def num_graphs(batch: Tensor | None, num_nodes: int) -> int:
    """G = max(batch) + 1 (1 without a batch vector). On the meta device (shape-only runs: parameter
    and FLOP counting) the values are unknown and G is taken as 1 (the one-graph example)."""
    if batch is None or batch.device.type == "meta":
        return 1
    return int(batch.max()) + 1 if num_nodes else 0


def check_graph(x: Tensor, edge_index: Tensor, in_features: int | None = None, batch: Tensor | None = None) -> None:
    """Raise one line for a malformed graph: ``x`` not (N, F) with F = ``in_features``
    (:class:`ShapeError`), ``edge_index`` not (2, E) integer or pointing outside 0…N−1, ``batch`` not
    (N,) (:class:`ShapeError`). Values are not checked on the meta device."""
    if x.dim() != 2 or (in_features is not None and x.shape[1] != in_features):
        want = f"(N, {in_features})" if in_features is not None else "(N, F)"
        raise ShapeError(f"node features: expected shape {want}, got {tuple(x.shape)}")
    if edge_index.dim() != 2 or edge_index.shape[0] != 2 or edge_index.dtype not in (torch.int64, torch.int32):
        raise ShapeError(
            f"edge_index: expected an integer tensor of shape (2, E), got {tuple(edge_index.shape)} {edge_index.dtype}"
        )
    if batch is not None and tuple(batch.shape) != (x.shape[0],):
        raise ShapeError(f"batch: expected shape ({x.shape[0]},) (one graph id per node), got {tuple(batch.shape)}")
    if edge_index.numel() and edge_index.device.type != "meta":
        lo, hi = int(edge_index.min()), int(edge_index.max())
        if lo < 0 or hi >= x.shape[0]:
            raise ShapeError(
                f"edge_index: node ids must lie in 0…{x.shape[0] - 1} (N = {x.shape[0]} nodes), got {lo}…{hi}"
            )


def add_self_loops(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Existing self-loops removed, then one loop (v, v) per node appended: (2, E) → (2, E' + N)."""
    if edge_index.device.type != "meta":  # values unknown on the meta device (shape-only runs)
        edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    loops = torch.arange(num_nodes, device=edge_index.device, dtype=edge_index.dtype)
    return torch.cat([edge_index, loops.expand(2, num_nodes)], dim=1)


def gcn_norm(edge_index: Tensor, num_nodes: int, self_loops: bool = True, dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """The edges of Â = A + I and their weights Â_vu / sqrt(D̂_vv D̂_uu) (Kipf & Welling 2017, Eq. 2);
    D̂ counts in-edges (PyG's ``gcn_norm``). Returns (edge_index (2, E'), weight (E',))."""
    if self_loops:
        edge_index = add_self_loops(edge_index, num_nodes)
    src, dst = edge_index
    deg = torch.zeros(num_nodes, dtype=dtype, device=edge_index.device).index_add_(
        0, dst, torch.ones(dst.shape[0], dtype=dtype, device=edge_index.device)
    )
    inv_sqrt = deg.pow(-0.5).masked_fill(deg == 0, 0.0)  # D̂^{-1/2}
    return edge_index, inv_sqrt[src] * inv_sqrt[dst]


def dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Inverted dropout, the math of ``F.dropout``: each entry kept with probability 1 − p and scaled
    by 1/(1 − p), else 0 (Srivastava et al. 2014).

    The keep mask is drawn as ``torch.rand(...) ≥ p``, in place, which is ≈ 4× faster on CPU than
    ``F.dropout``'s Bernoulli kernel for a wide input (2708 × 1433 Cora-sized features: ≈ 19 against
    ≈ 74 ms, measured here); it is the same distribution, not the same random stream.
    """
    if not training or p == 0.0:
        return x
    if p >= 1.0:
        return x * 0.0
    mask = torch.rand(x.shape, dtype=x.dtype, device=x.device).ge_(p).mul_(1.0 / (1.0 - p))
    return x * mask


class TensorCache:
    """One value computed from a tensor, reused while the *same tensor object*, unmodified
    (``_version``), comes back with the same ``extra`` key — a full-batch training loop passes the
    same graph every step. The cache holds a reference to the tensor, so its memory cannot be reused
    by another tensor that would then look equal; any other tensor recomputes."""

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.value = None

    def holds(self, t: Tensor, extra=None) -> bool:
        """Whether the cached value was computed from ``t`` as it is now (and ``extra``)."""
        return self.key is not None and self.key[0] is t and self.key[1] == t._version and self.key[2] == extra

    def get(self, t: Tensor, extra, compute):
        if self.holds(t, extra):
            return self.value
        self.value = compute()
        self.key = (t, t._version, extra)
        return self.value

    def __deepcopy__(self, memo) -> TensorCache:
        return TensorCache()  # a copied module recomputes (and never shares a cached tensor)


class SparseFeatures:
    """A mostly-zero feature matrix X (N, F) — a bag of words: Cora's features are 1.3 % ones — held
    in CSR form twice, X and Xᵀ, sharing one value vector, so that X·Wᵀ and its weight gradient
    Xᵀ·G are each one sparse × dense kernel (torch's autograd through a COO product is ~20× slower
    here). :meth:`dropout` draws masks for the stored entries only: a zero stays zero whatever its
    mask, so it is dense dropout's distribution at the cost of the non-zeros. Gradients reach the
    weights, not X (an input). Shapes: ``shape`` = (N, F).
    """

    def __init__(self, crow: Tensor, col: Tensor, crow_t: Tensor, col_t: Tensor, perm: Tensor, values: Tensor, shape):
        self.crow, self.col, self.crow_t, self.col_t, self.perm = crow, col, crow_t, col_t, perm
        self.values = values  # in X's (row-major) order; Xᵀ's values are values[perm]
        self.shape = torch.Size(shape)

    @staticmethod
    def from_dense(x: Tensor, max_density: float = 0.1) -> SparseFeatures | None:
        """``x`` (N, F) in this form when at most ``max_density`` of its entries are non-zero, else None."""
        if x.device.type == "meta" or x.dim() != 2 or x.numel() == 0:
            return None
        if int(torch.count_nonzero(x)) > max_density * x.numel():
            return None
        n, f = x.shape
        rows, cols = x.nonzero(as_tuple=True)  # row-major: CSR order of X
        perm = torch.argsort(cols * n + rows)  # CSR order of Xᵀ

        def crow(index: Tensor, size: int) -> Tensor:
            return torch.cat([index.new_zeros(1), torch.bincount(index, minlength=size).cumsum(0)])

        return SparseFeatures(crow(rows, n), cols, crow(cols, f), rows[perm], perm, x[rows, cols], (n, f))

    def with_values(self, values: Tensor) -> SparseFeatures:
        return SparseFeatures(self.crow, self.col, self.crow_t, self.col_t, self.perm, values, self.shape)

    def dropout(self, p: float, training: bool = True) -> SparseFeatures:
        return self if not training or p == 0.0 else self.with_values(dropout(self.values, p))

    def csr(self) -> tuple[Tensor, Tensor]:
        """(X, Xᵀ) as torch CSR tensors."""
        n, f = self.shape
        with warnings.catch_warnings():  # torch calls its CSR support "beta" once per process
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            x = torch.sparse_csr_tensor(self.crow, self.col, self.values, (n, f), check_invariants=False)
            xt = torch.sparse_csr_tensor(
                self.crow_t, self.col_t, self.values[self.perm], (f, n), check_invariants=False
            )
        return x, xt


class _SparseLinear(torch.autograd.Function):
    """X·Wᵀ for a sparse X given as CSR X and Xᵀ: forward X·Wᵀ, backward ∂W = (Xᵀ·G)ᵀ."""

    @staticmethod
    def forward(ctx, weight: Tensor, x: Tensor, xt: Tensor) -> Tensor:
        ctx.save_for_backward(xt)
        return torch.sparse.mm(x, weight.t().contiguous())  # (N, C)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        (xt,) = ctx.saved_tensors
        return torch.sparse.mm(xt, grad.contiguous()).t(), None, None  # (C, F)


def linear(x: Tensor | SparseFeatures, lin: nn.Linear) -> Tensor:
    """``lin(x)`` for a dense ``x``, or the same product for :class:`SparseFeatures` (N, F) by one sparse ×
    dense kernel each way (gradients reach ``lin``'s parameters, not ``x``). Shapes: (N, F) → (N, C)."""
    if not isinstance(x, SparseFeatures):
        return lin(x)
    out = _SparseLinear.apply(lin.weight, *x.csr())
    return out + lin.bias if lin.bias is not None else out


# -- the base ----------------------------------------------------------------------------------
class MessagePassing(nn.Module):
    """Message passing base (Gilmer et al. 2017, Eq. 1–2): :meth:`propagate` gathers the source rows
    x_u of every edge u → v, maps them by :meth:`message`, reduces them at v by :meth:`aggregate`
    (``aggr``: sum, mean or max) and finishes with :meth:`update`.

    Raises :class:`ConfigError` for an unknown ``aggr``. Shapes: x (N, ...) → (N, ...).
    """

    accepts_sparse = False  # whether forward takes x as SparseFeatures

    def __init__(self, aggr: Aggregation = "sum"):
        super().__init__()
        self.aggr = check_aggregation(aggr)

    def propagate(self, edge_index: Tensor, x: Tensor, num_nodes: int | None = None, **edge: Tensor) -> Tensor:
        """⊕_{u ∈ N(v)} message(x_u, **edge) for every node v, then :meth:`update`. ``edge`` holds per-edge
        tensors (E, ...) passed to :meth:`message` (edge weights, attention coefficients)."""
        n = x.shape[0] if num_nodes is None else num_nodes
        src, dst = edge_index
        messages = self.message(x.index_select(0, src), **edge)  # (E, ...)
        return self.update(self.aggregate(messages, dst, n))

    def message(self, x_j: Tensor, **edge: Tensor) -> Tensor:
        """φ: the message of every edge from its source's features x_j (E, ...); default x_j."""
        return x_j

    def aggregate(self, messages: Tensor, index: Tensor, num_nodes: int) -> Tensor:
        """⊕: the messages (E, ...) reduced at their targets ``index`` (E,) → (N, ...)."""
        return scatter(messages, index, num_nodes, self.aggr)

    def update(self, aggregated: Tensor) -> Tensor:
        """γ: the new node state from the aggregated messages (N, ...); default the identity."""
        return aggregated

    def extra_repr(self) -> str:
        return f"aggr={self.aggr}"


class SeedConv(MessagePassing):
    """The seed's update rule, h_v ← σ(Σ_{u∈N(v)} W·h_u + b): the message is W h_u, the aggregation a
    sum over the in-neighbours (``aggr`` may also be "mean" or "max"), the update σ(· + b).

    W is applied before the gather (a linear map commutes with the sum: Σ W h_u = W Σ h_u), so each
    node is multiplied once rather than once per edge. A node without in-edges gets σ(b).
    Shapes: x (N, F) → (N, C).
    """

    accepts_sparse = True  # the first operation on x is a linear map (see :func:`linear`)

    def __init__(self, in_channels: int, out_channels: int, aggr: Aggregation = "sum", activation: str = "relu"):
        super().__init__(aggr)
        self.lin = nn.Linear(in_channels, out_channels, bias=False)  # W
        self.bias = nn.Parameter(torch.zeros(out_channels))  # b
        self.act = get_activation(activation)  # σ

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.propagate(edge_index, linear(x, self.lin))  # Σ_u W h_u (N, C); x may be SparseFeatures

    def update(self, aggregated: Tensor) -> Tensor:
        return self.act(aggregated + self.bias)


class GCNConv(MessagePassing):
    """Graph convolution (Kipf & Welling 2017, Eq. 2 / 8): H' = D̂^{-1/2} Â D̂^{-1/2} (H W) + b, Â = A + I.

    Node-wise: h_v' = Σ_{u ∈ N(v) ∪ {v}} (1 / sqrt(d̂_u d̂_v)) W h_u + b, d̂ the in-degree plus one.
    PyG's ``GCNConv`` layout (``lin.weight`` (C, F) without bias, then ``bias`` (C,)).

    ``cached``: the normalised adjacency is kept as a sparse (coalesced COO) matrix and reused while the same
    ``edge_index`` tensor object (unmodified) and node count come back (:class:`TensorCache`) — a full-batch
    (transductive) training loop pays for the normalisation once; any other graph recomputes it.
    ``sparse``: aggregate by a sparse-matrix product (one sparse × dense kernel) instead of gather +
    ``index_add_``; the two paths agree to float precision (tested). Shapes: x (N, F) → (N, C).
    """

    accepts_sparse = True  # the first operation on x is a linear map (see :func:`linear`)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        bias: bool = True,
        add_self_loops: bool = True,
        cached: bool = True,
        sparse: bool = True,
    ):
        super().__init__("sum")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.self_loops, self.cached, self.sparse = add_self_loops, cached, sparse
        self.lin = nn.Linear(in_channels, out_channels, bias=False)  # W
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None  # b
        nn.init.xavier_uniform_(self.lin.weight)  # Glorot & Bengio 2010, as the paper (§5.2)
        self._cache = TensorCache()

    def normalized(self, edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """(edge_index of Â, weights, sparse matrix of D̂^{-1/2} Â D̂^{-1/2} or None), cached (see the class)."""
        if self.cached:
            return self._cache.get(edge_index, num_nodes, lambda: self._normalize(edge_index, num_nodes))
        return self._normalize(edge_index, num_nodes)

    def _normalize(self, edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor, Tensor | None]:
        ei, w = gcn_norm(edge_index, num_nodes, self.self_loops)
        adj = None
        if self.sparse and edge_index.device.type != "meta":
            # row v holds the weights of v's in-edges: out = adj @ h sums the messages at their targets
            adj = torch.sparse_coo_tensor(ei.flip(0), w, (num_nodes, num_nodes), check_invariants=False).coalesce()
        return ei, w, adj

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        h = linear(x, self.lin)  # H W (N, C); x may be SparseFeatures (a bag of words)
        ei, w, adj = self.normalized(edge_index, x.shape[0])
        out = torch.sparse.mm(adj, h) if adj is not None else self.propagate(ei, h, weight=w)  # (N, C)
        return out + self.bias if self.bias is not None else out

    def message(self, x_j: Tensor, weight: Tensor) -> Tensor:
        return weight.unsqueeze(-1) * x_j  # Â_vu / sqrt(d̂_u d̂_v) · W h_u

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, cached={self.cached}, sparse={self.sparse}"


class SAGEConv(MessagePassing):
    """GraphSAGE layer (Hamilton et al. 2017, Alg. 1 lines 4–5 with CONCAT written as two matrices):

        mean:  h_v' = W_l · mean_{u∈N(v)} h_u + b + W_r h_v                         (Eq. 2's mean, Alg. 1)
        max:   h_v' = W_l · max_{u∈N(v)} σ(W_pool h_u + b_pool) + b + W_r h_v       (pooling aggregator, Eq. 3)

    optionally followed by h_v' / ‖h_v'‖₂ (Alg. 1 line 7, ``normalize``). PyG's ``SAGEConv`` layout:
    ``lin_l`` (with bias), ``lin_r`` (no bias) and, for "max", ``lin`` (W_pool, b_pool; PyG's
    ``project=True``). Raises :class:`ConfigError` for an aggregator other than mean/max/sum.
    Shapes: x (N, F) → (N, C).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        aggr: Aggregation = "mean",
        normalize: bool = False,
        root_weight: bool = True,
        bias: bool = True,
    ):
        super().__init__(aggr)
        self.in_channels, self.out_channels, self.normalize = in_channels, out_channels, normalize
        self.lin = nn.Linear(in_channels, in_channels) if aggr == "max" else None  # W_pool, b_pool
        self.lin_l = nn.Linear(in_channels, out_channels, bias=bias)  # W_l on the aggregated neighbours
        self.lin_r = nn.Linear(in_channels, out_channels, bias=False) if root_weight else None  # W_r on h_v

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        src = torch.relu(self.lin(x)) if self.lin is not None else x  # σ(W_pool h_u + b_pool)
        out = self.lin_l(self.propagate(edge_index, src, num_nodes=x.shape[0]))  # (N, C)
        if self.lin_r is not None:
            out = out + self.lin_r(x)
        return F.normalize(out, p=2.0, dim=-1) if self.normalize else out

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, aggr={self.aggr}"


class GATConv(MessagePassing):
    """Graph attention (Veličković et al. 2018, Eq. 1–6), ``heads`` = K independent heads:

        e_vu  = LeakyReLU_{0.2}(a_srcᵀ W h_u + a_dstᵀ W h_v)            (Eq. 1, 3: aᵀ[W h_v ‖ W h_u])
        α_vu  = softmax_{u ∈ N(v) ∪ {v}} e_vu, then attention dropout   (Eq. 2, §3.3)
        h_v'  = ‖_{k=1..K} Σ_u α_vu^k W^k h_u + b    (concat, Eq. 5)    or  mean_k (…) + b  (Eq. 6)

    PyG's ``GATConv`` layout: ``lin.weight`` (K·C, F) without bias, ``att_src``/``att_dst`` (1, K, C),
    ``bias`` (K·C or C). Self-loops are added (existing ones removed first), as the paper attends over
    N(v) ∪ {v}. Shapes: x (N, F) → (N, K·C) with ``concat``, else (N, C).
    """

    accepts_sparse = True  # the first operation on x is a linear map (see :func:`linear`)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        heads: int = 1,
        concat: bool = True,
        negative_slope: float = 0.2,
        dropout: float = 0.0,
        add_self_loops: bool = True,
        bias: bool = True,
    ):
        super().__init__("sum")
        self.in_channels, self.out_channels, self.heads, self.concat = in_channels, out_channels, heads, concat
        self.negative_slope, self.dropout, self.self_loops = negative_slope, dropout, add_self_loops
        self.lin = nn.Linear(in_channels, heads * out_channels, bias=False)  # W^1 … W^K stacked
        self.att_src = nn.Parameter(torch.empty(1, heads, out_channels))  # a, source half
        self.att_dst = nn.Parameter(torch.empty(1, heads, out_channels))  # a, target half
        self.bias = nn.Parameter(torch.zeros(heads * out_channels if concat else out_channels)) if bias else None
        for w in (self.lin.weight, self.att_src, self.att_dst):
            nn.init.xavier_uniform_(w)  # Glorot (§3.3)
        self._loops = TensorCache()  # the same graph again: reuse its self-looped edges (full-batch training)

    def _with_loops(self, edge_index: Tensor, num_nodes: int) -> Tensor:
        if not self.self_loops:
            return edge_index
        return self._loops.get(edge_index, num_nodes, lambda: add_self_loops(edge_index, num_nodes))

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        n, k, c = x.shape[0], self.heads, self.out_channels
        h = linear(x, self.lin).view(n, k, c)  # W h (N, K, C); x may be SparseFeatures
        ei = self._with_loops(edge_index, n)
        src, dst = ei
        a_src = (h * self.att_src).sum(-1)  # a_srcᵀ W h_u (N, K)
        a_dst = (h * self.att_dst).sum(-1)  # a_dstᵀ W h_v (N, K)
        e = F.leaky_relu(a_src.index_select(0, src) + a_dst.index_select(0, dst), self.negative_slope)  # (E, K)
        alpha = segment_softmax(e, dst, n)  # (E, K), Σ over each node's in-edges = 1
        alpha = dropout(alpha, self.dropout, self.training)
        out = self.propagate(ei, h, num_nodes=n, alpha=alpha)  # (N, K, C)
        out = out.reshape(n, k * c) if self.concat else out.mean(dim=1)  # (N, K·C) or (N, C)
        return out + self.bias if self.bias is not None else out

    def message(self, x_j: Tensor, alpha: Tensor) -> Tensor:
        return alpha.unsqueeze(-1) * x_j  # α_vu W h_u (E, K, C)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, heads={self.heads}, concat={self.concat}"


class GINConv(MessagePassing):
    """Graph isomorphism network layer (Xu et al. 2019, Eq. 4.1): h_v' = MLP((1 + ε) h_v + Σ_{u∈N(v)} h_u).

    ``train_eps``: ε a learnable scalar (GIN-ε) or a fixed buffer (GIN-0 with ``eps=0``). ``nn`` is the
    MLP (PyG's ``GINConv(nn, eps, train_eps)`` layout: ``nn.*`` and ``eps``). Shapes: x (N, F) → (N, C).
    """

    def __init__(self, nn_: nn.Module, eps: float = 0.0, train_eps: bool = False):
        super().__init__("sum")
        self.nn = nn_
        if train_eps:
            self.eps = nn.Parameter(torch.tensor([eps]))
        else:
            self.register_buffer("eps", torch.tensor([eps]))

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        agg = self.propagate(edge_index, x)  # Σ_u h_u (N, F)
        return self.nn((1 + self.eps) * x + agg)


# -- read-outs ---------------------------------------------------------------------------------
def global_pool(x: Tensor, batch: Tensor | None, reduce: str = "sum") -> Tensor:
    """h_G = ⊕_{v ∈ G} h_v for every graph (sum, mean or max): (N, D) → (G, D); without ``batch`` one graph."""
    if batch is None:
        batch = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    return scatter(x, batch, num_graphs(batch, x.shape[0]), reduce)


class AttentionReadout(nn.Module):
    """Soft-attention read-out (Li, Tarlow, Brockschmidt & Zemel 2016, arXiv:1511.05493, Eq. 7, with the
    gate normalised by a softmax over the graph's nodes as PyG's ``AttentionalAggregation``):

        α_v = softmax_{v ∈ G}(w_gateᵀ h_v + b_gate),   h_G = Σ_{v ∈ G} α_v · tanh(W h_v + b)

    Shapes: x (N, D), batch (N,) → (G, D).
    """

    def __init__(self, dim: int):
        super().__init__()
        self.gate = nn.Linear(dim, 1)  # i(h_v): the gate's score
        self.value = nn.Linear(dim, dim)  # j(h_v): what is summed

    def forward(self, x: Tensor, batch: Tensor | None) -> Tensor:
        if batch is None:
            batch = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        g = num_graphs(batch, x.shape[0])
        alpha = segment_softmax(self.gate(x), batch, g)  # (N, 1), Σ within each graph = 1
        return scatter(alpha * torch.tanh(self.value(x)), batch, g, "sum")  # (G, D)
