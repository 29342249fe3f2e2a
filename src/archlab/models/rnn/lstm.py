"""An LSTM sequence classifier (Hochreiter & Schmidhuber 1997; forget gate: Gers et al. 2000).

Signals arrive channels-first like every archlab signal, (B, C, T), and are read as a sequence
of T steps of C features. The read-out is the last layer's final hidden state(s) (``"last"``,
default), or the outputs pooled over time: ``"mean"``, ``"max"`` or ``"attention"`` (a learned
query scores each step, softmax over the valid steps). The default, one layer of 32 units
(4,810 parameters on MNIST-1D), has the size of the MNIST-1D paper's models (GRU 5,134). The
recurrent layer is ``archlab.layers.recurrent.LSTM``: torch's ``nn.LSTM`` parameters, run by
torch's fused kernel (``impl="fused"``) or by our loop over the equations below (``impl="cells"``).

Sequences of unequal length: pad them to T and pass ``lengths`` (B,) to ``forward``; padded steps
never change the result.

Letters: B batch, C features per step, T steps, H hidden units, D = H or 2H (directions), K classes.

Equations:
    i_t = σ(W_ii x_t + b_ii + W_hi h_{t−1} + b_hi)          input gate
    f_t = σ(W_if x_t + b_if + W_hf h_{t−1} + b_hf)          forget gate
    g_t = tanh(W_ig x_t + b_ig + W_hg h_{t−1} + b_hg)       cell candidate
    o_t = σ(W_io x_t + b_io + W_ho h_{t−1} + b_ho)          output gate
    c_t = f_t ⊙ c_{t−1} + i_t ⊙ g_t
    h_t = o_t ⊙ tanh(c_t)
    y   = W_o · readout(h_1 … h_T) + b_o
"""

from __future__ import annotations

from dataclasses import dataclass

from archlab.layers.recurrent import LSTM
from archlab.models.rnn.classifier import RecurrentClassifier, RecurrentClassifierConfig, layer_kwargs
from archlab.registry import register_model
from archlab.registry.config import PositiveInt


@dataclass
class LSTMClassifierConfig(RecurrentClassifierConfig):
    hidden_size: PositiveInt = 32  # H (≈ 5k parameters on MNIST-1D, like the paper's models)


class LSTMClassifier(RecurrentClassifier):
    """Shapes: x (B, C, T), lengths (B,) or None → (B, K)."""

    layer_name = "lstm"

    def make_layer(self, in_features: int, config: LSTMClassifierConfig) -> LSTM:
        return LSTM(in_features, config.hidden_size, **layer_kwargs(config))


@register_model(
    family="rnn",
    config=LSTMClassifierConfig,
    paper="Hochreiter & Schmidhuber, Long Short-Term Memory (Neural Computation 1997)",
    meta={"num_params": 4_810, "macs": 169_280},
)
def lstm(**overrides) -> LSTMClassifier:
    """LSTM sequence classifier (last state, mean, max or attention read-out)."""
    return LSTMClassifier(LSTMClassifierConfig(**overrides))
