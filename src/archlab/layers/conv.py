"""Convolutional building blocks shared by the CNN family (MobileNet, EfficientNet, ConvNeXt…).

Each block is written from its formula; the docstrings give it. Plain ``torch.nn`` underneath.

Letter legend: B batch, C channels (C_in, C_out), H height, W width, k kernel size, s stride,
g groups, r squeeze channels, p drop probability, δ activation, σ logistic sigmoid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "init_conv_bn_",
    "ConvNormAct",
    "DropPath",
    "LayerNorm2d",
    "SqueezeExcite",
    "drop_path",
    "make_divisible",
]


@torch.no_grad()
def init_conv_bn_(model: nn.Module, linear_std: float | None = None) -> None:
    """torchvision's CNN initialisation, shared by the CNN family: every ``Conv2d`` He-normal with
    fan_out (gain √2), its bias 0; every ``BatchNorm2d`` γ = 1, β = 0; every ``Linear`` N(0, linear_std²)
    with bias 0 when ``linear_std`` is given, else left at nn.Linear's default."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0.0, linear_std)
            nn.init.zeros_(m.bias)


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None, round_limit: float = 0.9) -> int:
    """Round a channel count ``v`` to the nearest multiple of ``divisor`` without losing more than 10%.

    c = max(m, ⌊(v + d/2) / d⌋ · d), then c += d if c < 0.9 · v (m = ``min_value``, default d).
    From the TF MobileNet code (``_make_divisible``), used by MobileNet V2/V3 and EfficientNet to scale
    widths by a multiplier: make_divisible(32 · 0.75) = 24, make_divisible(40 · 1.1) = 48 (44 is halfway
    and rounds up), make_divisible(19) = 24 (the nearest multiple, 16, would lose 16 %).
    """
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < round_limit * v:  # never round down by more than 10 %
        new_v += divisor
    return int(new_v)


class ConvNormAct(nn.Sequential):
    """Conv2d → BatchNorm2d → activation, "same" padding: y = δ(BN(W ∗ x)).

    The convolution has no bias (BN's β replaces it); padding = ⌊(k − 1)/2⌋, so the output is
    (B, C_out, ⌈H/s⌉, ⌈W/s⌉) for odd k. ``groups = C_in = C_out`` makes it depthwise.

    Args:
        in_channels, out_channels: C_in, C_out.
        kernel_size: k. stride: s. groups: g (C_in and C_out divisible by g).
        act_layer: activation class (``nn.ReLU``, ``nn.ReLU6``, ``nn.SiLU``…), or None for a linear
            output (the projection of an inverted residual).
        bn_eps, bn_momentum: BatchNorm2d ε and running-stat momentum (torch convention: the weight of
            the new batch statistic).

    Shapes: (B, C_in, H, W) → (B, C_out, ⌈H/s⌉, ⌈W/s⌉).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        act_layer: type[nn.Module] | None = nn.ReLU,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ):
        super().__init__()
        padding = (kernel_size - 1) // 2
        self.add_module(
            "conv",
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, groups=groups, bias=False),
        )
        self.add_module("bn", nn.BatchNorm2d(out_channels, eps=bn_eps, momentum=bn_momentum))
        self.add_module("act", act_layer() if act_layer is not None else nn.Identity())


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation channel gate (Hu et al., CVPR 2018, arXiv:1709.01507, Eq. 2–4).

        s = σ(W_2 · δ(W_1 · GAP(x) + b_1) + b_2),    y = s ⊙ x

    GAP is the global average pool (B, C, H, W) → (B, C, 1, 1), W_1 is C → r and W_2 is r → C
    (1×1 convolutions with bias, as torchvision/timm), δ the hidden activation (ReLU in the SE paper,
    SiLU in EfficientNet) and the gate σ a sigmoid (hard-sigmoid in MobileNet V3). s ∈ (0, 1)^C
    rescales each channel; the spatial map is untouched.

    Args:
        channels: C, the channels of the gated tensor.
        squeeze_channels: r (EfficientNet: ⌊C_block_in / 4⌋, a quarter of the *block input*).
        act_layer: δ. gate_layer: the gate.

    Shapes: (B, C, H, W) → (B, C, H, W).
    """

    def __init__(
        self,
        channels: int,
        squeeze_channels: int,
        act_layer: type[nn.Module] = nn.ReLU,
        gate_layer: type[nn.Module] = nn.Sigmoid,
    ):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)  # W_1, b_1
        self.act = act_layer()
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)  # W_2, b_2
        self.gate = gate_layer()

    def scale(self, x: torch.Tensor) -> torch.Tensor:
        """The gate s, (B, C, 1, 1)."""
        s = x.mean((2, 3), keepdim=True)  # (B, C, 1, 1): squeeze
        return self.gate(self.fc2(self.act(self.fc1(s))))  # (B, C, 1, 1): excite

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale(x)  # (B, C, H, W)


def drop_path(x: torch.Tensor, p: float = 0.0, training: bool = False) -> torch.Tensor:
    """Stochastic depth on a residual branch, one Bernoulli draw per example.

    y_b = x_b · m_b / (1 − p),  m_b ~ Bernoulli(1 − p) in training; y = x in evaluation.
    E[y] = x, so no rescaling is needed at test time. With p = 1 the branch is always dropped (y = 0).
    """
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)  # (B, 1, …, 1)
    if keep > 0.0:
        mask.div_(keep)
    return x * mask


class DropPath(nn.Module):
    """Stochastic depth / drop-connect (Huang et al., ECCV 2016, arXiv:1603.09382; "drop connect" in
    the EfficientNet code): drop a residual branch for a whole example with probability p.

        y_b = x_b · m_b / (1 − p),  m_b ~ Bernoulli(1 − p)     (training)
        y   = x                                                  (evaluation)

    Placed on the branch before the skip addition, x + DropPath(F(x)), so a dropped block is the
    identity. "row" mode of ``torchvision.ops.StochasticDepth``, timm's ``DropPath``.

    Args:
        p: drop probability, 0 ≤ p ≤ 1.

    Shapes: (B, *) → (B, *).
    """

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"drop_path probability must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of a (B, C, H, W) map, at every pixel (ConvNeXt's stem and
    downsampling norm; Liu et al. 2022, arXiv:2201.03545).

        μ_bhw = (1/C) Σ_c x_bchw,   σ²_bhw = (1/C) Σ_c (x_bchw − μ_bhw)²
        y_bchw = γ_c · (x_bchw − μ_bhw) / √(σ²_bhw + ε) + β_c

    The same as ``nn.LayerNorm(C)`` on the channels-last tensor (B, H, W, C).

    Args:
        num_channels: C. eps: ε (ConvNeXt: 1e-6).

    Shapes: (B, C, H, W) → (B, C, H, W).
    """

    def __init__(self, num_channels: int, eps: float = 1e-6):
        super().__init__(num_channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)  # (B, C, H, W)
