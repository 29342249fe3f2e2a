"""Message-passing layers: the seed's rule by hand, scatter aggregations, and parity with PyG.

PyG's layer is built with random weights, its parameters are copied into ours through an explicit
key map, and outputs (and input/parameter gradients) agree to 1e-5 (PEERS.md, "Parity").
"""

import pytest
import torch

from archlab.layers.message_passing import (
    AttentionReadout,
    GATConv,
    GCNConv,
    GINConv,
    MessagePassing,
    SAGEConv,
    SeedConv,
    SparseFeatures,
    TensorCache,
    check_graph,
    dropout,
    gcn_norm,
    global_pool,
    scatter,
    segment_softmax,
)
from archlab.utils.errors import ConfigError, ShapeError

pyg = pytest.importorskip("torch_geometric.nn")

N, E, F_IN = 30, 90, 12


@pytest.fixture(scope="module")
def graph():
    g = torch.Generator().manual_seed(0)
    src = torch.randint(0, N, (E,), generator=g)
    dst = (src + torch.randint(1, N, (E,), generator=g)) % N  # no self-loops: PyG and ours treat them alike
    return torch.randn(N, F_IN, generator=g), torch.stack([src, dst])


def _copy(ours: torch.nn.Module, theirs: torch.nn.Module, key_map: dict[str, str]) -> None:
    """ours[k] ← theirs[key_map[k]] for every parameter and buffer of ours (none left out)."""
    state = theirs.state_dict()
    mine = ours.state_dict()
    assert set(key_map) == set(mine), (sorted(mine), sorted(key_map))
    ours.load_state_dict({k: state[v].reshape(mine[k].shape) for k, v in key_map.items()})


def _agree(ours, theirs, x, edge_index, grads: bool = True) -> None:
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_a, out_b = ours(xa, edge_index), theirs(xb, edge_index)
    torch.testing.assert_close(out_a, out_b, atol=1e-5, rtol=1e-5)
    if grads:
        w = torch.randn_like(out_a)
        (out_a * w).sum().backward()
        (out_b * w).sum().backward()
        torch.testing.assert_close(xa.grad, xb.grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("sparse", [True, False])
def test_gcn_matches_pyg(graph, sparse):
    x, ei = graph
    torch.manual_seed(1)
    theirs = pyg.GCNConv(F_IN, 7)
    torch.nn.init.normal_(theirs.bias)
    ours = GCNConv(F_IN, 7, sparse=sparse)
    _copy(ours, theirs, {"lin.weight": "lin.weight", "bias": "bias"})
    _agree(ours, theirs, x, ei)
    _agree(ours, theirs, x, ei)  # the cached adjacency gives the same again


@pytest.mark.parametrize("aggr", ["mean", "max"])
def test_sage_matches_pyg(graph, aggr):
    x, ei = graph
    torch.manual_seed(2)
    theirs = pyg.SAGEConv(F_IN, 5, aggr=aggr, project=aggr == "max")  # max: the paper's pooling aggregator
    ours = SAGEConv(F_IN, 5, aggr=aggr)
    keys = {"lin_l.weight": "lin_l.weight", "lin_l.bias": "lin_l.bias", "lin_r.weight": "lin_r.weight"}
    if aggr == "max":
        keys |= {"lin.weight": "lin.weight", "lin.bias": "lin.bias"}
    _copy(ours, theirs, keys)
    _agree(ours, theirs, x, ei)


@pytest.mark.parametrize("concat", [True, False])
def test_gat_matches_pyg(graph, concat):
    x, ei = graph
    torch.manual_seed(3)
    theirs = pyg.GATConv(F_IN, 4, heads=3, concat=concat)
    torch.nn.init.normal_(theirs.bias)
    ours = GATConv(F_IN, 4, heads=3, concat=concat)
    _copy(ours, theirs, {"lin.weight": "lin.weight", "att_src": "att_src", "att_dst": "att_dst", "bias": "bias"})
    _agree(ours.eval(), theirs.eval(), x, ei)


@pytest.mark.parametrize("train_eps", [True, False])
def test_gin_matches_pyg(graph, train_eps):
    x, ei = graph
    torch.manual_seed(4)
    mlp = torch.nn.Sequential(torch.nn.Linear(F_IN, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8))
    theirs = pyg.GINConv(mlp, eps=0.3, train_eps=train_eps)
    ours = GINConv(
        torch.nn.Sequential(torch.nn.Linear(F_IN, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8)), 0.3, train_eps
    )
    keys = {f"nn.{i}.{p}": f"nn.{i}.{p}" for i in (0, 2) for p in ("weight", "bias")} | {"eps": "eps"}
    _copy(ours, theirs, keys)
    _agree(ours, theirs, x, ei)
    assert isinstance(ours.eps, torch.nn.Parameter) == train_eps


def test_seed_rule_by_hand():
    """h_v ← σ(Σ_{u∈N(v)} W h_u + b) written out node by node, with a node that has no in-edge."""
    torch.manual_seed(5)
    x = torch.randn(4, 3)
    ei = torch.tensor([[0, 1, 2, 0], [1, 2, 1, 2]])  # 0→1, 1→2, 2→1, 0→2; node 3 isolated, node 0 no in-edge
    conv = SeedConv(3, 2, activation="tanh")
    torch.nn.init.normal_(conv.bias)
    w, b = conv.lin.weight, conv.bias
    expected = torch.stack(
        [
            torch.tanh(b),
            torch.tanh(w @ x[0] + w @ x[2] + b),
            torch.tanh(w @ x[1] + w @ x[0] + b),
            torch.tanh(b),
        ]
    )
    torch.testing.assert_close(conv(x, ei), expected)


def test_scatter_aggregations_and_softmax():
    src = torch.tensor([[1.0], [3.0], [-2.0], [5.0]])
    index = torch.tensor([0, 0, 2, 2])
    assert scatter(src, index, 4, "sum").flatten().tolist() == [4.0, 0.0, 3.0, 0.0]
    assert scatter(src, index, 4, "mean").flatten().tolist() == [2.0, 0.0, 1.5, 0.0]
    assert scatter(src, index, 4, "max").flatten().tolist() == [3.0, 0.0, 5.0, 0.0]  # empty rows 0, as PyG
    alpha = segment_softmax(src.flatten(), index, 4)
    torch.testing.assert_close(alpha[:2], torch.softmax(torch.tensor([1.0, 3.0]), 0))
    torch.testing.assert_close(alpha[2:], torch.softmax(torch.tensor([-2.0, 5.0]), 0))


def test_unknown_aggregation_is_one_line_config_error():
    with pytest.raises(
        ConfigError, match=r"^unknown aggregation 'maen' \(did you mean: mean, max\?\); choose one of sum, mean, max$"
    ):
        MessagePassing("maen")
    with pytest.raises(ConfigError, match="unknown aggregation 'lstm'"):
        SAGEConv(3, 3, aggr="lstm")


def test_gcn_norm_is_the_symmetric_normalisation():
    """D̂^{-1/2}(A + I)D̂^{-1/2} on a path 0–1–2 (both directions), against the dense formula."""
    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    ei2, w = gcn_norm(ei, 3)
    dense = torch.zeros(3, 3).index_put_((ei2[1], ei2[0]), w, accumulate=True)
    a_hat = torch.tensor([[1.0, 1, 0], [1, 1, 1], [0, 1, 1]])
    d = a_hat.sum(1).rsqrt()
    torch.testing.assert_close(dense, d[:, None] * a_hat * d[None, :])


def test_readouts(graph):
    x, _ = graph
    batch = torch.tensor([0] * 10 + [1] * 20)
    torch.testing.assert_close(global_pool(x, batch, "sum"), torch.stack([x[:10].sum(0), x[10:].sum(0)]))
    torch.testing.assert_close(global_pool(x, batch, "mean"), torch.stack([x[:10].mean(0), x[10:].mean(0)]))
    torch.testing.assert_close(global_pool(x, batch, "max"), torch.stack([x[:10].amax(0), x[10:].amax(0)]))
    att = AttentionReadout(F_IN)
    out = att(x, batch)
    alpha = torch.softmax(att.gate(x[:10]).flatten(), 0)
    torch.testing.assert_close(out[0], (alpha[:, None] * torch.tanh(att.value(x[:10]))).sum(0))
    assert out.shape == (2, F_IN)


def test_bad_graphs_are_one_line_shape_errors(graph):
    x, ei = graph
    with pytest.raises(ShapeError, match=r"node ids must lie in 0…29 \(N = 30 nodes\), got 0…30"):
        check_graph(x, torch.cat([ei, torch.tensor([[0], [30]])], 1))
    with pytest.raises(ShapeError, match=r"node features: expected shape \(N, 11\), got \(30, 12\)"):
        check_graph(x, ei, in_features=11)
    with pytest.raises(ShapeError, match=r"edge_index: expected an integer tensor of shape \(2, E\)"):
        check_graph(x, ei.float())


def test_dropout_keeps_the_distribution():
    torch.manual_seed(6)
    x = torch.ones(400, 500)
    out = dropout(x, 0.5)
    kept = out != 0
    assert set(out.unique().tolist()) == {0.0, 2.0}  # scaled by 1/(1 − p)
    assert kept.float().mean().item() == pytest.approx(0.5, abs=0.005)
    assert out.mean().item() == pytest.approx(1.0, abs=0.01)  # unbiased
    assert dropout(x, 0.5, training=False) is x
    assert (dropout(x, 0.6) != 0).float().mean().item() == pytest.approx(0.4, abs=0.005)


def test_sparse_features_path_equals_the_dense_one(graph):
    """X·Wᵀ through SparseFeatures (CSR X and Xᵀ) gives the dense product and the same weight gradient;
    its dropout touches the stored entries only and keeps the dense dropout's distribution."""
    _, ei = graph
    g = torch.Generator().manual_seed(7)
    x = (torch.rand(N, 40, generator=g) < 0.05).float() * torch.randn(N, 40, generator=g)
    xs = SparseFeatures.from_dense(x)
    assert xs is not None and SparseFeatures.from_dense(torch.randn(N, 40)) is None  # dense stays dense
    for conv in (GCNConv(40, 5), GATConv(40, 3, heads=2), SeedConv(40, 4)):
        conv.eval()
        dense = conv(x, ei)
        w_grad = torch.autograd.grad((dense * dense).sum(), conv.lin.weight)[0]
        sparse = conv(xs, ei)
        torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(torch.autograd.grad((sparse * sparse).sum(), conv.lin.weight)[0], w_grad)
    torch.manual_seed(8)
    ones = SparseFeatures.from_dense((torch.rand(300, 300) < 0.1).float())
    dropped = ones.dropout(0.5)
    dense = dropped.csr()[0].to_dense()
    assert set(dense.unique().tolist()) == {0.0, 2.0} and dropped.values.numel() == ones.values.numel()
    assert (dense != 0).sum().item() / ones.values.numel() == pytest.approx(0.5, abs=0.03)
    torch.testing.assert_close(dropped.csr()[1].to_dense(), dense.T)  # Xᵀ shares the dropped values


def test_tensor_cache_recomputes_for_another_or_modified_tensor():
    cache, calls = TensorCache(), []
    a = torch.tensor([1, 2])
    for _ in range(2):
        cache.get(a, 3, lambda: calls.append("a"))
    cache.get(a.clone(), 3, lambda: calls.append("clone"))  # equal values, another tensor
    cache.get(a, 4, lambda: calls.append("other extra"))
    a.add_(1)
    cache.get(a, 4, lambda: calls.append("modified"))
    assert calls == ["a", "clone", "other extra", "modified"]
