"""The residual network (ResNet) baseline for time-series classification.

Wang, Yan & Oates, *Time Series Classification from Scratch with Deep Neural Networks: A Strong
Baseline* (IJCNN 2017), arXiv:1611.06455, §III-C, as evaluated by Fawaz et al., *Deep learning for
time series classification: a review* (DMKD 2019), following their Keras code (hfawaz/dl-4-tsc,
``classifiers/resnet.py``). Three residual blocks with 64, 128 and 128 filters; each block stacks
three of FCN's convolution blocks (kernels 8, 5, 3; Conv1d → BN, ReLU after the first two), adds a
shortcut and applies ReLU. Global average pooling (GAP) over time and a linear softmax layer close
the network (the model returns the logits). With 1 input channel and 2 classes it has 504,258
parameters: blocks 34,112 + 206,336 + 263,552 and linear 258 (Keras' ``model.summary()`` shows
506,818: it adds BN's moving mean and variance, 2,560 non-trainable values, buffers here).

The shortcut, as in dl-4-tsc: a 1×1 convolution (with bias) + BN in the first block and in every
block that changes the channel count ("expand channels for the sum"), BN alone otherwise ("no need
to expand channels because they are equal"): with the default filters, 1×1 conv + BN in blocks 1
and 2, BN in block 3. (Wang et al.'s own Keras code, ``ResNet.py`` in the repository
cauchyturing/UCR_Time_Series_Classification_Deep_Learning_Baseline, differs in two ways: it adds a BN
on the input, and it compares the *network's* input channels with each block's filters, so on
univariate data every block projects, the third included.)
Convolution biases, Keras' BatchNorm ε = 1e-3 and momentum 0.99, Glorot-uniform initialisation and
'same' padding (3 before and 4 after for k = 8) are as in :mod:`archlab.models.cnn.fcn1d`.

Unequal lengths: with ``lengths`` (B,), every activation is set to zero beyond each series' length
before it enters a convolution with k > 1 (inside the blocks and between them; the 1×1 shortcut and
BN act step by step and need no mask), and the GAP averages the valid steps only. Convolutions near
the end of a series still read zeros past its last value — exactly the zeros 'same' padding adds to
the unpadded series — so in evaluation mode a zero-padded batch with ``lengths`` gives the outputs of
the series alone (tested); in training mode BatchNorm's batch statistics include the padded steps.

Letters: B batch, C input channels, T time steps, F_j filters of block j, K classes,
m_t = 1[t < length] (all ones without ``lengths``), Conv_k a 'same' convolution of kernel k with bias.

Equations:
    block j (input u, (B, F_{j−1}, T) with F_0 = C):
        h_1 = m ⊙ ReLU(BN(Conv_8(u)))
        h_2 = m ⊙ ReLU(BN(Conv_5(h_1)))
        h_3 = BN(Conv_3(h_2))
        S(u) = BN(Conv_1(u))   if j = 1 or F_{j−1} ≠ F_j,   else BN(u)
        v   = m ⊙ ReLU(h_3 + S(u))                                  (B, F_j, T); F = 64, 128, 128
    g = Σ_t m_t v_3[:, :, t] / Σ_t m_t                              GAP over the valid steps; (B, 128)
    p = softmax(W_o g + b_o)                                        (B, K)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from archlab.layers.conv1d import (
    KERAS_BN_EPS,
    KERAS_BN_MOMENTUM,
    ConvBlock1d,
    SameConv1d,
    masked,
)
from archlab.models.cnn.fcn1d import PAPER, GAPClassifier1d
from archlab.registry import register_model
from archlab.registry.config import ModelConfig, NonNegativeFloat, PositiveFloat, PositiveInt, Shape, SignalShape


class ResidualBlock1d(nn.Module):
    """Three convolution blocks (kernels k_1, k_2, k_3; no ReLU after the third), a shortcut, ReLU.

    Shapes: (B, C_in, T), mask (B, 1, T) or None → (B, F, T).
    """

    def __init__(
        self,
        in_channels: int,
        filters: int,
        kernel_sizes: tuple[int, ...],
        project: bool,
        bn_eps: float = KERAS_BN_EPS,
        bn_momentum: float = KERAS_BN_MOMENTUM,
    ):
        super().__init__()
        convs = []
        c_in = in_channels
        for i, k in enumerate(kernel_sizes):
            last = i == len(kernel_sizes) - 1
            convs.append(ConvBlock1d(c_in, filters, k, act=not last, bn_eps=bn_eps, bn_momentum=bn_momentum))
            c_in = filters
        self.convs = nn.ModuleList(convs)
        if not project and in_channels != filters:
            raise ValueError(f"a BN-only shortcut needs equal channels, got {in_channels} → {filters}")
        self.shortcut = nn.Sequential()
        if project:
            self.shortcut.append(SameConv1d(in_channels, filters, 1))  # 1×1: "expand channels for the sum"
        self.shortcut.append(nn.BatchNorm1d(filters, eps=bn_eps, momentum=bn_momentum))
        self.relu = nn.ReLU()

    def forward(self, u: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = u
        for i, conv in enumerate(self.convs):
            h = conv(h)  # (B, F, T)
            if i < len(self.convs) - 1:
                h = masked(h, mask)  # the next convolution must see zeros beyond the length
        return masked(self.relu(h + self.shortcut(u)), mask)  # (B, F, T)


@dataclass
class ResNet1dConfig(ModelConfig):
    in_shape: SignalShape = (1, 150)  # (C, T): a univariate series (GunPoint's T = 150)
    num_classes: PositiveInt = 2  # K
    filters: Shape = (64, 128, 128)  # F_j of each residual block (§III-C)
    kernel_sizes: Shape = (8, 5, 3)  # the convolutions inside every block (§III-C)
    bn_eps: PositiveFloat = KERAS_BN_EPS  # Keras' default ε (torch's is 1e-5)
    bn_momentum: NonNegativeFloat = KERAS_BN_MOMENTUM  # torch convention; Keras' momentum 0.99


class ResNet1d(GAPClassifier1d):
    """Shapes: x (B, C, T), lengths (B,) or None → blocks (B, F_j, T) → GAP (B, F_3) → logits (B, K)."""

    def __init__(self, config: ResNet1dConfig):
        if not config.filters or not config.kernel_sizes:
            raise ValueError(f"filters {config.filters} and kernel_sizes {config.kernel_sizes} must be non-empty")
        self.check_sizes(config)
        blocks = []
        c_in = config.in_shape[0]
        for j, f in enumerate(config.filters):
            project = j == 0 or c_in != f  # dl-4-tsc: blocks 1 and 2 project, block 3 is BN only
            blocks.append(ResidualBlock1d(c_in, f, config.kernel_sizes, project, config.bn_eps, config.bn_momentum))
            c_in = f
        super().__init__(config, blocks)

    def run_block(self, block: nn.Module, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return block(h, mask)  # (B, F_j, T), masked inside the block


@register_model(
    family="cnn",
    config=ResNet1dConfig,
    paper=PAPER,
    tasks=("classification",),
    meta={"num_params": 504_258, "macs": 75_043_456},
)
def resnet1d(**overrides) -> ResNet1d:
    """Wang et al.'s ResNet for time series: 3 residual blocks (64/128/128, k 8/5/3), GAP."""
    return ResNet1d(ResNet1dConfig(**overrides))
