"""Regression: MSE or MAE, measured by MSE, MAE, RMSE and R²."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from archlab.tasks.base import Batch, Task, register_task, split_batch
from archlab.tasks.losses import mae, mse
from archlab.utils.errors import ShapeError


@register_task
class RegressionTask(Task):
    name = "regression"
    losses = ("mse", "mae")
    default_loss = "mse"
    metrics = ("loss", "mse", "mae", "rmse", "r2")

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

    def training_loss(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        x, y, kw = split_batch(model, batch)
        pred = self._match(model(x, **kw).float(), y)
        loss = self.loss_fn(pred, y)
        return loss, {"loss": loss.detach()}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, batches: Iterable[Batch]) -> dict[str, float]:
        preds, ys = [], []
        for batch in batches:
            x, y, kw = split_batch(model, batch)
            preds.append(self._match(model(x, **kw).float(), y))
            ys.append(y.float())
        p, y = torch.cat(preds), torch.cat(ys)
        err = p - y
        mse_ = float((err**2).mean())
        ss_tot = float(((y - y.mean()) ** 2).sum())
        return {
            "loss": float(self.loss_fn(p, y)),
            "mse": mse_,
            "mae": float(err.abs().mean()),
            "rmse": mse_**0.5,
            "r2": 1.0 - float((err**2).sum()) / ss_tot if ss_tot > 0 else float("nan"),
        }
