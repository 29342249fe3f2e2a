"""Recurrent language models: a character- (or token-) level RNN/LSTM/GRU that predicts the next
token at every step — Karpathy's char-rnn (2015) on Shakespeare, after Graves (2013) and
Sutskever, Martens & Hinton (2011).

``forward`` scores a whole window in one pass (teacher forcing: the input at t is the true token
t); ``generate`` samples one token at a time, carrying the recurrent state, with a temperature
(logits / τ: τ < 1 sharpens, τ > 1 flattens) and optional top-k truncation.

Letters: B batch, T steps, V vocabulary, E embedding width, H hidden units, L layers.

Equations:
    e_t = Embedding(x_t)                                 (B, E)
    h_t^(1..L) = RNN/LSTM/GRU(e_t, h_{t−1}^(1..L))
    p(x_{t+1} | x_≤t) = softmax(W_o dropout(h_t^(L)) + b_o)            (B, V)
    tie_weights (Press & Wolf 2017): W_o = the embedding matrix (needs E = H)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from archlab.layers.recurrent import GRU, LSTM, RNN
from archlab.registry import register_model
from archlab.registry.config import ModelConfig
from archlab.utils.shapes import check_shape

_LAYERS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


@dataclass
class RecurrentLMConfig(ModelConfig):
    in_shape: tuple[int] = (64,)  # (T,): the training window (any length works at inference)
    num_classes: int = 75  # V outputs (filled from the data)
    vocab_size: int = 75  # V inputs (filled from the data)
    cell: Literal["rnn", "lstm", "gru"] = "lstm"
    embed_dim: int = 64  # E
    hidden_size: int = 256  # H
    num_layers: int = 2  # L (char-rnn: 2–3)
    dropout: float = 0.1  # between layers and before the output layer
    tie_weights: bool = False
    impl: Literal["fused", "cells"] = "fused"


class RecurrentLM(nn.Module):
    """Shapes: x (B, T) token ids → logits (B, T, V); with ``state`` / ``return_state`` the
    recurrent state is carried across calls (truncated BPTT, sampling)."""

    def __init__(self, config: RecurrentLMConfig):
        super().__init__()
        if config.tie_weights and config.embed_dim != config.hidden_size:
            raise ValueError(
                f"tie_weights needs embed_dim == hidden_size, got {config.embed_dim} and {config.hidden_size}"
            )
        self.config = config
        self.input_shape = tuple(config.in_shape)
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        self.rnn = _LAYERS[config.cell](
            config.embed_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            impl=config.impl,
        )
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden_size, config.num_classes)
        if config.tie_weights:
            self.head.weight = self.embed.weight

    def example_inputs(self, batch: int) -> tuple[torch.Tensor, ...]:
        return (torch.randint(0, self.config.vocab_size, (batch, *self.input_shape)),)

    def forward(self, x: torch.Tensor, state: Any = None, return_state: bool = False):
        check_shape(x, (None, None))
        if x.dtype != torch.long:
            raise TypeError(f"a language model takes token ids (torch.long), got {x.dtype}")
        if not x.is_meta and (int(x.max()) >= self.config.vocab_size or int(x.min()) < 0):
            raise ValueError(f"token ids must be in [0, {self.config.vocab_size}), got {int(x.min())}..{int(x.max())}")
        out, state = self.rnn(self.embed(x), state)  # (B, T, H)
        logits = self.head(self.drop(out))  # (B, T, V)
        return (logits, state) if return_state else logits

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Continue each row of ``idx`` (B, T0) by ``max_new_tokens`` sampled tokens → (B, T0 + n).

        ``temperature`` 0 picks the most likely token (greedy)."""
        if temperature < 0:
            raise ValueError(f"temperature must be ≥ 0, got {temperature}")
        was_training = self.training
        self.eval()
        logits, state = self(idx, return_state=True)
        out = [idx]
        for _ in range(max_new_tokens):
            last = logits[:, -1].float()  # (B, V)
            if temperature == 0:
                nxt = last.argmax(-1, keepdim=True)
            else:
                last = last / temperature
                if top_k is not None:
                    kth = torch.topk(last, min(top_k, last.shape[-1])).values[:, -1:]
                    last = last.masked_fill(last < kth, float("-inf"))
                nxt = torch.multinomial(F.softmax(last, -1), 1, generator=generator)  # (B, 1)
            out.append(nxt)
            logits, state = self(nxt, state, return_state=True)
        self.train(was_training)
        return torch.cat(out, 1)


def _lm(cell: str, overrides: dict) -> RecurrentLM:
    return RecurrentLM(RecurrentLMConfig(**{"cell": cell, **overrides}))


@register_model(
    family="rnn",
    config=RecurrentLMConfig,
    paper="Karpathy, The Unreasonable Effectiveness of RNNs (char-rnn, 2015); Hochreiter & Schmidhuber 1997",
    tasks=("language_modeling",),
    test_overrides={"hidden_size": 16, "embed_dim": 8},
    meta={"num_params": 880_139, "macs": 55_754_752},
)
def lstm_lm(**overrides) -> RecurrentLM:
    """Character-level LSTM language model (char-rnn): 2 layers of 256, sampling with temperature."""
    return _lm("lstm", overrides)


@register_model(
    family="rnn",
    config=RecurrentLMConfig,
    paper="Cho et al. 2014 (GRU); char-rnn set-up (Karpathy 2015)",
    tasks=("language_modeling",),
    defaults={"cell": "gru"},
    test_overrides={"hidden_size": 16, "embed_dim": 8},
    meta={"num_params": 666_123, "macs": 42_123_264},
)
def gru_lm(**overrides) -> RecurrentLM:
    """Character-level GRU language model: 2 layers of 256, sampling with temperature."""
    return _lm("gru", overrides)
