"""The named batch every loader yields and every task reads (PyG's ``Batch``, HF's collator output).

A batch is a dataclass of optional tensors instead of a positional ``(x, y[, lengths])`` tuple, so
a family that needs another input (a Transformer's ``attention_mask``, a contrastive task's two
``views``, a graph's ``edge_index`` and node-to-graph ``batch`` vector) adds a field instead of a
new position every task has to know about.

Letters: B examples, T time steps / tokens, N nodes, E edges.

* ``x``: inputs (B, ...), ``y``: targets (B, ...);
* ``lengths`` (B,): true lengths of end-padded sequences;
* ``token_type_ids``, ``attention_mask`` (B, T): segment ids and 1 = real token, 0 = padding;
* ``views``: augmented copies of ``x`` (a tuple, each (B, ...)) for contrastive learning;
* ``edge_index`` (2, E) and ``batch`` (N,): a batch of graphs in PyG's layout (nodes of every graph
  stacked in ``x``, ``batch[n]`` the graph node n belongs to), ``edge_attr`` (E, D) edge features
  and ``node_mask`` (N,) bool: the nodes whose labels a split scores (node classification);
* ``mixing`` (B,): the mixup coefficient λ of each example when ``y`` is a pair of targets.

``model_inputs(model, batch)`` hands a model the fields its ``forward`` declares, by name: a
recurrent classifier (``forward(x, lengths=None)``) gets ``lengths``, an MLP on the same batch gets
``x`` alone.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

# fields a model may declare in ``forward``; ``y`` is the target, ``mixing`` a transform's record and
# ``node_mask`` the nodes a split scores, so none of them is ever passed to a model
_MODEL_FIELDS = ("lengths", "token_type_ids", "attention_mask", "views", "edge_index", "batch", "edge_attr")


@dataclass
class Batch:
    """A mini-batch of named tensors; every field but the ones a data set fills is ``None``."""

    x: torch.Tensor | None = None
    y: torch.Tensor | tuple[torch.Tensor, ...] | None = None
    lengths: torch.Tensor | None = None
    token_type_ids: torch.Tensor | None = None
    attention_mask: torch.Tensor | None = None
    views: tuple[torch.Tensor, ...] | None = None
    edge_index: torch.Tensor | None = None
    batch: torch.Tensor | None = None
    edge_attr: torch.Tensor | None = None
    node_mask: torch.Tensor | None = None
    mixing: torch.Tensor | None = None

    def __len__(self) -> int:
        """The number of examples: graphs for a graph batch, rows of ``x`` (or the first view) otherwise."""
        if self.batch is not None:
            return int(self.batch.max()) + 1 if self.batch.numel() else 0
        for t in (self.x, self.views[0] if self.views else None, self.y):
            if isinstance(t, tuple):
                t = t[0]
            if t is not None:
                return len(t)
        return 0

    def fields(self) -> dict[str, Any]:
        """The fields that are set, in declaration order."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    def replace(self, **changes: Any) -> Batch:
        return dataclasses.replace(self, **changes)

    def map(self, fn) -> Batch:
        """A batch with ``fn`` applied to every tensor (inside tuples too)."""

        def one(v: Any) -> Any:
            if isinstance(v, tuple):
                return tuple(one(t) for t in v)
            return fn(v) if isinstance(v, torch.Tensor) else v

        return Batch(**{k: one(v) for k, v in self.fields().items()})

    def to(self, device: torch.device | str, channels_last: bool = False) -> Batch:
        """Every tensor on ``device``; with ``channels_last`` every 4-D float tensor (images) in
        channels-last memory format."""

        def move(t: torch.Tensor) -> torch.Tensor:
            t = t.to(device, non_blocking=True)
            if channels_last and t.dim() == 4 and t.is_floating_point():
                t = t.contiguous(memory_format=torch.channels_last)
            return t

        return self.map(move)


@functools.cache
def _forward_parameters(cls: type) -> frozenset[str]:
    return frozenset(inspect.signature(cls.forward).parameters)


def model_inputs(model: nn.Module, batch: Batch) -> dict[str, Any]:
    """The batch fields besides ``x`` that ``model.forward`` declares by name and the batch has."""
    base = getattr(model, "_orig_mod", model)  # torch.compile wraps the module
    declared = _forward_parameters(type(base))
    return {k: getattr(batch, k) for k in _MODEL_FIELDS if k in declared and getattr(batch, k) is not None}
