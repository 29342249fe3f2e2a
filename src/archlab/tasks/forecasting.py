"""Forecasting: a window of L past values → the next H values, trained on standardised values
(MSE or MAE) and reported in the series' own units beside the seasonal naive forecast.

Metrics (every one over all test windows and horizon steps, in the series' units):

* ``mae``, ``rmse``: the model's errors;
* ``mase``: MAE / mean |y_t − y_{t−m}| over the train period (Hyndman & Koehler 2006): below 1 beats
  the in-sample one-step seasonal naive forecast;
* ``naive_mae``, ``naive_rmse``, ``naive_mase``: the same for the seasonal naive forecast made from
  each window (repeat its last season: ŷ_{T+h} = y_{T+h−m⌈h/m⌉}), the baseline to beat;
* ``skill``: 1 − mase / naive_mase (> 0: better than seasonal naive on the same windows).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from archlab.data.timeseries import forecast_scaler, forecast_spec, mase_scale
from archlab.tasks.base import Batch, register_task, split_batch
from archlab.tasks.metrics import (
    Loss,
    MeanAbsoluteError,
    MeanAbsoluteScaledError,
    MetricSet,
    RootMeanSquaredError,
    Skill,
)
from archlab.tasks.regression import RegressionTask
from archlab.utils.errors import ConfigError


def seasonal_naive_batch(x: torch.Tensor, horizon: int, season: int) -> torch.Tensor:
    """(B, L) histories → (B, H) seasonal naive forecasts: ŷ_{L+h} = y_{L+h−m⌈h/m⌉}, h = 1..H."""
    if x.shape[-1] < season:
        raise ConfigError(f"the seasonal naive forecast needs a window of at least one season ({season})")
    h = torch.arange(1, horizon + 1, device=x.device)
    idx = x.shape[-1] - 1 + h - season * torch.ceil(h / season).long()
    return x[:, idx]


@register_task
class ForecastingTask(RegressionTask):
    name = "forecasting"
    metrics = {
        "loss": Loss,
        "mae": MeanAbsoluteError,
        "rmse": RootMeanSquaredError,
        "mase": MeanAbsoluteScaledError,
        "naive_mae": MeanAbsoluteError,
        "naive_rmse": RootMeanSquaredError,
        "naive_mase": MeanAbsoluteScaledError,
        "skill": Skill,
    }
    default_metric = "mase"

    def __init__(self, spec, info, seed: int = 0):
        super().__init__(spec, info, seed)
        self.spec_ = forecast_spec(info.name)

    def new_metrics(self) -> MetricSet:
        m = super().new_metrics()
        scale = mase_scale(self.info.name)
        m["mase"], m["naive_mase"] = MeanAbsoluteScaledError(scale), MeanAbsoluteScaledError(scale)
        return m

    @torch.no_grad()
    def accumulate(self, model: nn.Module, batches: Iterable[Batch]) -> MetricSet:
        mean, std = forecast_scaler(self.info.name)
        h, m_ = self.spec_.horizon, self.spec_.season
        m = self.new_metrics()
        for batch in batches:
            x, y, kw = split_batch(model, batch)
            p = self._match(model(x, **kw).float(), y)
            m["loss"].update(self.loss_fn(p, y) * y.numel(), y.numel())
            truth = y.float() * std + mean
            naive = seasonal_naive_batch(x[:, 0].float() * std + mean, h, m_)
            errors = {"": p * std + mean - truth, "naive_": naive - truth}
            for prefix, err in errors.items():
                m[f"{prefix}mae"].update(err.abs().sum(), err.numel())
                m[f"{prefix}mase"].update(err.abs().sum(), err.numel())
                m[f"{prefix}rmse"].update((err**2).sum(), err.numel())
            m["skill"].update(errors[""].abs().sum(), errors["naive_"].abs().sum())
        return m
