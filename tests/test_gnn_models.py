"""Graph models: the whole GCN against PyG's, read-outs, levels, invariances, bad input, and learning."""

import networkx as nx
import pytest
import torch

from archlab import count_params, create_model
from archlab.registry import get_model_entry, list_models
from archlab.utils.errors import ConfigError, ShapeError

GNN = list_models("gnn")


def _graphs(n_graphs: int = 3, nodes: int = 6, features: int = 6, seed: int = 0):
    """``n_graphs`` random undirected graphs (ring + one chord each) batched PyG-style."""
    g = torch.Generator().manual_seed(seed)
    edges, offset = [], 0
    for _ in range(n_graphs):
        local = torch.arange(nodes)
        ring = torch.stack([local, (local + 1) % nodes])
        chord = torch.tensor([[0], [nodes // 2]])
        e = torch.cat([ring, chord], 1)
        edges.append(torch.cat([e, e.flip(0)], 1) + offset)
        offset += nodes
    x = torch.randn(n_graphs * nodes, features, generator=g)
    return x, torch.cat(edges, 1), torch.arange(n_graphs).repeat_interleave(nodes)


def test_gnn_family_is_registered_with_equations():
    assert set(GNN) == {"seed_gnn", "gcn", "graphsage", "graphsage_max", "gat", "gin", "gin_eps"}
    assert "D̂^{-1/2} Â D̂^{-1/2}" in get_model_entry("gcn").equations()
    assert "LeakyReLU_{0.2}" in get_model_entry("gat").equations()
    assert "(1 + ε^(l))" in get_model_entry("gin").equations()
    assert "σ(Σ_{u ∈ N(v)} W^(l) h_u^(l) + b^(l))" in get_model_entry("seed_gnn").equations()


def test_gcn_model_matches_a_pyg_stack():
    """Kipf & Welling's two-layer network (Eq. 9) against two PyG GCNConv layers with our weights."""
    pyg = pytest.importorskip("torch_geometric.nn")
    torch.manual_seed(0)
    x, ei, _ = _graphs(1, 12)
    ours = create_model("gcn", in_shape=(6,), hidden=5, num_classes=3).eval()
    c1, c2 = pyg.GCNConv(6, 5), pyg.GCNConv(5, 3)
    with torch.no_grad():
        for mine, theirs in zip(ours.convs, (c1, c2), strict=True):
            theirs.lin.weight.copy_(mine.lin.weight)
            theirs.bias.copy_(torch.randn_like(mine.bias))
            mine.bias.copy_(theirs.bias)
    torch.testing.assert_close(ours(x, ei), c2(torch.relu(c1(x, ei)), ei), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("readout", ["sum", "mean", "max", "attention"])
@pytest.mark.parametrize("name", ["gcn", "gat", "graphsage", "gin", "seed_gnn"])
def test_graph_level_is_permutation_invariant(name, readout):
    """A graph's prediction does not depend on the order of its nodes (nodes renumbered inside the batch)."""
    torch.manual_seed(1)
    overrides = {**get_model_entry(name).test_overrides, "in_shape": (6,)}
    model = create_model(name, **overrides, level="graph", readout=readout).eval()
    x, ei, batch = _graphs()
    out = model(x, ei, batch)
    assert out.shape == (3, model.config.num_classes)
    perm = torch.randperm(x.shape[0])
    perm = perm[torch.argsort(batch[perm], stable=True)]  # keep nodes grouped by graph (PyG's layout)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(len(perm))
    torch.testing.assert_close(model(x[perm], inv[ei], batch[perm]), out, atol=1e-5, rtol=1e-5)


def test_node_level_is_permutation_equivariant():
    torch.manual_seed(2)
    model = create_model("gat", in_shape=(6,), heads=2, hidden=3).eval()
    x, ei, _ = _graphs(1, 10)
    perm = torch.randperm(10)
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(10)
    torch.testing.assert_close(model(x[perm], inv[ei]), model(x, ei)[perm], atol=1e-5, rtol=1e-5)


def test_gin_reads_out_every_layer():
    model = create_model("gin", hidden=8)
    assert model.head.in_features == 7 + 4 * 8  # Eq. 4.2: h^(0) … h^(4) concatenated
    assert create_model("gin", hidden=8, readout_layers="last").head.in_features == 8
    with torch.device("meta"):
        assert count_params(create_model("gin_eps")) - count_params(create_model("gin")) == 4  # one ε per layer


def test_residual_connections_in_deep_stacks():
    """h^(l+1) = h^(l) + σ(layer(h^(l))) between hidden layers of equal width: with every GCN weight
    zero a residual stack carries its first hidden state through unchanged."""
    x, ei, _ = _graphs(1, 8)
    model = create_model("gcn", in_shape=(6,), num_layers=6, residual=True, dropout=0.0).eval()
    with torch.no_grad():
        for conv in model.convs[1:]:
            conv.lin.weight.zero_()
    states = model.node_states(x, ei)
    for h in states[2:-1]:
        torch.testing.assert_close(h, states[1])


def test_bad_input_is_one_line():
    model = create_model("gcn", in_shape=(6,))
    x, ei, _ = _graphs(1, 5)
    with pytest.raises(ShapeError, match=r"^node features: expected shape \(N, 6\), got \(5, 7\)$"):
        model(torch.randn(5, 7), ei)
    with pytest.raises(ShapeError, match=r"node ids must lie in 0…4 \(N = 5 nodes\), got 5…9$"):
        model(x, ei + 5)
    with pytest.raises(ConfigError, match=r"^model\.aggr: Input should be 'sum', 'mean' or 'max' \(got lstm\)$"):
        create_model("graphsage", aggr="lstm")
    with pytest.raises(ConfigError, match=r"^model\.readout: "):
        create_model("gin", readout="median")


def test_gcn_learns_karate_club_from_one_label_per_faction():
    """Zachary's karate club, identity features, one labelled node per faction (0 and 33): the GCN
    labels at least 30 of the 34 members correctly (Kipf & Welling §6.1 use this graph)."""
    g = nx.karate_club_graph()
    ei = torch.tensor(list(g.edges)).T
    ei = torch.cat([ei, ei.flip(0)], 1)
    y = torch.tensor([0 if g.nodes[v]["club"] == "Mr. Hi" else 1 for v in g.nodes])
    x = torch.eye(34)
    torch.manual_seed(0)
    model = create_model("gcn", in_shape=(34,), num_classes=2, hidden=16, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    train = torch.tensor([0, 33])
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x, ei)[train], y[train]).backward()
        opt.step()
    correct = int((model.eval()(x, ei).argmax(1) == y).sum())
    assert correct >= 30, correct


@pytest.mark.parametrize("name", ["gcn", "gat"])
def test_bag_of_words_input_takes_the_sparse_path_with_the_same_result(name):
    """Mostly-zero features come back every step (full-batch training): from the second call on, the
    first layer gets them as SparseFeatures — same outputs and gradients as the dense path."""
    torch.manual_seed(9)
    x = (torch.rand(20, 30) < 0.05).float()
    _, ei, _ = _graphs(1, 20)
    model = create_model(name, in_shape=(30,), num_classes=3).eval()
    first = model(x, ei)
    assert not model._sparse_x.holds(x)  # first sight: dense
    second = model(x, ei)
    assert model._sparse_x.holds(x) and model._sparse_x.value is not None
    torch.testing.assert_close(second, first, atol=1e-5, rtol=1e-5)
