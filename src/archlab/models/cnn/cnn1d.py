"""A small 1D convolutional classifier: the CNN of the MNIST-1D benchmark.

Greydanus & Kobak, *Scaling Down Deep Learning with MNIST-1D* (ICML 2024): three strided
convolutions with ReLU and a linear read-out. With the defaults (1 channel, 40 steps, 25
filters) it has 5,210 parameters; the paper reports 94% test accuracy.

Letters: B batch, C input channels, L length, F filters, K classes.

Equations:
    h_1 = ReLU(conv_{k=5,s=2,p=1}(x))        (B, F, ⌊(L−3)/2⌋+1)
    h_2 = ReLU(conv_{k=3,s=2,p=1}(h_1))      halves the length again
    h_3 = ReLU(conv_{k=3,s=2,p=1}(h_2))
    y   = W · flatten(h_3) + b               (B, K)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from archlab.registry import register_model
from archlab.registry.config import ModelConfig, PositiveInt, SignalShape
from archlab.utils.shapes import check_shape


def _conv_out(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


@dataclass
class CNN1dConfig(ModelConfig):
    in_shape: SignalShape = (1, 40)  # (C, L)
    num_classes: PositiveInt = 10  # K
    channels: PositiveInt = 25  # F filters per layer (paper: 25)


class CNN1d(nn.Module):
    """Shapes: x (B, C, L) → (B, K)."""

    def __init__(self, config: CNN1dConfig):
        super().__init__()
        self.config = config
        c, length = config.in_shape
        self.input_shape = (c, length)
        self.input_spec = self.input_shape  # the head reads the flattened F·L3 map: L is fixed
        f = config.channels
        self.conv1 = nn.Conv1d(c, f, kernel_size=5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(f, f, kernel_size=3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(f, f, kernel_size=3, stride=2, padding=1)
        n = _conv_out(_conv_out(_conv_out(length, 5, 2, 1), 3, 2, 1), 3, 2, 1)
        if n < 1:
            raise ValueError(f"in_shape length {length} is too short for three stride-2 convolutions")
        self.act = nn.ReLU()
        self.head = nn.Linear(f * n, config.num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, *self.input_spec))
        x = self.act(self.conv1(x))  # (B, F, L1)
        x = self.act(self.conv2(x))  # (B, F, L2)
        x = self.act(self.conv3(x))  # (B, F, L3)
        return x.flatten(1)  # (B, F·L3)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model(
    family="cnn",
    config=CNN1dConfig,
    paper="Greydanus & Kobak, Scaling Down Deep Learning with MNIST-1D (ICML 2024)",
    meta={"num_params": 5_210, "macs": 31_750, "source": "Greydanus & Kobak 2024 (params)"},
)
def cnn1d(**overrides) -> CNN1d:
    """Three strided 1D convolutions and a linear read-out (the MNIST-1D CNN)."""
    return CNN1d(CNN1dConfig(**overrides))
