"""Graphs in PyG's layout, the checks every graph passes, and mini-batching many graphs into one.

Letters: N nodes, E directed edges, F node features, D edge features, G graphs, C classes.

A :class:`Graph` is what PyG's ``Data`` is: node features ``x`` (N, F), ``edge_index`` (2, E) with
``edge_index[:, e] = (source, target)`` (an undirected edge is stored in both directions), optional
edge features ``edge_attr`` (E, D), a target ``y`` — per node (N,) or for the whole graph (...,) —
and, for node classification, boolean ``train_mask``/``val_mask``/``test_mask`` (N,). So a user who
already has graphs for PyG brings them here unchanged.

Mini-batching (:func:`collate_graphs`) is PyG's block-diagonal batch: node features are stacked,
each graph's edge indices are shifted by the number of nodes before it, and ``batch`` (N,) maps each
node to its graph — message passing over the big graph never crosses from one graph into another,
and a readout pools nodes per graph with ``batch``. The result is the spine's named
:class:`~archlab.data.batch.Batch`, so the trainer and the loader see graphs as one more kind of
batch: ``len(batch)`` is the number of graphs and ``model_inputs`` hands a model the fields it
declares (``edge_index``, ``batch``, ``edge_attr``).

Two kinds of split:

* :class:`GraphDataset` — many graphs, one example each (graph regression/classification:
  FreeSolv, TU sets); ``ds[idx]`` is the collated batch of graphs ``idx``.
* :class:`NodeDataset` — one graph whose examples are nodes (node classification: karate,
  Planetoid, the stochastic block model); split S yields the whole graph with S's mask as
  ``node_mask``, so the model propagates over every node and the task scores S's nodes only.

Bad graphs (an edge index out of range, features of the wrong width, a mask that selects no
node) raise :class:`~archlab.utils.errors.DataError`: one line saying which graph and what to fix,
found when the data set is loaded — before a run directory exists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from archlab.data.batch import Batch
from archlab.data.core import DatasetInfo
from archlab.utils.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class GraphInfo(DatasetInfo):
    """A graph data set's info: ``input_shape`` is ``(F,)``, the node-feature width.

    ``level`` is ``"node"`` (one graph, node labels, split masks) or ``"graph"`` (one target per
    graph); ``edge_dim`` the width D of ``edge_attr`` (0: no edge features)."""

    level: str = "graph"
    edge_dim: int = 0


@dataclass
class Graph:
    """One graph (PyG's ``Data``): see the module docstring for the fields and their shapes.

    ``check(where)`` validates it (called by the data sets; ``where`` names the graph in messages).
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    y: torch.Tensor | None = None
    edge_attr: torch.Tensor | None = None
    train_mask: torch.Tensor | None = None
    val_mask: torch.Tensor | None = None
    test_mask: torch.Tensor | None = None

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def mask(self, split: str) -> torch.Tensor | None:
        return getattr(self, f"{split}_mask")

    def check(self, where: str = "graph") -> Graph:
        """Raise :class:`DataError` (one line) unless every field has the shape and range it must have.

        Checks: ``x`` is a 2-D float tensor of finite values; ``edge_index`` is (2, E) integer with every
        index in ``[0, N)``; ``edge_attr`` has E rows; a node-level ``y`` or a mask has N entries; masks
        are boolean. Returns the graph, with ``edge_index`` as int64 (what scatter ops index with).
        """
        x, ei = self.x, self.edge_index
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or not x.is_floating_point():
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise DataError(f"{where}: node features x must be a float tensor (N, F), got {shape}")
        if not torch.isfinite(x).all():
            raise DataError(f"{where}: node features x hold NaN or inf; clean or impute them first")
        if not isinstance(ei, torch.Tensor) or ei.dim() != 2 or ei.shape[0] != 2:
            shape = tuple(ei.shape) if isinstance(ei, torch.Tensor) else type(ei).__name__
            raise DataError(f"{where}: edge_index must be (2, E) (row 0 sources, row 1 targets), got {shape}")
        if ei.is_floating_point() or ei.dtype == torch.bool:
            raise DataError(f"{where}: edge_index must hold integer node ids, got {ei.dtype}")
        n = self.num_nodes
        if ei.numel():
            lo, hi = int(ei.min()), int(ei.max())
            if lo < 0 or hi >= n:
                bad = lo if lo < 0 else hi
                col = int(((ei < 0) | (ei >= n)).any(0).nonzero()[0])
                raise DataError(
                    f"{where}: edge_index holds node {bad} (edge {col}) but the graph has {n} nodes (ids 0..{n - 1}); "
                    "node ids must be 0-based and below the number of rows of x"
                )
        self.edge_index = ei.long()
        if self.edge_attr is not None:
            ea = self.edge_attr
            if ea.dim() != 2 or ea.shape[0] != ei.shape[1]:
                raise DataError(
                    f"{where}: edge_attr must be (E, D) with E = {ei.shape[1]} edges, got {tuple(ea.shape)}"
                )
        for split in SPLITS:
            m = self.mask(split)
            if m is None:
                continue
            if m.dtype != torch.bool or m.shape != (n,):
                raise DataError(
                    f"{where}: {split}_mask must be a bool tensor of shape ({n},), got {m.dtype} {tuple(m.shape)}"
                )
        return self


def check_widths(graphs: Sequence[Graph], name: str) -> tuple[int, int]:
    """The common node-feature width F and edge-feature width D (0 without) of ``graphs``;
    :class:`DataError` naming the first graph whose width differs."""
    if not graphs:
        raise DataError(f"{name}: this split holds no graph; the set is too small for its split fractions")
    f = graphs[0].x.shape[1]
    d = 0 if graphs[0].edge_attr is None else graphs[0].edge_attr.shape[1]
    for i, g in enumerate(graphs):
        if g.x.shape[1] != f:
            raise DataError(
                f"{name}: graph {i} has {g.x.shape[1]} node features but graph 0 has {f}; "
                "every graph needs the same width"
            )
        gd = 0 if g.edge_attr is None else g.edge_attr.shape[1]
        if gd != d:
            raise DataError(
                f"{name}: graph {i} has {gd} edge features but graph 0 has {d}; every graph needs the same width"
            )
    return int(f), int(d)


def collate_graphs(
    graphs: Sequence[Graph], node_mask: torch.Tensor | None = None, node_level: bool | None = None
) -> Batch:
    """Many graphs as one block-diagonal graph (PyG's ``Batch.from_data_list``).

    ``x`` (ΣN, F) and ``edge_attr`` (ΣE, D) are concatenated; graph k's ``edge_index`` is shifted by
    the nodes of graphs 0..k−1; ``batch`` (ΣN,) holds k for graph k's nodes. ``y``: node targets
    are concatenated (ΣN,), graph targets stacked (G, ...) — ``node_level`` says which (default: node
    targets when a ``node_mask`` (ΣN,) is given; it passes through to the batch).
    """
    sizes = torch.tensor([g.num_nodes for g in graphs], dtype=torch.long)
    offsets = torch.cumsum(sizes, 0) - sizes  # nodes before each graph
    x = torch.cat([g.x for g in graphs])
    edge_index = torch.cat([g.edge_index + o for g, o in zip(graphs, offsets.tolist(), strict=True)], dim=1)
    edge_attr = None if graphs[0].edge_attr is None else torch.cat([g.edge_attr for g in graphs])
    batch = torch.repeat_interleave(torch.arange(len(graphs)), sizes)  # (ΣN,) node → graph
    y = None
    if graphs[0].y is not None:
        node_level = node_mask is not None if node_level is None else node_level
        y = torch.cat([g.y for g in graphs]) if node_level else torch.stack([g.y for g in graphs])
    return Batch(x=x, y=y, edge_index=edge_index, batch=batch, edge_attr=edge_attr, node_mask=node_mask)


@dataclass
class GraphDataset:
    """Many graphs, one example each (graph-level tasks); ``ds[idx]`` collates graphs ``idx``."""

    graphs: list[Graph]
    name: str = ""
    split: str = ""
    spans: torch.Tensor | None = None
    checked: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if not self.checked:
            for i, g in enumerate(self.graphs):
                g.check(f"{self.name or 'graphs'}: graph {i}")
            check_widths(self.graphs, self.name or "graphs")
            self.checked = True

    def __len__(self) -> int:
        return len(self.graphs)

    def __getitem__(self, idx: Any) -> Batch:
        idx = torch.arange(len(self.graphs))[idx].reshape(-1)
        return collate_graphs([self.graphs[i] for i in idx.tolist()])

    def subset(self, idx: torch.Tensor, split: str | None = None) -> GraphDataset:
        return GraphDataset([self.graphs[i] for i in idx.tolist()], self.name, split or self.split, checked=True)


@dataclass
class NodeDataset:
    """One graph whose examples are its nodes (node classification, transductive).

    ``len(ds)`` is 1 (the graph); ``ds[idx]`` is the whole graph with ``node_mask`` = ``mask``
    (N,), the nodes of this split whose labels count. The splits are the masks, so holding out
    graphs (``data.val_fraction``) or subsetting them is refused in one line."""

    graph: Graph
    mask: torch.Tensor
    name: str = ""
    split: str = ""
    spans: torch.Tensor | None = None

    def __post_init__(self) -> None:
        where = f"{self.name or 'graph'} ({self.split or 'split'})"
        self.graph.check(where)
        if self.graph.y is None or self.graph.y.shape[:1] != (self.graph.num_nodes,):
            raise DataError(
                f"{where}: node classification needs one label per node, y of shape ({self.graph.num_nodes},)"
            )
        if self.mask.dtype != torch.bool or self.mask.shape != (self.graph.num_nodes,):
            raise DataError(
                f"{where}: the node mask must be bool ({self.graph.num_nodes},), "
                f"got {self.mask.dtype} {tuple(self.mask.shape)}"
            )
        if not bool(self.mask.any()):
            raise DataError(
                f"{where}: the {self.split or 'split'} mask selects no node; give it at least one labelled node"
            )

    def __len__(self) -> int:
        return 1

    @property
    def num_examples(self) -> int:
        """The nodes this split scores (``mask.sum()``): what a run's summary counts as its examples."""
        return int(self.mask.sum())

    def __getitem__(self, idx: Any) -> Batch:
        if torch.arange(1)[idx].numel() != 1:
            raise IndexError("a node data set has one example, the whole graph")
        return collate_graphs([self.graph], node_mask=self.mask)

    def subset(self, idx: torch.Tensor, split: str | None = None) -> NodeDataset:
        if idx.numel() != 1:
            raise ConfigError(
                f"data.val_fraction: '{self.name}' is one graph whose splits are node masks "
                "(train/val/test); holding out or subsetting graphs does not apply — set data.val_fraction=0"
            )
        return NodeDataset(self.graph, self.mask, self.name, split or self.split)


def node_split(graph: Graph, split: str) -> NodeDataset:
    """The :class:`NodeDataset` of ``split`` (``train``/``val``/``test``): the graph with that mask."""
    m = graph.mask(split)
    if m is None:
        raise DataError(f"graph: no {split}_mask; a node-classification graph needs train/val/test masks")
    return NodeDataset(graph, m, split=split)


def undirected(edges: torch.Tensor) -> torch.Tensor:
    """(2, E) edges → both directions, duplicates and self-loops removed, sorted (PyG's ``to_undirected``)."""
    e = torch.cat([edges, edges.flip(0)], dim=1)
    e = e[:, e[0] != e[1]]
    return torch.unique(e, dim=1)
