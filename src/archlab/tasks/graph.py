"""Tasks on graphs: node classification (masked cross-entropy, accuracy) and graph regression and
classification (one target per graph: RMSE/MAE, accuracy), driven by the same trainer as every family.

A graph batch is the named :class:`~archlab.data.batch.Batch` with ``x`` (N, F), ``edge_index``
(2, E), ``batch`` (N,) and, where the data has them, ``edge_attr`` (E, D) and ``node_mask`` (N,);
``model_inputs`` hands a model the fields its ``forward(x, edge_index, batch=None, edge_attr=None)``
declares, so an MLP on the same batch sees the node features alone (the structure-free baseline).

* ``node_classification`` (Kipf & Welling 2017, Eq. 10: the cross-entropy over the labelled nodes
  only): the model maps the whole graph to logits (N, C); the loss and the accuracy count the
  nodes of ``node_mask`` — the split's nodes — and nothing else. ``loss_count`` is the number of
  those nodes, so accumulated micro-batches weight nodes, not graphs.
* ``graph_regression`` / ``graph_classification``: the model pools each graph to one row (G, C)
  (a readout over ``batch``); the losses and metrics are regression's (MSE or MAE loss; MSE, MAE,
  RMSE, R²) and classification's (cross-entropy; accuracy), per graph.

A model whose output has the wrong number of rows (a node-level model on a graph-level task, or the
reverse) is a one-line :class:`~archlab.utils.errors.ShapeError` saying which kind of model fits,
found by the trainer's start-up probe before a run directory exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from archlab.tasks.base import Batch, Task, register_task, split_batch
from archlab.tasks.classification import ClassificationTask
from archlab.tasks.losses import cross_entropy
from archlab.tasks.metrics import Accuracy, Loss, MetricSet
from archlab.tasks.regression import RegressionTask
from archlab.utils.errors import ConfigError, ShapeError


def _graph_hints(task: Task, hints: dict[str, Any]) -> dict[str, Any]:
    """The data's widths for a graph model's config: ``in_channels`` = F (PyG's name, beside
    ``in_shape`` = (F,)) and ``edge_dim`` = D when the data has edge features."""
    hints = dict(hints, in_channels=task.info.input_shape[0])
    if getattr(task.info, "edge_dim", 0):
        hints["edge_dim"] = task.info.edge_dim
    return hints


def _check_width(task: Task, key: str, given: Any, data: Any) -> None:
    """A recipe's feature width must be the data's: ``model.in_channels=10`` on 34-wide features is
    one line naming both, instead of a matmul error mid-probe."""
    width = key in ("in_channels", "edge_dim") or (key == "in_shape" and given is not None)
    if width and (tuple(given) if isinstance(given, list | tuple) else given) != data:
        what = "edge features" if key == "edge_dim" else "node features"
        raise ConfigError(
            f"model.{key}: {given} does not match the {data} {what} of data set '{task.info.name}'; "
            f"drop the override or set model.{key}={list(data) if isinstance(data, tuple) else data}"
        )


def _check_graph_batch(batch: Batch, task: str) -> None:
    if batch.edge_index is None or batch.batch is None:
        raise ConfigError(f"task.name: {task} needs a graph data set (edge_index and batch); this batch has none")


def _rows(out: torch.Tensor, want: int, what: str, fix: str) -> torch.Tensor:
    if out.dim() < 1 or out.shape[0] != want:
        got = tuple(out.shape)
        raise ShapeError(f"model output {got} has {got[0] if got else 0} rows but the task scores {want} {what}; {fix}")
    return out


@register_task
class NodeClassificationTask(Task):
    """Masked cross-entropy over the labelled nodes of one split (Kipf & Welling 2017, Eq. 10):
    L = −(1/|M|) Σ_{v∈M} log softmax(z_v)_{y_v}, M = the nodes of ``node_mask``."""

    name = "node_classification"
    losses = ("cross_entropy",)
    default_loss = "cross_entropy"
    metrics = {"loss": Loss, "accuracy": Accuracy}
    default_metric = "accuracy"

    def data_hints(self) -> dict[str, Any]:
        return _graph_hints(self, super().data_hints())

    def _check_hint(self, key: str, given: Any, data: Any) -> None:
        _check_width(self, key, given, data)
        super()._check_hint(key, given, data)

    def _logits(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        _check_graph_batch(batch, self.name)
        x, _, kw = split_batch(model, batch)
        fix = "node classification needs a node-level model (no readout), one row of logits per node"
        return _rows(model(x, **kw), len(x), "nodes", fix).float()

    @staticmethod
    def _mask(batch: Batch) -> torch.Tensor:
        if batch.node_mask is None:  # every node is labelled (a graph without split masks)
            return torch.ones(len(batch.y), dtype=torch.bool, device=batch.y.device)
        return batch.node_mask

    def training_loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits, m = self._logits(model, batch), self._mask(batch)
        z, y = logits[m], batch.y[m]  # (|M|, C), (|M|,): the split's nodes only
        objective = cross_entropy(z, y, label_smoothing=self.spec.label_smoothing)
        acc = (z.argmax(-1) == y).float().mean()
        if not self.spec.label_smoothing:
            return objective, {"loss": objective.detach(), "accuracy": acc}
        with torch.no_grad():
            plain = cross_entropy(z, y)
        return objective, {"loss": plain, "objective": objective.detach(), "accuracy": acc}

    def loss_count(self, batch: Batch) -> int | torch.Tensor:
        """The labelled nodes the loss is a mean over."""
        return self._mask(batch).sum()

    @torch.no_grad()
    def accumulate(self, model: nn.Module, batches: Iterable[Batch]) -> MetricSet:
        met = self.new_metrics()
        for batch in batches:
            logits, m = self._logits(model, batch), self._mask(batch)
            z, y = logits[m], batch.y[m]
            n = int(m.sum())
            met["loss"].update(cross_entropy(z, y) * n, n)
            met["accuracy"].update((z.argmax(-1) == y).sum(), n)
        return met


class _GraphLevel:
    """What both graph-level tasks share: the data's widths as hints, and one output row per graph
    (:meth:`_output`, through which the classification and regression tasks score the graphs)."""

    name: str

    def data_hints(self) -> dict[str, Any]:
        return _graph_hints(self, super().data_hints())  # type: ignore[misc, arg-type]

    def _check_hint(self, key: str, given: Any, data: Any) -> None:
        _check_width(self, key, given, data)  # type: ignore[arg-type]
        super()._check_hint(key, given, data)  # type: ignore[misc]

    def _output(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """``model``'s output on ``batch`` (G, ...) in float32, after checking it has one row per graph."""
        _check_graph_batch(batch, self.name)
        x, _, kw = split_batch(model, batch)
        fix = f"{self.name} needs a graph-level model (a readout pooling each graph's nodes), one row per graph"
        return _rows(model(x, **kw), len(batch), "graphs", fix).float()


@register_task
class GraphRegressionTask(_GraphLevel, RegressionTask):
    """One real target per graph (FreeSolv's hydration free energy): MSE or MAE loss; MSE, MAE,
    RMSE and R² per graph, in the target's units."""

    name = "graph_regression"
    default_metric = "rmse"


@register_task
class GraphClassificationTask(_GraphLevel, ClassificationTask):
    """One class per graph (the TU sets): cross-entropy (label smoothing allowed); accuracy per
    graph. No mixup: interpolating two batches' node features does not mix two graphs."""

    name = "graph_classification"
    supports_mixup = False
