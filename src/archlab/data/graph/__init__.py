"""Graphs: the container and batching (:mod:`.core`), the offline data sets (:mod:`.sets`: karate,
FreeSolv, the stochastic block model) and the real-format loaders (:mod:`.formats`: Planetoid, TU)."""

from archlab.data.graph import formats, sets  # noqa: F401  (register the data sets)
from archlab.data.graph.core import (
    Graph,
    GraphDataset,
    GraphInfo,
    NodeDataset,
    check_widths,
    collate_graphs,
    node_split,
    undirected,
)

__all__ = [
    "Graph",
    "GraphDataset",
    "GraphInfo",
    "NodeDataset",
    "check_widths",
    "collate_graphs",
    "node_split",
    "undirected",
]
