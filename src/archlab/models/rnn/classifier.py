"""The sequence classifier shared by ``rnn``, ``lstm`` and ``gru``: a recurrent layer and a read-out.

Signals arrive channels-first like every archlab signal, (B, C, T), and are read as a sequence of
T steps of C features. Read-outs: ``"last"`` (the last layer's final hidden state(s)), ``"mean"``,
``"max"`` or ``"attention"`` over the valid steps (a learned query scores each step), or
``"flatten"`` (every step's output concatenated, the MNIST-1D paper's GRU read-out; needs a fixed
T). Unequal lengths: pad to T and pass ``lengths`` (B,); padded steps never change the result.
Text: with ``vocab_size`` > 0 the input is token ids (B, T) (``in_shape`` = (T,)), embedded to E
features per step (id 0 is padding: its embedding is zero and never trained).

Letters: B batch, C features per step, T steps, H hidden units, D = H or 2H (directions), K classes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from archlab.layers.recurrent import RecurrentBase, SequencePooling, last_state
from archlab.registry.config import LayerCount, ModelConfig, NonNegativeInt, PositiveInt, Probability, Shape
from archlab.utils.shapes import check_shape


@dataclass
class RecurrentClassifierConfig(ModelConfig):
    in_shape: Shape = (1, 40)  # (C, T) channels-first signal, or (T,) token ids with vocab_size
    num_classes: PositiveInt = 10  # K
    hidden_size: PositiveInt = 32  # H
    num_layers: LayerCount = 1
    bidirectional: bool = False
    dropout: Probability = 0.0  # between stacked layers
    readout: Literal["last", "mean", "max", "attention", "flatten"] = "last"
    # torch's fused kernel, our equation-level loop, or (GRU only) its written-out backward pass
    impl: Literal["fused", "cells", "scan"] = "fused"
    vocab_size: NonNegativeInt = 0  # > 0: inputs are token ids (B, T), in_shape (T,), embedded to embed_dim
    embed_dim: PositiveInt = 64  # E


class RecurrentClassifier(nn.Module):
    """Shapes: x (B, C, T) — or token ids (B, T) with ``vocab_size`` — lengths (B,) or None → (B, K).

    Subclasses name the layer attribute (``rnn``, ``lstm``, ``gru``: the state-dict keys) and build it.
    """

    layer_name = "rnn"

    def __init__(self, config: RecurrentClassifierConfig):
        super().__init__()
        self.config = config
        if config.vocab_size > 0:
            if len(config.in_shape) != 1:
                raise ValueError(f"in_shape: token inputs are (T,), got {tuple(config.in_shape)}")
            (t,) = config.in_shape
            c = config.embed_dim
            self.input_shape: tuple[int, ...] = (t,)
            self.embed = nn.Embedding(config.vocab_size, c, padding_idx=0)
        else:
            c, t = config.in_shape
            self.input_shape = (c, t)
            self.embed = None
        setattr(self, self.layer_name, self.make_layer(c, config))
        d = config.hidden_size * (2 if config.bidirectional else 1)
        pooled = config.readout in ("mean", "max", "attention")
        self.pool = SequencePooling(config.readout, d) if pooled else None
        self.head = nn.Linear(d * t if config.readout == "flatten" else d, config.num_classes)
        # the flatten read-out fixes T (its head reads T·D features); every other read-out takes any T
        steps = t if config.readout == "flatten" else "T"
        self.input_spec: tuple[int | str, ...] = (steps,) if self.embed is not None else (self.input_shape[0], steps)

    def example_inputs(self, batch: int) -> tuple[torch.Tensor, ...]:
        """A random input of the declared shape: token ids with an embedding, else a signal."""
        if self.embed is not None:
            return (torch.randint(1, self.config.vocab_size, (batch, *self.input_shape)),)
        return (torch.randn(batch, *self.input_shape),)

    def make_layer(self, in_features: int, config: RecurrentClassifierConfig) -> RecurrentBase:
        raise NotImplementedError

    @property
    def layer(self) -> RecurrentBase:
        return getattr(self, self.layer_name)

    def forward_features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        check_shape(x, (None, *self.input_spec))
        seq = self.embed(x) if self.embed is not None else x.transpose(1, 2)  # (B, T, E) or (B, T, C)
        out, state = self.layer(seq, lengths=lengths)  # out (B, T, D)
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n); h_n (layers·dirs, B, H)
        if self.config.readout == "flatten":
            return out.flatten(1)  # (B, T·D)
        if self.pool is not None:
            return self.pool(out, lengths)  # (B, D)
        return last_state(h_n, self.config.bidirectional)  # last layer's final state(s): (B, D)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, lengths))


def layer_kwargs(config: RecurrentClassifierConfig) -> dict:
    """The arguments every recurrent layer takes from a classifier config."""
    return {
        "num_layers": config.num_layers,
        "batch_first": True,
        "bidirectional": config.bidirectional,
        "dropout": config.dropout if config.num_layers > 1 else 0.0,
        "impl": config.impl,
    }
