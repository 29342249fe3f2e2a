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

from archlab.layers.recurrent import GRU
from archlab.models.rnn.classifier import RecurrentClassifier, RecurrentClassifierConfig, layer_kwargs
from archlab.registry import register_model
from archlab.registry.config import PositiveInt


@dataclass
class GRUClassifierConfig(RecurrentClassifierConfig):
    hidden_size: PositiveInt = 6  # H (MNIST-1D paper: 6)
    bidirectional: bool = True
    readout: Literal["last", "mean", "max", "attention", "flatten"] = "flatten"


class GRUClassifier(RecurrentClassifier):
    """Shapes: x (B, C, T), lengths (B,) or None → (B, K)."""

    layer_name = "gru"

    def make_layer(self, in_features: int, config: GRUClassifierConfig) -> GRU:
        return GRU(in_features, config.hidden_size, **layer_kwargs(config))


@register_model(
    family="rnn",
    config=GRUClassifierConfig,
    paper="Cho et al., Learning Phrase Representations using RNN Encoder-Decoder (EMNLP 2014)",
    meta={"num_params": 5_134, "macs": 14_880, "source": "Greydanus & Kobak 2024 (params)"},
)
def gru(**overrides) -> GRUClassifier:
    """Bidirectional GRU sequence classifier (the MNIST-1D GRU)."""
    return GRUClassifier(GRUClassifierConfig(**overrides))
