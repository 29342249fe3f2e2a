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

from archlab.layers.recurrent import RNN
from archlab.models.rnn.classifier import RecurrentClassifier, RecurrentClassifierConfig, layer_kwargs
from archlab.registry import register_model
from archlab.registry.config import PositiveInt


@dataclass
class RNNClassifierConfig(RecurrentClassifierConfig):
    hidden_size: PositiveInt = 64  # H (≈ 5k parameters on MNIST-1D, like the paper's models)
    nonlinearity: Literal["tanh", "relu"] = "tanh"  # φ


class RNNClassifier(RecurrentClassifier):
    """Shapes: x (B, C, T), lengths (B,) or None → (B, K)."""

    layer_name = "rnn"

    def make_layer(self, in_features: int, config: RNNClassifierConfig) -> RNN:
        return RNN(in_features, config.hidden_size, nonlinearity=config.nonlinearity, **layer_kwargs(config))


@register_model(
    family="rnn",
    config=RNNClassifierConfig,
    paper="Elman, Finding Structure in Time (Cognitive Science 1990)",
    meta={"num_params": 4_938, "macs": 167_040},
)
def rnn(**overrides) -> RNNClassifier:
    """Vanilla (Elman) RNN sequence classifier, tanh or ReLU (last state, mean, max or attention read-out)."""
    return RNNClassifier(RNNClassifierConfig(**overrides))
