"""Real-format graph loaders on tiny files written here (issue 13 §1): Planetoid's raw pickles decoded
opcode by opcode (nothing is unpickled, no code from a file ever runs), the TU text format (folder or zip), the
checksummed download path, and bad files as one line through the CLI."""

import collections
import hashlib
import io
import os
import pickle
import re
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import archlab.data.download as dl
from archlab.cli import main
from archlab.data import load_dataset
from archlab.data.graph.formats import load_pickled_data, read_planetoid
from archlab.utils.errors import ConfigError, DataError

F, C = 1433, 7  # Cora's widths: the loader checks the files against them


def _cli(argv, capsys, tmp_path, monkeypatch) -> tuple[int, str]:
    monkeypatch.chdir(tmp_path)
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err[:3000]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    return code, err


def _dump(path, obj) -> None:
    path.write_bytes(pickle.dumps(obj, protocol=2))


@pytest.fixture(scope="module")
def cora_dir(tmp_path_factory):
    """A 12-node 'cora': 7 labelled training nodes (x/y), 8 training+unlabelled (allx/ally), and 4
    test nodes (tx/ty) whose ids (8..11) are listed out of order in test.index."""
    d = tmp_path_factory.mktemp("cora")
    rng = np.random.default_rng(0)
    allx = sp.random(8, F, density=0.01, format="csr", random_state=1, dtype=np.float32)
    tx = sp.random(4, F, density=0.01, format="csr", random_state=2, dtype=np.float32)
    labels = np.array([0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4])
    onehot = np.eye(C, dtype=np.float32)
    test_index = [10, 8, 11, 9]  # row k of tx/ty is node test_index[k]
    _dump(d / "ind.cora.x", allx[:7])
    _dump(d / "ind.cora.allx", allx)
    _dump(d / "ind.cora.tx", tx)
    _dump(d / "ind.cora.y", onehot[labels[:7]])
    _dump(d / "ind.cora.ally", onehot[labels[:8]])
    _dump(d / "ind.cora.ty", onehot[labels[test_index]])
    graph = collections.defaultdict(list, {0: [1, 8], 1: [0], 8: [0, 11], 11: [8], 5: [5]})
    _dump(d / "ind.cora.graph", graph)
    (d / "ind.cora.test.index").write_text("\n".join(map(str, test_index)) + "\n")
    return d, allx, tx, labels, test_index, rng


def test_planetoid_raw_files_load_in_graph_order_with_the_published_split(cora_dir):
    d, allx, tx, labels, test_index, _ = cora_dir
    g = read_planetoid(d, "cora")
    assert g.num_nodes == 12 and g.x.shape == (12, F)
    assert torch.equal(g.y, torch.from_numpy(labels))  # test rows put back in graph order
    assert torch.equal(g.x[:8], torch.from_numpy(allx.toarray()))
    for k, node in enumerate(test_index):
        assert torch.equal(g.x[node], torch.from_numpy(tx.toarray()[k]))
    assert g.train_mask.nonzero().flatten().tolist() == list(range(7))
    assert g.val_mask.nonzero().flatten().tolist() == [7, 8, 9, 10, 11]  # the next 500, as many as exist
    assert g.test_mask.nonzero().flatten().tolist() == [8, 9, 10, 11]
    # undirected, the self-loop 5–5 dropped: {0–1, 0–8, 8–11} both ways
    assert sorted(map(tuple, g.edge_index.t().tolist())) == [(0, 1), (0, 8), (1, 0), (8, 0), (8, 11), (11, 8)]
    ds = load_dataset("cora", "test", data_dir=str(d))
    assert int(ds[0].node_mask.sum()) == 4 and ds[0].x.shape == (12, F)


def test_a_pickle_that_names_any_other_callable_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "ind.cora.x"
    _dump(path, Evil())
    with pytest.raises(DataError, match=re.escape(f"{path}: refusing to unpickle 'posix.system'")):
        load_pickled_data(path)
    assert not marker.exists()
    path.write_bytes(pickle.dumps(np.arange(3))[:-5])  # truncated
    with pytest.raises(DataError, match="not a readable Planetoid file"):
        load_pickled_data(path)
    path.write_bytes(b"\0" * 100)
    with pytest.raises(DataError, match="more than the 50 a Planetoid file can have"):
        load_pickled_data(path, max_bytes=50)


def test_only_plain_data_opcodes_and_the_table_of_constructors_are_decoded(tmp_path):
    """Protocol 0's INST (an instance built by calling its class), an object array and a call of an
    allowed global with other arguments are refused; numbers, lists, dicts, arrays and CSR matrices
    come back equal to what was pickled."""
    from archlab.data.graph.pickled import decode_pickle_data

    data = {"a": [1, 2.5, None, True], "b": np.arange(6, dtype=">i4").reshape(2, 3), "c": sp.csr_matrix(np.eye(3))}
    out = decode_pickle_data(pickle.dumps(data, protocol=2), "t")
    assert out["a"] == [1, 2.5, None, True] and out["b"].dtype == np.dtype(">i4")
    np.testing.assert_array_equal(out["b"], data["b"])
    assert (out["c"] != data["c"]).nnz == 0
    np.testing.assert_array_equal(decode_pickle_data(pickle.dumps(np.eye(2).T, protocol=2), "t"), np.eye(2))
    with pytest.raises(DataError, match="opcode INST is not plain data"):
        decode_pickle_data(pickle.dumps(collections.OrderedDict(), protocol=0).replace(b"c", b"i", 1), "t")
    with pytest.raises(DataError, match="an array of Python objects"):
        decode_pickle_data(pickle.dumps(np.array([1, "x"], dtype=object), protocol=2), "t")
    with pytest.raises(DataError, match="refusing to unpickle 'builtins.eval'"):
        decode_pickle_data(b"\x80\x02cbuiltins\neval\nX\x01\x00\x00\x001\x85R.", "t")


def test_planetoid_bad_files_are_one_line_through_the_cli(cora_dir, tmp_path, capsys, monkeypatch):
    src = cora_dir[0]
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in src.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    _dump(bad / "ind.cora.graph", {0: [1, 40]})  # node 40 of a 12-node graph
    code, err = _cli(["train", "karate/mlp", "data.name=cora", "--data-dir", str(bad)], capsys, tmp_path, monkeypatch)
    assert code == 2 and "ind.cora.graph: edge to node 40 but the data set has 12 nodes (ids 0..11)" in err
    argv = ["train", "karate/mlp", "data.name=cora", "--data-dir", str(tmp_path / "missing")]
    code, err = _cli(argv, capsys, tmp_path, monkeypatch)
    assert code == 2 and "is not a directory" in err


# -- TU -----------------------------------------------------------------------------------------------------------
def _toy(copies: int = 5) -> dict[str, str]:
    """``copies`` × (a triangle with label 1, an edge with label −1): 5 nodes and 8 A-lines per copy."""
    files = dict.fromkeys(("A", "graph_indicator", "graph_labels", "node_labels", "edge_labels"), "")
    for k in range(copies):
        o = 5 * k  # nodes before this copy
        pairs = [(1, 2), (2, 1), (2, 3), (3, 2), (1, 3), (3, 1), (4, 5), (5, 4)]
        files["A"] += "".join(f"{i + o}, {j + o}\n" for i, j in pairs)
        files["graph_indicator"] += f"{2 * k + 1}\n" * 3 + f"{2 * k + 2}\n" * 2
        files["graph_labels"] += "1\n-1\n"
        files["node_labels"] += "0\n2\n1\n0\n0\n"
        files["edge_labels"] += "0\n0\n1\n1\n0\n0\n1\n1\n"
    return files


TOY = _toy()
TOY_OPTIONS = {"name": "TOY", "num_node_features": 3, "num_classes": 2}


def _write_tu(folder, files=TOY, name="TOY"):
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, text in files.items():
        (folder / f"{name}_{suffix}.txt").write_text(text)
    return folder


def _zip_bytes(files=TOY, name="TOY") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for suffix, text in files.items():
            z.writestr(f"{name}/{name}_{suffix}.txt", text)
    return buf.getvalue()


def _all_graphs(data_dir, **options):
    parts = [
        load_dataset("tu", s, data_dir=data_dir, options={**TOY_OPTIONS, **options}) for s in ("train", "val", "test")
    ]
    return [g for p in parts for g in p.graphs]


def test_tu_text_files_become_graphs_with_one_hot_labels(tmp_path):
    graphs = _all_graphs(str(_write_tu(tmp_path / "TOY")))
    assert len(graphs) == 10 and sorted(g.num_nodes for g in graphs) == [2] * 5 + [3] * 5
    tri, pair = sorted(graphs, key=lambda g: -g.num_nodes)[4:6]
    assert torch.equal(tri.x, torch.eye(3)[[0, 2, 1]]) and torch.equal(pair.x, torch.eye(3)[[0, 0]])
    assert tri.edge_index.t().tolist() == [[0, 1], [1, 0], [1, 2], [2, 1], [0, 2], [2, 0]]
    assert pair.edge_index.t().tolist() == [[0, 1], [1, 0]]  # node ids restart in each graph
    assert (int(tri.y), int(pair.y)) == (1, 0)  # labels 1 / −1 → classes 1 / 0
    assert torch.equal(tri.edge_attr, torch.eye(2)[[0, 0, 1, 1, 0, 0]])


def test_tu_zip_is_read_in_place_and_downloads_are_checksummed(tmp_path, monkeypatch):
    blob = _zip_bytes()
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "TOY.zip").write_bytes(blob)
    assert len(_all_graphs(str(tmp_path / "local"))) == 10
    assert not (tmp_path / "local" / "TOY").exists()  # nothing extracted

    class Response(io.BytesIO):
        def geturl(self):
            return "https://www.chrsmrrs.com/graphkerneldatasets/TOY.zip"

    served = []
    monkeypatch.setattr(dl, "_urlopen", lambda req, timeout: served.append(req.full_url) or Response(blob))
    monkeypatch.setenv("ARCHLAB_DOWNLOAD", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ARCHLAB_DATA_DIR", raising=False)
    with pytest.raises(ConfigError, match="no sha256 pinned for TOY.zip; archlab never downloads an unverified file"):
        load_dataset("tu", "train", options=TOY_OPTIONS)
    with pytest.raises(DataError, match="sha256 mismatch"):
        load_dataset("tu", "train", options={**TOY_OPTIONS, "sha256": "TOY.zip=" + "0" * 64})
    assert not list((tmp_path / "cache").rglob("*.part")) and not list((tmp_path / "cache").rglob("TOY.zip"))
    digest = hashlib.sha256(blob).hexdigest()
    train = load_dataset("tu", "train", options={**TOY_OPTIONS, "sha256": f"TOY.zip={digest}"})
    assert len(train) == 8 and served == ["https://www.chrsmrrs.com/graphkerneldatasets/TOY.zip"] * 2
    assert (tmp_path / "cache" / "archlab" / "TOY" / "TOY.zip").read_bytes() == blob


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"A": TOY["A"] + "25, 99\n"}, "TOY_A.txt: line 41 is edge (25, 99) but there are 25 nodes (ids 1..25)"),
        ({"A": TOY["A"] + "3, 4\n"}, "TOY_A.txt: line 41 joins nodes of two different graphs"),
        ({"graph_labels": "1\n"}, "TOY_graph_labels.txt: 1 labels for 10 graphs"),
        ({"node_labels": "0\n1\n" * 12 + "0\n"}, "TOY graphs have 2 node features but the data set has 3"),
        # a third label on a 2-class set indexed past the classifier mid-run (or in the probe, by chance)
        (
            {"graph_labels": "1\n-1\n2\n" + "1\n-1\n" * 3 + "1\n"},
            "TOY_graph_labels.txt holds 3 distinct labels but the data set has 2 classes",
        ),
        ({"A": ""}, "TOY_A.txt: empty"),
    ],
)
def test_bad_tu_files_are_one_line_through_the_cli(tmp_path, capsys, monkeypatch, change, message):
    folder = _write_tu(tmp_path / "data" / "TOY", {**TOY, **change})
    argv = ["train", "karate/mlp", "data.name=tu", "task.name=graph_classification",
            "data.options={name: TOY, num_node_features: 3, num_classes: 2}",
            "--data-dir", str(folder.parent)]  # fmt: skip
    code, err = _cli(argv, capsys, tmp_path, monkeypatch)
    assert code == 2 and message in err, err


def test_an_unknown_tu_set_needs_its_widths():
    with pytest.raises(ConfigError, match="data.options.name: 'NOPE' is not one of MUTAG"):
        load_dataset("tu", "train", options={"name": "NOPE"})


def test_the_shipped_real_format_recipes_train_on_tiny_files(cora_dir, tmp_path):
    """cora/gcn (Kipf & Welling's set-up) and tu/gin (GIN-0) run end to end on the files written here."""
    from archlab.config import load_recipe
    from archlab.engine import Trainer

    short = {"budget.steps": 4, "eval.every": 2, "checkpoint.every": 4, "log.progress": False, "log.tensorboard": False}
    cora = Trainer(load_recipe("cora/gcn", {**short, "data.data_dir": str(cora_dir[0])}), runs_dir=tmp_path).fit()
    assert cora["steps"] == 4 and cora["params"] == 23_063 and 0.0 <= cora["test"]["accuracy"] <= 1.0
    folder = _write_tu(tmp_path / "tu" / "TOY")
    over = {**short, "data.data_dir": str(folder.parent), "data.options": TOY_OPTIONS, "data.batch_size": 4}
    tu = Trainer(load_recipe("tu/gin", over), runs_dir=tmp_path).fit()
    assert tu["task"] == "graph_classification" and tu["train_examples"] == 8 and tu["test_examples"] == 1
    assert tu["test"]["accuracy"] in (0.0, 1.0)  # one test graph


def test_planetoid_downloads_check_the_pinned_digests(tmp_path, monkeypatch):
    """The published Planetoid files' sha256 are pinned (hashed from kimiyoung/planetoid, the files
    PyG downloads): a download needs no digest from the user, and a file that is not the published
    one is refused, nothing kept. A file we could not hash (ind.pubmed.allx) still needs the user's."""
    from archlab.data.graph.formats import PLANETOID_FILES, PLANETOID_SHA256

    assert {f"ind.cora.{k}" for k in PLANETOID_FILES} <= set(PLANETOID_SHA256)
    assert {f"ind.citeseer.{k}" for k in PLANETOID_FILES} <= set(PLANETOID_SHA256)
    assert PLANETOID_SHA256["ind.cora.test.index"] == "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875"

    served = []

    class Response(io.BytesIO):
        def geturl(self):
            return served[-1]

    def fake(req, timeout):
        served.append(req.full_url)
        return Response(b"not the published file")

    monkeypatch.setattr(dl, "_urlopen", fake)
    monkeypatch.setenv("ARCHLAB_DOWNLOAD", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("ARCHLAB_DATA_DIR", raising=False)
    with pytest.raises(DataError, match="sha256 mismatch"):
        load_dataset("cora", "train")
    assert served == ["https://github.com/kimiyoung/planetoid/raw/master/data/ind.cora.x"]
    assert not list((tmp_path / "cache").rglob("ind.cora.*"))  # neither the file nor its .part
    with pytest.raises(ConfigError, match="no sha256 pinned for ind.pubmed.allx"):
        _pubmed_allx(tmp_path)


def _pubmed_allx(tmp_path):
    """Every pubmed file but allx already in the cache: only allx is fetched, and it has no pin."""
    from archlab.data.graph.formats import PLANETOID_FILES

    cache = tmp_path / "cache" / "archlab" / "pubmed"
    cache.mkdir(parents=True)
    for k in PLANETOID_FILES:
        if k != "allx":
            (cache / f"ind.pubmed.{k}").write_bytes(b"")
    return load_dataset("pubmed", "train")


def test_a_corrupt_tu_zip_or_a_missing_member_is_one_line(tmp_path):
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "TOY.zip").write_bytes(b"PK\x03\x04 not a zip")  # was a zipfile.BadZipFile traceback
    with pytest.raises(DataError, match=r"TOY.zip: not a readable zip archive \(File is not a zip file\)"):
        load_dataset("tu", "train", data_dir=str(tmp_path / "bad"), options=TOY_OPTIONS)
    (tmp_path / "part").mkdir()
    (tmp_path / "part" / "TOY.zip").write_bytes(_zip_bytes({k: v for k, v in TOY.items() if k != "graph_labels"}))
    with pytest.raises(DataError, match=r"TOY_graph_labels.txt: not in the archive"):  # was StopIteration
        load_dataset("tu", "train", data_dir=str(tmp_path / "part"), options=TOY_OPTIONS)
    folder = _write_tu(tmp_path / "dir" / "TOY", {k: v for k, v in TOY.items() if k != "graph_indicator"})
    with pytest.raises(DataError, match=r"TOY_graph_indicator.txt: missing; a TU set needs"):
        load_dataset("tu", "train", data_dir=str(folder), options=TOY_OPTIONS)


def test_planetoid_test_ids_that_would_allocate_without_bound_are_one_line(cora_dir, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in cora_dir[0].iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "ind.cora.test.index").write_text("8\n9\n10\n99999999999\n")  # was a 521 TiB allocation: MemoryError
    with pytest.raises(DataError, match=r"test node ids span 8..99999999999, more than twice the 4 test rows"):
        load_dataset("cora", "train", data_dir=str(bad))
    (bad / "ind.cora.test.index").write_text("8\n8\n9\n10\n")
    with pytest.raises(DataError, match=r"ind.cora.test.index: test node 8 is listed twice"):
        load_dataset("cora", "train", data_dir=str(bad))
