"""Real-format graph loaders: Planetoid (Cora, CiteSeer, PubMed raw files) and the TU
graph-classification format, with the checksummed download path of the image sets.

Neither set is on these machines (no internet); a user with the files passes ``--data-dir DIR``
(or ``$ARCHLAB_DATA_DIR``), and ``ARCHLAB_DOWNLOAD=1`` fetches them over https, verified before
use (``data/download.py``: ``.part`` file, checksum, rename). Tests write tiny files in both formats.

**Planetoid** (Yang, Cohen & Salakhutdinov 2016; the files of github.com/kimiyoung/planetoid):
``ind.<name>.{x,tx,allx,y,ty,ally,graph}`` and ``ind.<name>.test.index``. Seven of the eight files
are Python 2 pickles (scipy CSR matrices, numpy arrays, a ``defaultdict`` of adjacency lists), and
unpickling runs whatever callables a file names — archlab never unpickles them. Their opcodes are
decoded by :mod:`archlab.data.graph.pickled`, which builds numpy arrays, CSR matrices and dicts
from the plain values in the stream, refuses any other global or opcode in one line, and is given
at most :data:`MAX_PICKLE_BYTES` per file. We chose this over refusing the format because these
files are the only published form of the three sets and every GNN paper's split is defined by
them; no code from a file can run, and a crafted file is bounded by the size cap. The split is the published one
(Kipf & Welling 2017): train = the first ``len(y)`` nodes (20 per class), val = the next 500,
test = the 1,000 nodes of ``test.index``, whose rows are put back in graph order (as PyG does;
CiteSeer's isolated test nodes get zero features).

**TU** (Morris et al. 2020, chrsmrrs.com/graphkerneldatasets): plain text ``<DS>_A.txt`` (one
``i, j`` edge per line, 1-based node ids over all graphs), ``<DS>_graph_indicator.txt`` (node →
graph, 1-based), ``<DS>_graph_labels.txt``, optional ``<DS>_node_labels.txt`` (one-hot node
features), ``<DS>_node_attributes.txt`` (real node features, before the one-hot labels), and
``<DS>_edge_labels.txt`` (one-hot edge features). Read from a folder, or from the members of the
official ``<DS>.zip`` without extracting it. Node ids must lie in their graph's range: an edge
out of range is one line naming the line. Split: a seeded 80/10/10 random split of the graphs
(the sets have no official split; GIN's protocol is 10-fold cross-validation).
"""

from __future__ import annotations

import functools
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from archlab.data.core import register_dataset
from archlab.data.download import download
from archlab.data.graph.core import Graph, GraphDataset, GraphInfo, NodeDataset, undirected
from archlab.data.graph.pickled import decode_pickle_data
from archlab.data.images import DOWNLOAD_ENV, _download_opted_in, _not_found, cache_dir, candidate_dirs
from archlab.utils.errors import ConfigError, DataError

MAX_PICKLE_BYTES = 1 << 30  # PubMed's largest raw file is ~40 MB
MAX_TEXT_BYTES = 1 << 30  # a TU member (REDDIT-MULTI-12K's _A.txt is ~90 MB)


def load_pickled_data(path: str | os.PathLike, max_bytes: int = MAX_PICKLE_BYTES) -> Any:
    """The arrays / CSR matrix / adjacency dict in a Planetoid pickle file, decoded by
    :func:`~archlab.data.graph.pickled.decode_pickle_data` (nothing is unpickled); files over
    ``max_bytes`` are refused. Raises DataError (one line)."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise DataError(
            f"{path}: {size} bytes is more than the {max_bytes} a Planetoid file can have; not a Planetoid file"
        )
    return decode_pickle_data(path.read_bytes(), str(path))


# ------------------------------------------------------------------------------------------- Planetoid

PLANETOID = {  # name → (node features F, classes C, nodes), as published (Yang et al. 2016, Table 2)
    "cora": (1433, 7, 2708),
    "citeseer": (3703, 6, 3327),
    "pubmed": (500, 3, 19717),
}
PLANETOID_FILES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")
PLANETOID_URL = "https://github.com/kimiyoung/planetoid/raw/master/data"
# sha256 of the published files, hashed from kimiyoung/planetoid at commit af6abf4 (the files PyG's
# Planetoid downloads). ind.pubmed.allx was not in the copy we could read: its digest comes from
# the user (data.options.sha256 = "file=digest,file=digest,...", which also overrides a pinned one).
PLANETOID_SHA256 = {
    "ind.citeseer.allx": "2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668",
    "ind.citeseer.ally": "f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95",
    "ind.citeseer.graph": "d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7",
    "ind.citeseer.test.index": "2af990671580b6b2df5d158d1038f8292e30c9cd821b5453f399659b25b723d4",
    "ind.citeseer.tx": "539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21",
    "ind.citeseer.ty": "55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce",
    "ind.citeseer.x": "d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6",
    "ind.citeseer.y": "8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924",
    "ind.cora.allx": "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543",
    "ind.cora.ally": "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71",
    "ind.cora.graph": "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d",
    "ind.cora.test.index": "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875",
    "ind.cora.tx": "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a",
    "ind.cora.ty": "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad",
    "ind.cora.x": "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab",
    "ind.cora.y": "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1",
    "ind.pubmed.ally": "0c37bbe3b5014ec365e9d393cf4791925e5ed94fb194305d74f064a8d7b50f0e",
    "ind.pubmed.graph": "5b89f0036ca22909471f1e6558eb42fa06e0c730a577bde5b058b40638f81dc9",
    "ind.pubmed.test.index": "b101d421688bbaecbd82e8a18f1e282378d6830f3a37666f28ebc47f844341b5",
    "ind.pubmed.tx": "4eb5f5d0f30f26497eb0ac6ac9719d09c67e284f1ed0385c93f3ef27a671da3d",
    "ind.pubmed.ty": "ee2e0d4819d9fbcc403689c3bf2e49face401b605932f093bc58ab6461130fdd",
    "ind.pubmed.x": "fbe9cb5c47200d1b7769a26e579be3b7130b556831f9d850e77c4c74f2599b33",
    "ind.pubmed.y": "e6c807633307a07ed659249006536a147c7999c797f11a2560752990181b41b3",
}


def _dense(m: Any, where: str, rows_max: int) -> np.ndarray:
    import scipy.sparse

    if scipy.sparse.issparse(m):
        if m.shape[0] > rows_max or m.shape[1] > 100_000:
            raise DataError(f"{where}: a {m.shape} matrix is larger than any Planetoid set")
        return np.asarray(m.todense(), dtype=np.float32)
    if isinstance(m, np.ndarray) and m.dtype != object and m.ndim == 2:
        return m.astype(np.float32)
    raise DataError(f"{where}: expected a 2-D matrix, got {type(m).__name__}")


def read_planetoid(directory: str | os.PathLike, name: str) -> Graph:
    """The Planetoid graph ``name`` from the raw files in ``directory`` (see the module docstring)."""
    d = Path(directory)
    p = {k: d / f"ind.{name}.{k}" for k in PLANETOID_FILES}
    missing = [str(f.name) for f in p.values() if not f.is_file()]
    if missing:
        raise DataError(f"{d}: missing {', '.join(missing)}; a Planetoid folder holds ind.{name}.{{x,tx,…,test.index}}")
    limit = 100_000
    x, tx, allx = (_dense(load_pickled_data(p[k]), str(p[k]), limit) for k in ("x", "tx", "allx"))
    y, ty, ally = (_dense(load_pickled_data(p[k]), str(p[k]), limit) for k in ("y", "ty", "ally"))
    graph = load_pickled_data(p["graph"])
    if not isinstance(graph, dict) or not all(isinstance(v, list) for v in graph.values()):
        raise DataError(f"{p['graph']}: expected a dict of adjacency lists, got {type(graph).__name__}")
    try:
        test_index = np.array([int(line) for line in p["test.index"].read_text().split()], dtype=np.int64)
    except ValueError as e:
        raise DataError(f"{p['test.index']}: expected one node id per line ({e})") from e
    if tx.shape[1] != allx.shape[1] or x.shape[1] != allx.shape[1]:
        raise DataError(
            f"{d}: features of different widths (x {x.shape[1]}, tx {tx.shape[1]}, allx {allx.shape[1]}); "
            "the files are not from one data set"
        )
    if len(ty) != len(tx) or len(ally) != len(allx) or len(y) != len(x) or len(test_index) != len(tx):
        raise DataError(
            f"{d}: row counts disagree (x/y, tx/ty/test.index, allx/ally); the files are not from one data set"
        )
    if not len(test_index) or not len(allx):
        raise DataError(f"{d}: no test nodes or no training nodes; the files are not a Planetoid data set")
    n_all = len(allx)
    lo, hi = int(test_index.min()), int(test_index.max())
    if lo < n_all:
        raise DataError(f"{p['test.index']}: test node {lo} is among the {n_all} training/unlabelled nodes")
    sorted_test = np.sort(test_index)
    if (np.diff(sorted_test) == 0).any():
        twice = int(sorted_test[1:][np.diff(sorted_test) == 0][0])
        raise DataError(f"{p['test.index']}: test node {twice} is listed twice")
    span = hi - lo + 1  # CiteSeer: isolated test nodes are missing from tx; they get zero rows
    if span > 2 * len(tx):  # CiteSeer's gaps: 15 ids among 1,000; a wider span is not a Planetoid file
        raise DataError(
            f"{p['test.index']}: test node ids span {lo}..{hi}, more than twice the {len(tx)} test rows of "
            f"ind.{name}.tx; the files are not from one data set"
        )
    tx_ext, ty_ext = np.zeros((span, tx.shape[1]), np.float32), np.zeros((span, ty.shape[1]), np.float32)
    tx_ext[sorted_test - lo], ty_ext[sorted_test - lo] = tx, ty
    feats, labels = np.concatenate([allx, tx_ext]), np.concatenate([ally, ty_ext])
    feats[test_index], labels[test_index] = feats[sorted_test], labels[sorted_test]  # back into graph order
    n = len(feats)
    src = [int(u) for u, vs in graph.items() for _ in vs]
    dst = [int(v) for vs in graph.values() for v in vs]
    edges = torch.tensor([src, dst], dtype=torch.long).reshape(2, -1)
    if edges.numel() and (int(edges.min()) < 0 or int(edges.max()) >= n):
        bad = int(edges.max()) if int(edges.max()) >= n else int(edges.min())
        raise DataError(f"{p['graph']}: edge to node {bad} but the data set has {n} nodes (ids 0..{n - 1})")
    masks = [torch.zeros(n, dtype=torch.bool) for _ in range(3)]
    masks[0][: len(y)] = True
    masks[1][len(y) : len(y) + 500] = True
    masks[2][torch.from_numpy(test_index)] = True
    g = Graph(torch.from_numpy(feats), undirected(edges), torch.from_numpy(labels.argmax(1)).long(), None, *masks)
    return g.check(f"{name} ({d})")


def _remote_digests(spec: str, option: str) -> dict[str, str]:
    out = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        fname, _, digest = item.partition("=")
        if len(digest) != 64 or not all(c in "0123456789abcdefABCDEF" for c in digest):
            raise ConfigError(f"data.options.{option}: '{item[:80]}' is not FILE=SHA256 (64 hex digits)")
        out[fname.strip()] = digest.lower()
    return out


def _fetch_pinned(url: str, dest: Path, digests: dict[str, str], option: str) -> Path:
    if dest.name not in digests:
        raise ConfigError(
            f"data.options.{option}: no sha256 pinned for {dest.name}; archlab never downloads an unverified file — "
            f"pass {option}='{dest.name}=<sha256 you trust>,...' or place the files in a folder and pass --data-dir"
        )
    return download(url, dest, sha256=digests[dest.name])


@functools.lru_cache(maxsize=4)
def _planetoid_cached(directory: str, name: str) -> Graph:
    return read_planetoid(directory, name)


def resolve_planetoid_dir(name: str, data_dir: str | None, sha256: str) -> Path:
    """The first candidate folder (``--data-dir``, ``$ARCHLAB_DATA_DIR``, the cache) with every
    raw file of ``name``; else, with ``ARCHLAB_DOWNLOAD=1``, a checked download into the cache."""
    files = [f"ind.{name}.{k}" for k in PLANETOID_FILES]
    looked = candidate_dirs(name, data_dir)
    for d in looked:
        for c in (d, d / "raw", d / name / "raw"):
            if all((c / f).is_file() for f in files):
                return c
    if not _download_opted_in():
        raise _not_found(name, f"the Planetoid raw files ({files[0]} … {files[-1]})", looked, "")
    dest, digests = cache_dir(name), {**PLANETOID_SHA256, **_remote_digests(sha256, "sha256")}
    for f in files:
        if not (dest / f).is_file():
            _fetch_pinned(f"{PLANETOID_URL}/{f}", dest / f, digests, "sha256")
    return dest


def _planetoid_info(name: str, **o: Any) -> GraphInfo:
    f, c, n = PLANETOID[name]
    return GraphInfo(
        name=name,
        kind="graph",
        task="node_classification",
        input_shape=(f,),
        num_classes=c,
        splits={"train": 20 * c, "val": 500, "test": 1000},
        source=f"Planetoid raw files ind.{name}.* (github.com/kimiyoung/planetoid), decoded without unpickling",
        licence="research use (Planetoid / LINQS)",
        citation="Yang, Cohen & Salakhutdinov, Revisiting Semi-Supervised Learning with Graph Embeddings, ICML 2016",
        reference={
            "GCN (Kipf & Welling 2017, Table 2, published)": {"cora": "81.5%", "citeseer": "70.3%", "pubmed": "79.0%"}[
                name
            ]
        },
        notes=f"{n} nodes; not here: --data-dir DIR with the raw files, or {DOWNLOAD_ENV}=1 (sha256 pinned)",
        level="node",
    )


def _register_planetoid(name: str) -> None:
    options = {"sha256": ""}

    @register_dataset(_planetoid_info(name), options=options)
    def load(split: str, data_dir: str | None = None, sha256: str = "") -> NodeDataset:
        d = resolve_planetoid_dir(name, data_dir, sha256)
        g = _planetoid_cached(str(d), name)
        f, c, _ = PLANETOID[name]
        if g.x.shape[1] != f or int(g.y.max()) >= c:
            raise DataError(
                f"{d}: {g.x.shape[1]} features and {int(g.y.max()) + 1} classes, but {name} has {f} and {c}"
            )
        return NodeDataset(g, g.mask(split), name, split)


for _name in PLANETOID:
    _register_planetoid(_name)

# ------------------------------------------------------------------------------------------------- TU

# name → (node features F, edge features D, graph classes C, graphs) of the sets users ask for most, read as
# described above: one-hot node labels (+ node attributes where the set has them and use_attributes),
# or a constant 1 for sets without node labels (IMDB-BINARY)
TU_SETS = {
    "MUTAG": (7, 4, 2, 188),
    "PROTEINS": (3, 0, 2, 1113),
    "ENZYMES": (3, 0, 6, 600),
    "NCI1": (37, 0, 2, 4110),
    "IMDB-BINARY": (1, 0, 2, 1000),
}
TU_URL = "https://www.chrsmrrs.com/graphkerneldatasets"
TU_OPTIONS: dict[str, Any] = {"name": "MUTAG", "num_node_features": 0, "num_classes": 0, "split_seed": 0, "sha256": ""}
TU_FRACTIONS = (0.8, 0.1)


class _TUSource:
    """The members of one TU set, from a folder or from the official zip (read in place, bounded)."""

    def __init__(self, name: str, folder: Path | None = None, archive: Path | None = None):
        self.name, self.folder, self.archive = name, folder, archive
        try:
            self.zip = zipfile.ZipFile(archive) if archive is not None else None
        except (zipfile.BadZipFile, zipfile.LargeZipFile) as e:
            raise DataError(f"{archive}: not a readable zip archive ({e}); fetch {name}.zip again") from None

    def where(self, suffix: str) -> str:
        return f"{self.archive or self.folder}:{self.name}_{suffix}.txt"

    def has(self, suffix: str) -> bool:
        member = f"{self.name}_{suffix}.txt"
        if self.zip is not None:
            return any(n.endswith(member) for n in self.zip.namelist())
        return (self.folder / member).is_file()

    def lines(self, suffix: str) -> list[str]:
        member = f"{self.name}_{suffix}.txt"
        if self.zip is not None:
            info = next((i for i in self.zip.infolist() if i.filename.endswith(member)), None)
            if info is None:
                raise DataError(f"{self.where(suffix)}: not in the archive; a TU set needs {member}")
            if info.file_size > MAX_TEXT_BYTES:
                raise DataError(f"{self.where(suffix)}: {info.file_size} bytes is more than a TU file can have")
            try:
                with self.zip.open(info) as f:
                    data = f.read(MAX_TEXT_BYTES + 1)  # the header's size is not trusted: read at most the cap
            except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
                raise DataError(f"{self.where(suffix)}: the archive member cannot be read ({e})") from None
        else:
            path = self.folder / member
            if not path.is_file():
                raise DataError(f"{path}: missing; a TU set needs {member} beside {self.name}_A.txt")
            if path.stat().st_size > MAX_TEXT_BYTES:
                raise DataError(f"{path}: more than {MAX_TEXT_BYTES} bytes; not a TU file")
            data = path.read_bytes()
        if len(data) > MAX_TEXT_BYTES:
            raise DataError(f"{self.where(suffix)}: more than {MAX_TEXT_BYTES} bytes; not a TU file")
        return [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]

    def numbers(self, suffix: str, kind: type = int) -> np.ndarray:
        rows = self.lines(suffix)
        if not rows:
            raise DataError(f"{self.where(suffix)}: empty; a TU file has one row of numbers per line")
        try:
            arr = np.array([[kind(v) for v in line.replace(",", " ").split()] for line in rows])
        except ValueError as e:
            raise DataError(f"{self.where(suffix)}: not a table of numbers ({e})") from e
        if arr.ndim != 2:
            raise DataError(f"{self.where(suffix)}: rows of different lengths")
        return arr


def read_tu(source: _TUSource) -> list[Graph]:
    """The graphs of a TU set (see the module docstring), each checked."""
    ind = source.numbers("graph_indicator")[:, 0] - 1  # node → graph, 0-based
    n = len(ind)
    if n == 0 or (np.diff(ind) < 0).any() or ind[0] != 0:
        raise DataError(f"{source.where('graph_indicator')}: graph ids must start at 1 and not decrease")
    edges = source.numbers("A") - 1  # (E, 2), 0-based over all nodes
    if edges.shape[1] != 2:
        raise DataError(f"{source.where('A')}: expected 'i, j' per line")
    bad = np.nonzero((edges < 0).any(1) | (edges >= n).any(1))[0]
    if len(bad):
        i, j = edges[bad[0]] + 1
        raise DataError(
            f"{source.where('A')}: line {bad[0] + 1} is edge ({i}, {j}) but there are {n} nodes (ids 1..{n}); "
            "node ids are 1-based and below the number of lines of _graph_indicator.txt"
        )
    if (ind[edges[:, 0]] != ind[edges[:, 1]]).any():
        k = int(np.nonzero(ind[edges[:, 0]] != ind[edges[:, 1]])[0][0])
        raise DataError(f"{source.where('A')}: line {k + 1} joins nodes of two different graphs")
    labels = source.numbers("graph_labels")[:, 0]
    num_graphs = int(ind[-1]) + 1
    if len(labels) != num_graphs:
        raise DataError(f"{source.where('graph_labels')}: {len(labels)} labels for {num_graphs} graphs")
    classes = np.unique(labels)
    y = np.searchsorted(classes, labels)  # e.g. −1/1 → 0/1
    parts = []
    if source.has("node_attributes"):
        attrs = source.numbers("node_attributes", float).astype(np.float32)
        if len(attrs) != n:
            raise DataError(f"{source.where('node_attributes')}: {len(attrs)} rows for {n} nodes")
        parts.append(attrs)
    if source.has("node_labels"):
        nl = source.numbers("node_labels")[:, 0]
        if len(nl) != n:
            raise DataError(f"{source.where('node_labels')}: {len(nl)} rows for {n} nodes")
        nl = nl - nl.min()
        parts.append(np.eye(int(nl.max()) + 1, dtype=np.float32)[nl])
    x = np.concatenate(parts, 1) if parts else np.ones((n, 1), np.float32)
    ea = None
    if source.has("edge_labels"):
        el = source.numbers("edge_labels")[:, 0]
        if len(el) != len(edges):
            raise DataError(f"{source.where('edge_labels')}: {len(el)} rows for {len(edges)} edges")
        el = el - el.min()
        ea = np.eye(int(el.max()) + 1, dtype=np.float32)[el]
    starts = np.searchsorted(ind, np.arange(num_graphs + 1))  # first node of each graph
    edge_graph = ind[edges[:, 0]]
    graphs = []
    for g in range(num_graphs):
        sel = edge_graph == g
        lo, hi = starts[g], starts[g + 1]
        graphs.append(
            Graph(
                x=torch.from_numpy(x[lo:hi]),
                edge_index=torch.from_numpy(edges[sel].T - lo).long(),
                y=torch.tensor(int(y[g])),
                edge_attr=None if ea is None else torch.from_numpy(ea[sel]),
            ).check(f"{source.name}: graph {g + 1}")
        )
    return graphs


@functools.lru_cache(maxsize=4)
def _tu_cached(folder: str, archive: str, name: str) -> tuple[Graph, ...]:
    source = _TUSource(name, Path(folder) if folder else None, Path(archive) if archive else None)
    return tuple(read_tu(source))


def resolve_tu(name: str, data_dir: str | None, sha256: str) -> tuple[str, str]:
    """(folder, "") or ("", zip) holding TU set ``name``; with ``ARCHLAB_DOWNLOAD=1`` a checked download."""
    looked = candidate_dirs(name, data_dir)
    for d in looked:
        for c in (d, d / name, d / name / "raw", d / name / name):
            if (c / f"{name}_A.txt").is_file():
                return str(c), ""
        if (d / f"{name}.zip").is_file():
            return "", str(d / f"{name}.zip")
    if not _download_opted_in():
        raise _not_found(name, f"{name}_A.txt, {name}_graph_indicator.txt, … (or {name}.zip)", looked, "")
    dest = cache_dir(name) / f"{name}.zip"
    if not dest.is_file():
        _fetch_pinned(f"{TU_URL}/{name}.zip", dest, _remote_digests(sha256, "sha256"), "sha256")
    return "", str(dest)


def _tu_widths(o: dict[str, Any]) -> tuple[int, int, int]:
    known = TU_SETS.get(o["name"])
    f = o["num_node_features"] or (known[0] if known else 0)
    c = o["num_classes"] or (known[2] if known else 0)
    if not f or not c:
        raise ConfigError(
            f"data.options.name: '{str(o['name'])[:60]}' is not one of {', '.join(TU_SETS)}; for another TU set "
            "also set data.options.num_node_features and data.options.num_classes"
        )
    return f, (known[1] if known else 0), c


def _tu_sizes(n: int) -> tuple[int, int]:
    """Graphs in train and in train + val of an 80/10/10 split of ``n`` graphs."""
    return int(TU_FRACTIONS[0] * n), int((TU_FRACTIONS[0] + TU_FRACTIONS[1]) * n)


def _tu_split(n: int, seed: int) -> dict[str, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    a, b = _tu_sizes(n)
    return {"train": np.sort(perm[:a]), "val": np.sort(perm[a:b]), "test": np.sort(perm[b:])}


def _tu_info(**o: Any) -> GraphInfo:
    f, d, c = _tu_widths(o)
    n = TU_SETS.get(o["name"], (0, 0, 0, 0))[3]  # 0: a set of the user's own, sizes known once read
    a, b = _tu_sizes(n)
    return GraphInfo(
        name="tu",
        kind="graph",
        task="graph_classification",
        input_shape=(f,),
        num_classes=c,
        splits={"train": a, "val": b - a, "test": n - b},
        source=f"TU graph-classification format ({TU_URL}/{o['name']}.zip), --data-dir or {DOWNLOAD_ENV}=1",
        licence="per data set (TU collection)",
        citation="Morris et al., TUDataset, ICML GRL+ workshop 2020",
        notes="data.options.name picks the set; seeded 80/10/10 split of the graphs (split_seed)",
        level="graph",
        edge_dim=d,
    )


@register_dataset(_tu_info(**TU_OPTIONS), options=TU_OPTIONS, info_for=_tu_info)
def tu(split: str, data_dir: str | None = None, **options: Any) -> GraphDataset:
    o = {**TU_OPTIONS, **options}
    f, d, c = _tu_widths(o)
    folder, archive = resolve_tu(o["name"], data_dir, o["sha256"])
    graphs = _tu_cached(folder, archive, o["name"])
    width = graphs[0].x.shape[1]
    if width != f:
        raise DataError(
            f"{folder or archive}: {o['name']} graphs have {width} node features but the data set has {f}; "
            f"set data.options.num_node_features={width} if these are your own files"
        )
    found = 1 + max(int(g.y) for g in graphs)  # labels are 0..found−1 (read_tu ranks the distinct values)
    if found > c:  # a label ≥ num_classes would index past the classifier's outputs mid-run
        raise DataError(
            f"{folder or archive}: {o['name']}_graph_labels.txt holds {found} distinct labels but the data set has "
            f"{c} classes; set data.options.num_classes={found} if these are your own files"
        )
    edge_width = 0 if graphs[0].edge_attr is None else graphs[0].edge_attr.shape[1]
    if d and edge_width != d:  # a known set's edge_dim is what the model is built with
        raise DataError(
            f"{folder or archive}: {o['name']} graphs have {edge_width} edge features (one-hot _edge_labels.txt) "
            f"but {o['name']} has {d}; are these {o['name']}'s files?"
        )
    rows = _tu_split(len(graphs), o["split_seed"])[split]
    return GraphDataset([graphs[i] for i in rows.tolist()], "tu", split)
