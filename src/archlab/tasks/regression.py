"""Regression: MSE or MAE, measured by MSE, MAE, RMSE and R²."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from archlab.tasks.base import Batch, Task, register_task, split_batch
from archlab.tasks.losses import mae, mse
from archlab.tasks.metrics import (
    Loss,
    MeanAbsoluteError,
    MeanSquaredError,
    MetricSet,
    R2Score,
    RootMeanSquaredError,
)
from archlab.utils.errors import ShapeError


@register_task
class RegressionTask(Task):
    name = "regression"
    losses = ("mse", "mae")
    default_loss = "mse"
    metrics = {
        "loss": Loss,
        "mse": MeanSquaredError,
        "mae": MeanAbsoluteError,
        "rmse": RootMeanSquaredError,
        "r2": R2Score,
    }

    def loss_fn(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return mse(pred, y) if self.loss_name == "mse" else mae(pred, y)

    @staticmethod
    def _match(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if pred.numel() != y.numel():
            raise ShapeError(
                f"model output {tuple(pred.shape)} does not match the target {tuple(y.shape)}; "
                f"set model.num_classes={y[0].numel()} (the number of regression outputs)"
            )
        return pred.reshape(y.shape)

    def _output(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        """``model``'s output on ``batch`` in float32 (the graph-level task checks one row per graph)."""
        x, _, kw = split_batch(model, batch)
        return model(x, **kw).float()

    def training_loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        pred = self._match(self._output(model, batch), batch.y)
        loss = self.loss_fn(pred, batch.y)
        return loss, {"loss": loss.detach()}

    @torch.no_grad()
    def accumulate(self, model: nn.Module, batches: Iterable[Batch]) -> MetricSet:
        m = self.new_metrics()
        for batch in batches:
            y = batch.y.float()
            p = self._match(self._output(model, batch), y)
            sq, ab = ((p - y) ** 2).sum(), (p - y).abs().sum()
            m["loss"].update(sq if self.loss_name == "mse" else ab, y.numel())
            m["mse"].update(sq, y.numel())
            m["rmse"].update(sq, y.numel())
            m["mae"].update(ab, y.numel())
            m["r2"].update(p, y)
        return m
