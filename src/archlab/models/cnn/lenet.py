"""LeNet-5, the 1998 original and the common modern re-implementation.

LeCun, Bottou, Bengio & Haffner, *Gradient-Based Learning Applied to Document Recognition*,
Proceedings of the IEEE 86(11), 1998 (§II.B, Fig. 2, Table I; Appendix A for the squashing
function and the initialisation). No arXiv id.

Variants:
    lenet5          the paper's network: scaled tanh, trainable subsampling S2/S4, C3 wired by
                    Table I, C5 = 120 maps, F6 = 84; a linear output layer by default (the paper's
                    Euclidean RBF output is ``output="rbf"``; see :class:`LeNetConfig`).
    lenet5_modern   the usual re-implementation: ReLU, 2×2 max pooling, full C3, linear output
                    (61,706 parameters).

Letters: B batch, C input channels, H×W input size, K classes, f the squashing function,
a ⋆ b a valid 2D cross-correlation (a convolution layer), Σ_{2×2} the sum over each
non-overlapping 2×2 window.

Equations:
    f(a)  = 1.7159 · tanh(2a/3)                                  (Appendix A)
    C1    = f(W_1 ⋆ x + b_1)                                     6 maps, 5×5 kernels
    S2    = f(α_2 · Σ_{2×2} C1 + β_2)                            one α, β per map
    C3_j  = f(Σ_{i ∈ T_j} W_3^{ij} ⋆ S2_i + b_3^j)               16 maps, T_j = column j of Table I
    S4    = f(α_4 · Σ_{2×2} C3 + β_4)
    C5    = f(W_5 ⋆ S4 + b_5)                                    120 maps, 5×5 kernels → 1×1
    F6    = f(W_6 · flatten(C5) + b_6)                           84 units
    y_k   = w_k · F6 + b_k          (output="linear")
    y_k   = −Σ_j (F6_j − c_{kj})²   (output="rbf", c_k a fixed ±1 code; the paper's y_k is the
                                     distance, here negated so that larger means more likely)

Parameter arithmetic (1×32×32 input, 10 classes):
    C1 6·(25+1) = 156 · S2 6·2 = 12 · C3 16·(6·25+1) = 2,416 full, 60·25+16 = 1,516 with
    Table I · S4 16·2 = 32 · C5 120·(16·25+1) = 48,120 · F6 84·(120+1) = 10,164 ·
    linear output 10·(84+1) = 850, RBF output 0 trainable (10·84 fixed codes, a buffer).
    Paper network (Table I, RBF): 156+12+1,516+32+48,120+10,164 = 60,000, the paper's
    "60,000 trainable parameters". The often-quoted 61,706 is full C3, *parameter-free* pooling
    and a linear output: 156+2,416+48,120+10,164+850 (``lenet5_modern``, or ``lenet5`` with
    ``c3_table=False, pool="avg"``); full C3 with the paper's trainable S2/S4 adds 44 (61,750).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from archlab.registry import register_model
from archlab.registry.config import ImageShape, ModelConfig, PositiveInt
from archlab.utils.shapes import check_shape

# Table I: the S2 maps (rows 0–5) each C3 map (columns 0–15) reads. Maps 0–5 take three
# contiguous maps, 6–11 four contiguous, 12–14 four non-contiguous, 15 all six: 60 connections.
C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2),
    (1, 2, 3),
    (2, 3, 4),
    (3, 4, 5),
    (0, 4, 5),
    (0, 1, 5),
    (0, 1, 2, 3),
    (1, 2, 3, 4),
    (2, 3, 4, 5),
    (0, 3, 4, 5),
    (0, 1, 4, 5),
    (0, 1, 2, 5),
    (0, 1, 3, 4),
    (1, 2, 4, 5),
    (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


class ScaledTanh(nn.Module):
    """The paper's squashing function f(a) = A · tanh(S · a), A = 1.7159, S = 2/3 (Appendix A):
    f(±1) = ±1, and the second derivative is largest at a = ±1."""

    amplitude = 1.7159
    slope = 2.0 / 3.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.amplitude * torch.tanh(self.slope * x)


class Subsampling(nn.Module):
    """The paper's S2/S4 layers: the sum of each 2×2 window times a trainable coefficient,
    plus a trainable bias, per map (the squashing is applied by the caller).
    Shapes: (B, C, H, W) → (B, C, H/2, W/2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels))  # α, one per map
        self.bias = nn.Parameter(torch.empty(channels))  # β, one per map
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = 4.0 * self.pool(x)  # Σ_{2×2}
        return s * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class SparseConv2d(nn.Module):
    """C3 with partial connectivity: output map j is a 5×5 convolution over the input maps
    ``table[j]`` only, so it has len(table[j])·k² + 1 parameters (1,516 for Table I).
    Shapes: (B, C_in, H, W) → (B, len(table), H−k+1, W−k+1)."""

    def __init__(self, table: tuple[tuple[int, ...], ...], kernel_size: int):
        super().__init__()
        self.table = table
        for j, inputs in enumerate(table):
            self.register_buffer(f"index_{j}", torch.tensor(inputs, dtype=torch.long), persistent=False)
        self.convs = nn.ModuleList(nn.Conv2d(len(inputs), 1, kernel_size) for inputs in table)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = [conv(x.index_select(1, getattr(self, f"index_{j}"))) for j, conv in enumerate(self.convs)]
        return torch.cat(maps, dim=1)  # (B, 16, H−4, W−4)


class RBFOutput(nn.Module):
    """Euclidean RBF output units (§II.B, Eq. 7) with fixed ±1 codes, returned negated as logits:
    y_k = −‖h − c_k‖². The paper's codes are hand-drawn 7×12 bitmaps of the characters; here
    they are fixed pseudo-random ±1 vectors (seed 0), a non-trainable buffer.
    Shapes: (B, D) → (B, K)."""

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        rng = random.Random(0)
        codes = [[rng.choice((-1.0, 1.0)) for _ in range(in_features)] for _ in range(num_classes)]
        self.register_buffer("codes", torch.tensor(codes))  # (K, D)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        d2 = (h.unsqueeze(1) - self.codes.unsqueeze(0)).square().sum(-1)  # (B, K)
        return -d2


def _c5_size(n: int, pad: int) -> int:
    """Side of the C5 map for an input side n (5×5 valid convs, 2×2 subsampling); < 1 if too small."""
    n = n + 2 * pad - 4  # C1
    n = n // 2 - 4 if n >= 2 else 0  # S2, C3
    return n // 2 - 4 if n >= 2 else 0  # S4, C5


@dataclass
class LeNetConfig(ModelConfig):
    """LeNet-5 options; the defaults are the paper's network except for the output layer.

    ``output="linear"`` is the default: the paper's RBF output compares F6 with fixed ±1 codes
    (hand-drawn 7×12 character bitmaps, not reproducible exactly) and is trained with the
    paper's own criterion (Eq. 9, the RBF distance of the correct class plus a log-sum-exp
    over the others and a constant "rubbish" class); a trainable linear layer with the usual
    cross-entropy is what re-implementations use and what the published counts assume.
    With ``output="rbf"`` the logits are the negated distances, so cross-entropy on them is
    Eq. 9 without the constant class. Neither output choice yields 61,706 with the paper's
    trainable subsampling (linear 61,750, RBF 60,900 with full C3); see the module docstring.

    ``small_input``: a 28×28 input (MNIST) is padded by 2 in C1, so C1 is 28×28 as with the
    paper's 32×32 (the paper itself pads MNIST's 28×28 digits into a 32×32 field).
    """

    in_shape: ImageShape = (1, 32, 32)  # (C, H, W): the paper's 32×32 greyscale field
    num_classes: PositiveInt = 10  # K digits
    small_input: bool = False  # 28×28 input: C1 uses padding 2 (common MNIST practice)
    # f: 1.7159·tanh(2a/3) with the paper's U(±2.4/fan-in) init, or ReLU with torch's default init
    activation: Literal["scaled_tanh", "relu"] = "scaled_tanh"
    pool: Literal["trainable", "avg", "max"] = "trainable"  # S2/S4: paper's α·Σ+β then f, or plain 2×2 pooling
    c3_table: bool = True  # C3 wired by Table I (1,516 params) instead of fully (2,416)
    output: Literal["linear", "rbf"] = "linear"  # output layer; "rbf": the paper's Euclidean RBF units


class LeNet5(nn.Module):
    """Shapes: x (B, C, H, W) → C1 (B, 6, H−4, W−4) → S2 (B, 6, (H−4)/2, ·) → C3 (B, 16, ·)
    → S4 (B, 16, ·) → C5 (B, 120, 1, 1) at 32×32 → features (B, 120) → (B, K)."""

    def __init__(self, config: LeNetConfig):
        super().__init__()
        self.config = config
        self.input_shape = tuple(config.in_shape)
        self.input_spec = self.input_shape  # F6 reads the flattened C5 map: H×W fixed (32×32, or 28×28 padded)
        c, h, w = config.in_shape
        pad = 2 if config.small_input else 0
        sizes = [_c5_size(n, pad) for n in (h, w)]
        if min(sizes) < 1:
            fix = "; set model.small_input=true (C1 padding 2)" if not config.small_input else ""
            raise ValueError(
                f"input {h}×{w} is too small for LeNet-5 (C5 needs 5×5 maps after C1, S2, C3, S4: "
                f"32×32, or 28×28 with small_input){fix}"
            )
        act = ScaledTanh if config.activation == "scaled_tanh" else nn.ReLU

        self.c1 = nn.Conv2d(c, 6, 5, padding=pad)
        self.act1 = act()
        self.s2 = self._pool(6, act)
        self.c3 = SparseConv2d(C3_TABLE, 5) if config.c3_table else nn.Conv2d(6, 16, 5)
        self.act3 = act()
        self.s4 = self._pool(16, act)
        self.c5 = nn.Conv2d(16, 120, 5)
        self.act5 = act()
        self.f6 = nn.Linear(120 * sizes[0] * sizes[1], 84)
        self.act6 = act()
        self.head = (
            nn.Linear(84, config.num_classes) if config.output == "linear" else RBFOutput(84, config.num_classes)
        )
        if config.activation == "scaled_tanh":
            self._paper_init()

    def _pool(self, channels: int, act: type[nn.Module]) -> nn.Module:
        if self.config.pool == "trainable":
            return nn.Sequential(Subsampling(channels), act())
        return nn.MaxPool2d(2) if self.config.pool == "max" else nn.AvgPool2d(2)

    @torch.no_grad()
    def _paper_init(self) -> None:
        """Weights (and subsampling coefficients) ~ U(−2.4/F, 2.4/F), F the unit's fan-in
        (Appendix A); biases 0 (the paper does not say)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                fan_in = m.weight[0].numel()
                nn.init.uniform_(m.weight, -2.4 / fan_in, 2.4 / fan_in)
                nn.init.zeros_(m.bias)
            elif isinstance(m, Subsampling):
                nn.init.uniform_(m.weight, -2.4 / 4, 2.4 / 4)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, *self.input_spec))
        x = self.act1(self.c1(x))  # (B, 6, 28, 28) at 32×32
        x = self.s2(x)  # (B, 6, 14, 14)
        x = self.act3(self.c3(x))  # (B, 16, 10, 10)
        x = self.s4(x)  # (B, 16, 5, 5)
        x = self.act5(self.c5(x))  # (B, 120, 1, 1)
        return x.flatten(1)  # (B, 120)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(self.act6(self.f6(h)))  # (B, 84) → (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


_PAPER = "LeCun, Bottou, Bengio & Haffner, Gradient-Based Learning Applied to Document Recognition (Proc. IEEE 1998)"


@register_model(
    family="cnn",
    config=LeNetConfig,
    paper=_PAPER,
    meta={"num_params": 60_850, "macs": 326_520},
)
def lenet5(**overrides) -> LeNet5:
    """LeNet-5 (1998): scaled tanh, trainable subsampling, C3 by Table I."""
    return LeNet5(LeNetConfig(**overrides))


@register_model(
    family="cnn",
    config=LeNetConfig,
    paper=_PAPER,
    defaults={"activation": "relu", "pool": "max", "c3_table": False, "output": "linear"},
    meta={"num_params": 61_706, "macs": 416_520},
)
def lenet5_modern(**overrides) -> LeNet5:
    """LeNet-5 as usually re-implemented: ReLU, max pooling, full C3."""
    return LeNet5(LeNetConfig(**overrides))
