"""1-D convolution blocks shared by the time-series networks (FCN and ResNet-1D of Wang et al. 2017):
Keras-style "same" padding, conv–BN–ReLU, masks for zero-padded series of unequal length, a masked
global average pool and Keras' default initialisation (the reference implementations are Keras).

Letters: B batch, C channels, T steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from archlab.utils.shapes import check_shape

KERAS_BN_EPS = 1e-3  # keras.layers.BatchNormalization(epsilon=1e-3)
KERAS_BN_MOMENTUM = 0.01  # Keras momentum 0.99 is the weight of the *old* statistic; torch's is the new one's


def same_padding(kernel_size: int) -> tuple[int, int]:
    """Keras/TensorFlow 'same' padding for stride 1: (⌊(k − 1)/2⌋ before, ⌈(k − 1)/2⌉ after)."""
    total = kernel_size - 1
    return total // 2, total - total // 2


def step_mask(lengths: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    """m (B, 1, T) of x's dtype: 1 at steps t < length, 0 beyond; None when ``lengths`` is None."""
    if lengths is None:
        return None
    b, _, t = x.shape
    check_shape(lengths, (b,), what="lengths")
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise TypeError(f"lengths: expected an integer tensor, got {lengths.dtype}")
    if bool((lengths < 1).any()) or bool((lengths > t).any()):
        raise ValueError(f"lengths: every length must be in 1..{t} (the padded T), got {lengths.tolist()}")
    steps = torch.arange(t, device=x.device)
    return (steps[None, :] < lengths.to(x.device)[:, None]).to(x.dtype)[:, None, :]  # (B, 1, T)


def masked(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """h ⊙ m: zero beyond each series' length (h unchanged without a mask)."""
    return h if mask is None else h * mask


def masked_gap(h: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Global average pool over time, valid steps only: (B, F, T) → (B, F)."""
    if mask is None:
        return h.mean(dim=2)
    return (h * mask).sum(dim=2) / mask.sum(dim=2)  # (B, F) / (B, 1)


class SameConv1d(nn.Conv1d):
    """A stride-1 Conv1d with Keras 'same' padding: zeros ⌊(k − 1)/2⌋ before, ⌈(k − 1)/2⌉ after.

    Shapes: (B, C_in, T) → (B, C_out, T) for every T ≥ 1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size, stride=1, padding=0, bias=bias)
        self.pad = same_padding(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad))  # (B, C_in, T + k − 1) → (B, C_out, T)


class ConvBlock1d(nn.Module):
    """Wang et al.'s convolution block (Eq. 2): y = W ∗ x + b, s = BN(y), h = ReLU(s).

    ``act=False`` leaves out the ReLU (the last convolution of a residual block).
    Shapes: (B, C_in, T) → (B, C_out, T).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        act: bool = True,
        bn_eps: float = KERAS_BN_EPS,
        bn_momentum: float = KERAS_BN_MOMENTUM,
    ):
        super().__init__()
        self.conv = SameConv1d(in_channels, out_channels, kernel_size)
        self.bn = nn.BatchNorm1d(out_channels, eps=bn_eps, momentum=bn_momentum)
        self.act = nn.ReLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


@torch.no_grad()
def init_keras_(model: nn.Module) -> None:
    """Keras' default initialisation: Conv1d and Linear weights Glorot-uniform, biases 0; BN γ = 1, β = 0.

    For a Conv1d weight (C_out, C_in, k) torch's fans are C_in·k and C_out·k, as Keras'.
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
