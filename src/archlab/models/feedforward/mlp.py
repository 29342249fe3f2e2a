"""Multilayer perceptron (Rumelhart, Hinton & Williams 1986), with the usual modern options.

Letters: B batch, D = prod(in_shape) input features, H hidden width, K outputs, L depth
(number of hidden layers).

Equations:
    h_0 = flatten(x)
    h_l = dropout(φ(BN(W_l h_{l−1} + b_l)))      l = 1 … L   (BN and dropout optional)
    y   = W_{L+1} h_L + b_{L+1}

φ is any activation from ``archlab.layers.activations`` (ReLU by default). With batch norm the
affine layer has no bias (BN's shift replaces it, Ioffe & Szegedy 2015, §3.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from archlab.layers.activations import get_activation
from archlab.registry import register_model
from archlab.registry.config import ModelConfig, NonNegativeLayerCount, PositiveInt, Probability, Shape
from archlab.utils.shapes import check_shape


@dataclass
class MLPConfig(ModelConfig):
    in_shape: Shape = (40,)  # one example without the batch; flattened to D
    num_classes: PositiveInt = 10  # K outputs (1 for scalar regression)
    depth: NonNegativeLayerCount = 2  # L hidden layers (0 = a linear model)
    width: PositiveInt = 100  # H hidden units per layer (100: the MNIST-1D paper's MLP)
    activation: str = "relu"  # φ, a name from archlab.layers.activations
    dropout: Probability = 0.0  # after each hidden activation (Srivastava et al. 2014)
    batch_norm: bool = False  # BN before the activation (Ioffe & Szegedy 2015)


class MLP(nn.Module):
    """Shapes: x (B, *in_shape) → (B, K)."""

    def __init__(self, config: MLPConfig):
        super().__init__()
        if config.depth < 0 or config.width < 1:
            raise ValueError(f"depth must be ≥ 0 and width ≥ 1, got depth={config.depth} width={config.width}")
        if not 0.0 <= config.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {config.dropout}")
        self.config = config
        self.input_shape = tuple(config.in_shape)
        self.input_spec = self.input_shape  # flattened into the first weight matrix: every size fixed
        layers: list[nn.Module] = []
        d = math.prod(config.in_shape)
        for _ in range(config.depth):
            layers.append(nn.Linear(d, config.width, bias=not config.batch_norm))
            if config.batch_norm:
                layers.append(nn.BatchNorm1d(config.width))
            layers.append(get_activation(config.activation))
            if config.dropout > 0:
                layers.append(nn.Dropout(config.dropout))
            d = config.width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(d, config.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, *self.input_spec))
        return self.features(x.flatten(1))  # (B, H)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h)  # (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model(
    family="feedforward",
    config=MLPConfig,
    paper="Rumelhart, Hinton & Williams, Learning representations by back-propagating errors (Nature 1986)",
    tasks=("classification", "regression"),
    meta={"num_params": 15_210, "macs": 15_000, "source": "Greydanus & Kobak 2024 (params)"},
)
def mlp(**overrides) -> MLP:
    """Multilayer perceptron: depth, width, activation, dropout and batch norm as config."""
    return MLP(MLPConfig(**overrides))
