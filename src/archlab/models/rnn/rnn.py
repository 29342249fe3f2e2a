"""A vanilla (Elman) RNN sequence classifier (Elman 1990).

Signals arrive channels-first like every archlab signal, (B, C, T), and are read as a sequence
of T steps of C features. The read-out is the last layer's final hidden state(s) (``"last"``,
default), or the outputs pooled over time: ``"mean"``, ``"max"`` or ``"attention"`` (a learned
query scores each step, softmax over the valid steps). The default, one tanh layer of 64 units
(4,938 parameters on MNIST-1D), has the size of the MNIST-1D paper's models (GRU 5,134). The
recurrent layer is ``archlab.layers.recurrent.RNN``: torch's ``nn.RNN`` parameters, run by
torch's fused kernel (``impl="fused"``) or by our loop over the equations below (``impl="cells"``).

Sequences of unequal length: pad them to T and pass ``lengths`` (B,) to ``forward``; padded steps
never change the result.

Letters: B batch, C features per step, T steps, H hidden units, D = H or 2H (directions), K classes.

Equations:
    h_t = φ(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)          φ = tanh (default) or ReLU
    y   = W_o · readout(h_1 … h_T) + b_o
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from archlab.layers.recurrent import RNN, SequencePooling, last_state
from archlab.registry import register_model
from archlab.utils.shapes import check_shape


@dataclass
class RNNClassifierConfig:
    in_shape: tuple[int, int] = (1, 40)  # (C, T) channels-first signal
    num_classes: int = 10  # K
    hidden_size: int = 64  # H (≈ 5k parameters on MNIST-1D, like the paper's models)
    num_layers: int = 1
    nonlinearity: Literal["tanh", "relu"] = "tanh"  # φ
    bidirectional: bool = False
    dropout: float = 0.0  # between stacked layers
    readout: Literal["last", "mean", "max", "attention"] = "last"
    impl: Literal["fused", "cells"] = "fused"  # torch's fused kernel, or our equation-level loop


class RNNClassifier(nn.Module):
    """Shapes: x (B, C, T), lengths (B,) or None → (B, K)."""

    def __init__(self, config: RNNClassifierConfig):
        super().__init__()
        self.config = config
        c, t = config.in_shape
        self.input_shape = (c, t)
        self.rnn = RNN(
            c,
            config.hidden_size,
            num_layers=config.num_layers,
            nonlinearity=config.nonlinearity,
            batch_first=True,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            impl=config.impl,
        )
        d = config.hidden_size * (2 if config.bidirectional else 1)
        self.pool = None if config.readout == "last" else SequencePooling(config.readout, d)
        self.head = nn.Linear(d, config.num_classes)

    def forward_features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        check_shape(x, (None, *self.input_shape))
        out, h_n = self.rnn(x.transpose(1, 2), lengths=lengths)  # (B, T, C) in; out (B, T, D)
        if self.pool is not None:
            return self.pool(out, lengths)  # (B, D)
        return last_state(h_n, self.config.bidirectional)  # last layer's final state(s): (B, D)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, lengths))


@register_model(
    family="rnn",
    config=RNNClassifierConfig,
    paper="Elman, Finding Structure in Time (Cognitive Science 1990)",
)
def rnn(**overrides) -> RNNClassifier:
    """Vanilla (Elman) RNN sequence classifier, tanh or ReLU (last state, mean, max or attention read-out)."""
    return RNNClassifier(RNNClassifierConfig(**overrides))
