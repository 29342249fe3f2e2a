"""Graph data (issue 13 §1): the container's checks, PyG's block-diagonal batching, and the offline
sets — karate (min-cut 33/34), the stochastic block model, FreeSolv (physics baseline RMSE 1.54)."""

import re

import numpy as np
import pytest
import torch

from archlab.cli import main
from archlab.data import BatchLoader, load_dataset
from archlab.data.graph import Graph, GraphDataset, NodeDataset, collate_graphs, undirected
from archlab.data.graph.sets import (
    ATOM_FEATURES,
    BOND_FEATURES,
    freesolv_rows,
    freesolv_split,
    karate_graph,
    karate_min_cut,
    sbm_graph,
)
from archlab.utils.errors import ConfigError, DataError


def _cli(argv, capsys, tmp_path, monkeypatch) -> tuple[int, str]:
    """``archlab ARGV`` in ``tmp_path``: (exit code, the one stderr line); no run dir may be left."""
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err[:3000]
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "a failed command left a run dir"
    return code, err


def _triangle(y=None, **kw) -> Graph:
    return Graph(torch.randn(3, 4), torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), y, **kw)


# -- the container and batching -----------------------------------------------------------------------------
def test_collate_is_pygs_block_diagonal_batch():
    """PyG's ``Batch.from_data_list`` layout, written out for three graphs (3, 1 and 2 nodes)."""
    a = Graph(torch.arange(6.0).view(3, 2), torch.tensor([[0, 1, 2], [1, 2, 0]]), torch.tensor([1.5]), torch.ones(3, 1))
    b = Graph(torch.full((1, 2), 9.0), torch.zeros(2, 0, dtype=torch.long), torch.tensor([2.5]), torch.ones(0, 1))
    c = Graph(torch.zeros(2, 2), torch.tensor([[0, 1], [1, 0]]), torch.tensor([3.5]), torch.full((2, 1), 2.0))
    out = collate_graphs([a, b, c])
    assert torch.equal(out.x, torch.cat([a.x, b.x, c.x]))
    # c's edges are shifted by the 3 + 1 nodes of a and b: block-diagonal adjacency
    assert out.edge_index.tolist() == [[0, 1, 2, 4, 5], [1, 2, 0, 5, 4]]
    assert out.edge_attr.flatten().tolist() == [1, 1, 1, 2, 2]
    assert out.batch.tolist() == [0, 0, 0, 1, 2, 2]
    assert out.y.shape == (3, 1) and out.y.flatten().tolist() == [1.5, 2.5, 3.5]
    assert len(out) == 3 and out.node_mask is None  # a graph batch counts graphs, not nodes
    nodes = collate_graphs([a], node_mask=torch.tensor([True, False, True]))  # node targets concatenate
    assert nodes.node_mask.tolist() == [True, False, True] and len(nodes) == 1


def test_graph_dataset_batches_through_the_plain_loader():
    ds = GraphDataset([_triangle(torch.tensor(float(i))) for i in range(5)], "toy")
    loader = BatchLoader(ds, 2, seed=3)
    b = loader.next()
    assert len(b) == 2 and b.x.shape == (6, 4) and b.edge_index.shape == (2, 8) and b.y.shape == (2,)
    assert b.batch.tolist() == [0, 0, 0, 1, 1, 1]
    sub = ds.subset(torch.tensor([4, 1]), "val")
    assert len(sub) == 2 and sub.split == "val" and sub[torch.arange(2)].y.tolist() == [4.0, 1.0]


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        (Graph(torch.randn(3, 2), torch.tensor([[0, 1], [1, 3]])),
         "edge_index holds node 3 (edge 1) but the graph has 3 nodes (ids 0..2)"),
        (Graph(torch.randn(3, 2), torch.tensor([[0, -1], [1, 2]])), "edge_index holds node -1 (edge 1)"),
        (Graph(torch.randn(3, 2), torch.tensor([0, 1, 2])), "edge_index must be (2, E)"),
        (Graph(torch.randn(3, 2), torch.tensor([[0.0], [1.0]])), "edge_index must hold integer node ids"),
        (Graph(torch.zeros(3, 2, dtype=torch.long), torch.zeros(2, 0, dtype=torch.long)),
         "x must be a float tensor (N, F)"),
        (Graph(torch.tensor([[0.0], [float("nan")]]), torch.zeros(2, 0, dtype=torch.long)), "hold NaN or inf"),
        (Graph(torch.randn(3, 2), torch.tensor([[0], [1]]), edge_attr=torch.randn(2, 5)),
         "edge_attr must be (E, D) with E = 1"),
        (Graph(torch.randn(3, 2), torch.tensor([[0], [1]]), train_mask=torch.tensor([1, 0, 0])),
         "train_mask must be a bool"),
    ],
)  # fmt: skip
def test_a_bad_graph_is_one_line_naming_the_graph(graph, message):
    with pytest.raises(DataError, match="^toy: graph 0: .*" + re.escape(message)):
        GraphDataset([graph], "toy")


def test_features_of_another_width_and_an_empty_mask_are_refused():
    with pytest.raises(DataError, match="toy: graph 1 has 5 node features but graph 0 has 4; every graph"):
        GraphDataset([_triangle(), Graph(torch.randn(2, 5), torch.tensor([[0], [1]]))], "toy")
    g = _triangle(torch.tensor([0, 1, 0]))
    with pytest.raises(DataError, match=r"toy \(val\): the val mask selects no node"):
        NodeDataset(g, torch.zeros(3, dtype=torch.bool), "toy", "val")
    ds = NodeDataset(g, torch.tensor([True, False, True]), "toy", "train")
    with pytest.raises(ConfigError, match="data.val_fraction: 'toy' is one graph whose splits are node masks"):
        ds.subset(torch.arange(0))


def test_undirected_adds_the_reverse_and_drops_loops_and_duplicates():
    e = undirected(torch.tensor([[0, 1, 2, 2], [1, 0, 2, 0]]))
    assert e.tolist() == [[0, 0, 1, 2], [1, 2, 0, 0]]


# -- karate --------------------------------------------------------------------------------------------------
def test_karate_is_zacharys_club_with_one_label_per_faction():
    g = karate_graph()
    assert g.num_nodes == 34 and g.num_edges == 2 * 78 and torch.equal(g.x, torch.eye(34))
    assert g.y.bincount().tolist() == [17, 17] and g.y[0] == 0 and g.y[33] == 1
    train, test = load_dataset("karate", "train"), load_dataset("karate", "test")
    assert train[0].node_mask.nonzero().flatten().tolist() == [0, 33]
    assert int(test[0].node_mask.sum()) == 32 and not (train[0].node_mask & test[0].node_mask).any()
    assert karate_min_cut() == 33  # Zachary's max-flow/min-cut reference: 33 of 34 members


# -- stochastic block model -------------------------------------------------------------------------------------
def test_sbm_is_seeded_and_plants_its_partition():
    a, b = sbm_graph(graph_seed=1), sbm_graph(graph_seed=1)
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.x, b.x)
    assert not torch.equal(a.edge_index, sbm_graph(graph_seed=2).edge_index)
    pure = sbm_graph(
        p_in=0.5,
        p_out=0.0,
        num_blocks=3,
        block_size=20,
        feature_noise=0.0,
        num_features=3,
        train_per_class=2,
        val_per_class=2,
    )
    assert (pure.y[pure.edge_index[0]] == pure.y[pure.edge_index[1]]).all()  # no edge crosses blocks
    assert torch.equal(pure.x, torch.eye(3)[pure.y])  # σ = 0: the class means e_c
    counts = [int(m.sum()) for m in (a.train_mask, a.val_mask, a.test_mask)]
    assert counts == [80, 80, 240] and int((a.train_mask | a.val_mask | a.test_mask).sum()) == 400
    # expected degree of the default graph: 99·0.1 + 300·0.02 = 15.9
    assert a.num_edges / 400 == pytest.approx(15.9, rel=0.05)


@pytest.mark.parametrize(
    ("options", "message"),
    [({"p_in": 1.5}, "data.options.p_in: an edge probability must be in [0, 1] (got 1.5)"),
     ({"num_features": 2}, "data.options.num_features: needs one dimension per block"),
     ({"train_per_class": 90}, "data.options.train_per_class: train_per_class + val_per_class must leave")],
)  # fmt: skip
def test_sbm_bad_options_are_one_line(options, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_dataset("sbm", "train", options=options)


# -- FreeSolv -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def freesolv_train():
    return load_dataset("freesolv", "train")


def test_freesolv_molecules_are_graphs_with_atom_and_bond_features(freesolv_train):
    assert len(freesolv_train) == 513
    b = freesolv_train[torch.arange(len(freesolv_train))]
    assert (
        b.x.shape[1] == sum(ATOM_FEATURES.values()) == 28 and b.edge_attr.shape[1] == sum(BOND_FEATURES.values()) == 6
    )
    assert torch.equal(b.x[:, :10].sum(1), torch.ones(len(b.x)))  # exactly one element per atom
    assert torch.equal(b.edge_attr[:, :4].sum(1), torch.ones(b.edge_attr.shape[0]))  # one bond type per edge
    rows = freesolv_rows("train")
    assert torch.allclose(b.y, torch.tensor(rows["expt"].to_numpy(), dtype=torch.float32))
    from rdkit import Chem

    for i, smiles in enumerate(rows["smiles"][:20]):  # a node per heavy atom, two directed edges per bond
        mol, g = Chem.MolFromSmiles(smiles), freesolv_train[i]
        assert g.x.shape[0] == mol.GetNumAtoms() and g.edge_index.shape[1] == 2 * mol.GetNumBonds(), smiles
        aromatic = sum(b.GetIsAromatic() for b in mol.GetBonds())
        assert int(g.edge_attr[:, 3].sum()) == 2 * aromatic and int(g.x[:, 22].sum()) == sum(
            a.GetIsAromatic() for a in mol.GetAtoms()
        )


@pytest.mark.parametrize("split_by", ["random", "scaffold"])
def test_freesolv_splits_partition_the_table_and_scaffolds_do_not_leak(split_by):
    from rdkit.Chem.Scaffolds import MurckoScaffold

    s = freesolv_split(split_by, 0)
    every = np.concatenate([s["train"], s["val"], s["test"]])
    assert np.array_equal(np.sort(every), np.arange(642))
    assert abs(len(s["train"]) - 514) <= 1 and abs(len(s["val"]) - 64) <= 1
    if split_by == "scaffold":
        smiles = (
            freesolv_rows("train", split_by="scaffold")["smiles"],
            freesolv_rows("test", split_by="scaffold")["smiles"],
        )
        scaf = [{MurckoScaffold.MurckoScaffoldSmiles(smiles=m) for m in part} for part in smiles]
        assert not scaf[0] & scaf[1]


def test_freesolv_physics_baseline_is_the_published_154():
    rows = freesolv_rows("test")
    everything = np.concatenate([freesolv_rows(s)[["expt", "calc"]].to_numpy() for s in ("train", "val", "test")])
    rmse = float(np.sqrt(np.mean((everything[:, 0] - everything[:, 1]) ** 2)))
    assert rmse == pytest.approx(1.54, abs=0.005)  # Mobley & Guthrie 2014 / MoleculeNet
    assert len(rows) == 65


# -- bad input through the CLI: one line, exit 2, no run dir ---------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "sbm/mlp", "data.options.train_per_class=0"], "sbm (train): the train mask selects no node"),
        (["train", "karate/mlp", "model.in_shape=[10]"],
         "model.in_shape: [10] does not match the (34,) node features of data set 'karate'"),
        (["train", "karate/mlp", "data.val_fraction=0.9"], "data.val_fraction: 'karate' is one graph"),
        (["train", "karate/mlp", "task.name=graph_regression"],
         "task.name: dataset 'karate' serves node_classification"),
    ],
)  # fmt: skip
def test_bad_graph_input_through_the_cli_is_one_line(argv, message, capsys, tmp_path, monkeypatch):
    code, err = _cli(argv, capsys, tmp_path, monkeypatch)
    assert code == 2 and message in err, err
