"""A GRU sequence classifier (Cho et al. 2014), as in the MNIST-1D benchmark.

Signals arrive channels-first like every archlab signal, (B, C, T), and are read as a sequence
of T steps of C features. The default read-out follows Greydanus & Kobak (2024): a
bidirectional GRU with 6 units whose outputs at every step are concatenated and fed to one
linear layer (5,134 parameters; the paper reports 91%). ``readout="last"`` uses the final
hidden state(s) instead; ``"mean"``, ``"max"`` and ``"attention"`` pool the outputs over time
(attention: a learned query scores each step, softmax over the valid steps). The recurrent layer
is ``archlab.layers.recurrent.GRU``: torch's ``nn.GRU`` parameters, run by torch's fused kernel
(``impl="fused"``) or by our loop over the equations below (``impl="cells"``).

Sequences of unequal length: pad them to T and pass ``lengths`` (B,) to ``forward``; padded steps
never change the result.

Letters: B batch, C features per step, T steps, H hidden units, D = 2H (two directions), K classes.

Equations:
    r_t = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr)          reset gate
    z_t = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz)          update gate
    n_t = tanh(W_in x_t + b_in + r_t ⊙ (W_hn h_{t−1} + b_hn))
    h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t−1}
    y   = W_o · readout(h_1 … h_T) + b_o
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from archlab.layers.recurrent import GRU, SequencePooling, last_state
from archlab.registry import register_model
from archlab.utils.shapes import check_shape


@dataclass
class GRUClassifierConfig:
    in_shape: tuple[int, int] = (1, 40)  # (C, T) channels-first signal
    num_classes: int = 10  # K
    hidden_size: int = 6  # H (MNIST-1D paper: 6)
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.0  # between stacked layers
    readout: Literal["flatten", "last", "mean", "max", "attention"] = "flatten"
    impl: Literal["fused", "cells"] = "fused"  # torch's fused kernel, or our equation-level loop


class GRUClassifier(nn.Module):
    """Shapes: x (B, C, T), lengths (B,) or None → (B, K)."""

    def __init__(self, config: GRUClassifierConfig):
        super().__init__()
        self.config = config
        c, t = config.in_shape
        self.input_shape = (c, t)
        self.gru = GRU(
            c,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            bidirectional=config.bidirectional,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            impl=config.impl,
        )
        d = config.hidden_size * (2 if config.bidirectional else 1)
        pooled = config.readout in ("mean", "max", "attention")
        self.pool = SequencePooling(config.readout, d) if pooled else None
        self.head = nn.Linear(d * t if config.readout == "flatten" else d, config.num_classes)

    def forward_features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        check_shape(x, (None, *self.input_shape))
        out, h_n = self.gru(x.transpose(1, 2), lengths=lengths)  # (B, T, C) in; out (B, T, D), h_n (layers·dirs, B, H)
        if self.config.readout == "flatten":
            return out.flatten(1)  # (B, T·D)
        if self.pool is not None:
            return self.pool(out, lengths)  # (B, D)
        return last_state(h_n, self.config.bidirectional)  # last layer's final state(s): (B, D)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, lengths))


@register_model(
    family="rnn",
    config=GRUClassifierConfig,
    paper="Cho et al., Learning Phrase Representations using RNN Encoder-Decoder (EMNLP 2014)",
)
def gru(**overrides) -> GRUClassifier:
    """Bidirectional GRU sequence classifier (the MNIST-1D GRU)."""
    return GRUClassifier(GRUClassifierConfig(**overrides))
