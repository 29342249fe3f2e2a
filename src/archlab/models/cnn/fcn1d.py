"""The fully convolutional network (FCN) baseline for time-series classification.

Wang, Yan & Oates, *Time Series Classification from Scratch with Deep Neural Networks: A Strong
Baseline* (IJCNN 2017), arXiv:1611.06455, §III-B, as evaluated by Fawaz et al., *Deep learning for
time series classification: a review* (DMKD 2019), whose Keras code (hfawaz/dl-4-tsc,
``classifiers/fcn.py``) fixes what the paper leaves open. Three convolution blocks, each
Conv1d → BatchNorm → ReLU, with 128, 256 and 128 filters of kernel 8, 5 and 3, stride 1, 'same'
padding and no pooling; then global average pooling (GAP) over time and a linear softmax layer (the
model returns the logits). With 1 input channel and 2 classes it has 264,962 parameters: conv
1,152 + 164,096 + 98,432, BN 2·(128 + 256 + 128) = 1,024, linear 258. Keras' ``model.summary()``
shows 265,986, because it also counts BN's moving mean and variance (1,024 non-trainable values,
buffers here).

As in the reference: every convolution has a bias (Keras' default, although BN's β makes it
redundant); BatchNorm uses Keras' ε = 1e-3 and momentum 0.99 (torch's convention: 0.01); kernels
and the linear layer are Glorot-uniform with zero biases (Keras' defaults). Keras' 'same' padding
with stride 1 pads k − 1 zeros, ⌊(k − 1)/2⌋ before and the rest after, so the even kernel 8 pads 3
before and 4 after (TensorFlow's rule; torch's ``padding="same"`` does the same, tested).

Unequal lengths. Without ``lengths`` every step of x is data, zero padding included. With
``lengths`` (B,), each block's output is set to zero beyond each series' length before the next
convolution, and the GAP averages the valid steps only. A convolution near the end of a series still
reads zeros past its last value: they are exactly the zeros that 'same' padding adds at the end of
the unpadded series, so in evaluation mode the output for a zero-padded batch with ``lengths``
equals the output for each series alone at its true length (tested). Two caveats: those zeros are
made-up values all the same (the last ⌈(k − 1)/2⌉ outputs of each layer see them, as for any 'same'
convolution), and in training mode BatchNorm's batch statistics are taken over all B·T positions,
the padded ones included, so training on a padded batch is not exactly training on the series alone.

Letters: B batch, C input channels, T time steps, F_i filters of block i, k_i its kernel size,
K classes, m_t = 1[t < length] (all ones without ``lengths``).

Equations:
    h_0 = x                                                       (B, C, T)
    h_i = m ⊙ ReLU(BN_i(W_i ∗ pad_i(h_{i−1}) + b_i))             (B, F_i, T); i = 1, 2, 3
          (F_i, k_i) = (128, 8), (256, 5), (128, 3); pad_i: ⌊(k_i − 1)/2⌋ zeros before, ⌈(k_i − 1)/2⌉ after
    g   = Σ_t m_t h_3[:, :, t] / Σ_t m_t                          GAP over the valid steps; (B, 128)
    p   = softmax(W_o g + b_o)                                    (B, K)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from archlab.layers.conv1d import (
    KERAS_BN_EPS,
    KERAS_BN_MOMENTUM,
    ConvBlock1d,
    init_keras_,
    masked,
    masked_gap,
    step_mask,
)
from archlab.registry import register_model
from archlab.registry.config import ModelConfig, NonNegativeFloat, PositiveFloat, PositiveInt, Shape, SignalShape
from archlab.utils.shapes import check_shape

PAPER = (
    "Wang, Yan & Oates, Time Series Classification from Scratch with Deep Neural Networks: "
    "A Strong Baseline (IJCNN 2017), arXiv:1611.06455"
)


@dataclass
class FCN1dConfig(ModelConfig):
    in_shape: SignalShape = (1, 150)  # (C, T): a univariate series (GunPoint's T = 150)
    num_classes: PositiveInt = 2  # K
    filters: Shape = (128, 256, 128)  # F_i of each block (§III-B)
    kernel_sizes: Shape = (8, 5, 3)  # k_i of each block (§III-B)
    bn_eps: PositiveFloat = KERAS_BN_EPS  # Keras' default ε (torch's is 1e-5)
    bn_momentum: NonNegativeFloat = KERAS_BN_MOMENTUM  # torch convention; Keras' momentum 0.99


class GAPClassifier1d(nn.Module):
    """What Wang et al.'s FCN and ResNet share: blocks over the series, each block's output zero beyond
    each series' length, global average pooling over the valid steps, a linear layer; Keras'
    initialisation (Glorot-uniform, zero biases). A subclass checks its config, builds the blocks and
    says how one runs on (h, mask) (:meth:`run_block`).

    Args: config (``in_shape`` (C, T), ``num_classes`` K, ``filters`` F_i), blocks (the i-th maps
    F_{i−1} channels to F_i, F_0 = C).
    Shapes: x (B, C, T), lengths (B,) or None → blocks (B, F_i, T) → GAP (B, F_last) → logits (B, K).
    """

    def __init__(self, config: FCN1dConfig, blocks: list[nn.Module]):
        super().__init__()
        self.config = config
        c, t = config.in_shape
        self.input_shape = (c, t)
        self.input_spec = (c, "T")  # 'same' convolutions and (masked) global pooling: any T
        self.blocks = nn.ModuleList(blocks)
        self.num_features = config.filters[-1]
        self.head = nn.Linear(self.num_features, config.num_classes)
        init_keras_(self)

    @staticmethod
    def check_sizes(config: FCN1dConfig) -> None:
        """Filters, kernel sizes and in_shape must be positive (ValueError)."""
        c, t = config.in_shape
        if min(config.filters) < 1 or min(config.kernel_sizes) < 1 or c < 1 or t < 1:
            raise ValueError(f"filters, kernel sizes and in_shape must be positive, got {config}")

    def run_block(self, block: nn.Module, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """One block's output (B, F_i, T), zero beyond each series' length."""
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        check_shape(x, (None, *self.input_spec))
        mask = step_mask(lengths, x)  # (B, 1, T) or None
        h = x if mask is None else x * mask  # padding is zero whatever the caller put there
        for block in self.blocks:
            h = self.run_block(block, h, mask)  # (B, F_i, T)
        return masked_gap(h, mask)  # (B, F_last)

    def forward_head(self, g: torch.Tensor) -> torch.Tensor:
        return self.head(g)  # (B, K) logits; softmax is in the loss

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.forward_head(self.forward_features(x, lengths))


class FCN1d(GAPClassifier1d):
    """Shapes: x (B, C, T), lengths (B,) or None → blocks (B, F_i, T) → GAP (B, F_3) → logits (B, K)."""

    def __init__(self, config: FCN1dConfig):
        if len(config.filters) != len(config.kernel_sizes) or not config.filters:
            raise ValueError(
                f"filters {config.filters} and kernel_sizes {config.kernel_sizes} must be equally long and non-empty"
            )
        self.check_sizes(config)
        blocks = []
        c_in = config.in_shape[0]
        for f, k in zip(config.filters, config.kernel_sizes):
            blocks.append(ConvBlock1d(c_in, f, k, bn_eps=config.bn_eps, bn_momentum=config.bn_momentum))
            c_in = f
        super().__init__(config, blocks)

    def run_block(self, block: nn.Module, h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return masked(block(h), mask)  # (B, F_i, T)


@register_model(
    family="cnn",
    config=FCN1dConfig,
    paper=PAPER,
    tasks=("classification",),
    meta={"num_params": 264_962, "macs": 39_475_456},
)
def fcn1d(**overrides) -> FCN1d:
    """Wang et al.'s FCN for time series: 3 conv blocks (128/256/128, k 8/5/3), GAP."""
    return FCN1d(FCN1dConfig(**overrides))
