"""Recurrent language models: a character- (or token-) level RNN/LSTM/GRU that predicts the next
token at every step — Karpathy's char-rnn (2015) on Shakespeare, after Graves (2013) and
Sutskever, Martens & Hinton (2011).

``forward`` scores a whole window in one pass (teacher forcing: the input at t is the true token
t); ``generate`` samples one token at a time through :meth:`RecurrentLM.step` and the shared
decoders of :mod:`archlab.layers.decoding`, carrying the recurrent state, with a temperature
(logits / τ: τ < 1 sharpens, τ > 1 flattens) and optional top-k and top-p (nucleus) truncation.

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

from archlab.layers import decoding
from archlab.layers.decoding import select_rows
from archlab.layers.recurrent import RECURRENT_LAYERS
from archlab.registry import register_model
from archlab.registry.config import LayerCount, ModelConfig, PositiveInt, Probability
from archlab.utils.shapes import check_shape


@dataclass
class RecurrentLMConfig(ModelConfig):
    in_shape: tuple[PositiveInt] = (64,)  # (T,): the training window (any length works at inference)
    num_classes: PositiveInt = 75  # V outputs (filled from the data)
    vocab_size: PositiveInt = 75  # V inputs (filled from the data)
    cell: Literal["rnn", "lstm", "gru"] = "lstm"
    embed_dim: PositiveInt = 64  # E
    hidden_size: PositiveInt = 256  # H
    num_layers: LayerCount = 2  # L (char-rnn: 2–3)
    dropout: Probability = 0.1  # between layers and before the output layer
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
        self.rnn = RECURRENT_LAYERS[config.cell](
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

    def step(self, tokens: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """The decoding protocol of :mod:`archlab.layers.decoding`: x_t (B,) and the RNN state (h (L, B, H)
        or (h, c); None at the start) → (logits of x_{t+1} (B, V), the next state)."""
        logits, state = self(tokens[:, None], state, return_state=True)  # (B, 1, V)
        return logits[:, 0], state

    @staticmethod
    def reorder_state(state: Any, rows: torch.Tensor) -> Any:
        """The state of batch rows ``rows`` (beam search): torch's RNN states are (L, B, H)."""
        return select_rows(state, rows, dim=1)

    @torch.no_grad()
    def generate(
        self,
        idx: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Continue each row of ``idx`` (B, T0) by ``max_new_tokens`` sampled tokens → (B, T0 + n).

        The prompt but its last token is read in one pass (the "prefill"); from its last token on,
        :func:`archlab.layers.decoding.sample` calls :meth:`step`: ``temperature`` 0 picks the most
        likely token (greedy), ``top_k`` / ``top_p`` cut the distribution to the k most likely tokens /
        to the nucleus of mass p (Holtzman et al. 2020). Raises ValueError for temperature < 0,
        top_k < 1 or top_p outside (0, 1]."""
        return decoding.continue_prompt(
            self, idx, max_new_tokens, self.start_decoding,
            temperature=temperature, top_k=top_k, top_p=top_p, generator=generator,
        )  # fmt: skip

    def start_decoding(self, idx: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """(the last prompt token (B,), the RNN state after the rest of the prompt; None for one token)."""
        state = self(idx[:, :-1], return_state=True)[1] if idx.shape[1] > 1 else None
        return idx[:, -1], state


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
