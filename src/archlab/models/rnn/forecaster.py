"""Recurrent forecasters: a window of L past values → the next H values in one shot (the "MIMO"
strategy: one output per horizon step from the last hidden state, no feeding back of forecasts).

A recurrent network trained on one period of a trending series has never seen the levels of the
next one (airline passengers keep rising), so by default each window is normalised by its own
statistics before the recurrence and the forecast is mapped back with them — the reversible
instance normalisation of Kim et al. (ICLR 2022, RevIN) without its learned affine. ``norm="none"``
feeds the (globally standardised) values as they are; ``"last"`` only subtracts the last value
(forecasting the change from now on).

Letters: B batch, C channels (1), L window, H hidden units, K horizon steps.

Equations:
    μ = mean_t x_t,  σ = std_t x_t + ε                   (norm="window"; "last": μ = x_L, σ = 1)
    z_t = (x_t − μ) / σ
    h_1 … h_L = RNN/LSTM/GRU(z_1 … z_L)
    ŷ = μ + σ · (W h_L + b)                              (B, K)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from archlab.layers.recurrent import RECURRENT_LAYERS
from archlab.registry import register_model
from archlab.registry.config import LayerCount, ModelConfig, PositiveFloat, PositiveInt, Probability, SignalShape
from archlab.utils.shapes import check_shape


@dataclass
class ForecasterConfig(ModelConfig):
    in_shape: SignalShape = (1, 24)  # (C, L)
    num_classes: PositiveInt = 12  # K, the horizon (filled from the data)
    cell: Literal["rnn", "lstm", "gru"] = "lstm"
    hidden_size: PositiveInt = 32
    num_layers: LayerCount = 1
    dropout: Probability = 0.0
    norm: Literal["window", "last", "none"] = "window"
    eps: PositiveFloat = 1e-5


class RecurrentForecaster(nn.Module):
    """Shapes: x (B, C, L) → (B, K); the forecast is of channel 0."""

    def __init__(self, config: ForecasterConfig):
        super().__init__()
        self.config = config
        self.input_shape = tuple(config.in_shape)
        self.input_spec = (config.in_shape[0], "L")  # the recurrence reads a window of any length L
        c, _ = config.in_shape
        self.rnn = RECURRENT_LAYERS[config.cell](
            c,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.head = nn.Linear(config.hidden_size, config.num_classes)

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.config.norm == "window":
            return x.mean(-1, keepdim=True), x.std(-1, keepdim=True, unbiased=False) + self.config.eps
        if self.config.norm == "last":
            return x[..., -1:], torch.ones_like(x[..., -1:])
        return torch.zeros_like(x[..., :1]), torch.ones_like(x[..., :1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, *self.input_spec))
        mu, sigma = self._stats(x)  # (B, C, 1)
        _, state = self.rnn(((x - mu) / sigma).transpose(1, 2))  # (B, L, C) in
        h_n = state[0] if isinstance(state, tuple) else state  # (layers, B, H)
        return mu[:, 0] + sigma[:, 0] * self.head(h_n[-1])  # (B, K)


def _build(cell: str, overrides: dict) -> RecurrentForecaster:
    return RecurrentForecaster(ForecasterConfig(**{"cell": cell, **overrides}))


@register_model(
    family="rnn",
    config=ForecasterConfig,
    paper="Hochreiter & Schmidhuber 1997 (LSTM); window normalisation: Kim et al., RevIN (ICLR 2022)",
    tasks=("forecasting",),
    meta={"num_params": 4_876, "macs": 101_760},
)
def lstm_forecaster(**overrides) -> RecurrentForecaster:
    """LSTM forecaster: window → horizon from the last hidden state, window-normalised."""
    return _build("lstm", overrides)


@register_model(
    family="rnn",
    config=ForecasterConfig,
    paper="Cho et al. 2014 (GRU); window normalisation: Kim et al., RevIN (ICLR 2022)",
    tasks=("forecasting",),
    defaults={"cell": "gru"},
    meta={"num_params": 3_756, "macs": 76_416},
)
def gru_forecaster(**overrides) -> RecurrentForecaster:
    """GRU forecaster: window → horizon from the last hidden state, window-normalised."""
    return _build("gru", overrides)
