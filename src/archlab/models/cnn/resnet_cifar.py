"""CIFAR-10 residual networks ResNet-20/32/44/56/110 and their plain twins (no shortcuts).

He, Zhang, Ren & Sun, *Deep Residual Learning for Image Recognition* (CVPR 2016), arXiv:1512.03385,
§4.2. A 3×3 convolution with 16 filters feeds three stages of n basic blocks (two 3×3 convolutions
each) on 32×32, 16×16 and 8×8 maps with 16, 32 and 64 filters; the first convolution of stages 2 and
3 has stride 2. Global average pooling and a 10-way linear layer close the 6n + 2 weighted layers
(n = 3, 5, 7, 9, 18 → 20, 32, 44, 56, 110). The paper's shortcuts are option A: identities, with the
input subsampled by 2 and zero channels appended where the block changes shape, so they add no
parameters (Table 6: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M). ``shortcut="B"`` uses 1×1 projections + BN
there instead. The plain networks (Fig. 6, left) are the same stacks without any shortcut; with them
the paper shows degradation: plain-56 has higher *training* error than plain-20, while ResNet-56 has
lower training error than ResNet-20.

Letters: B batch, C input channels, H/W height/width, P stage width (16, 32, 64), n blocks per stage,
K classes, s stride (2 in the first block of stages 2 and 3, else 1).

Equations:
    S(x) = x                                            same shape
         = pad_C(x[:, :, ::s, ::s])                     option A: subsample, append P − C zero channels
         = BN(W_s * x)                                  option B: 1×1 conv, stride s
    residual block:  y = ReLU(S(x) + BN(W_2 * ReLU(BN(W_1 * x))))     W_1, W_2 3×3; W_1 stride s
    plain block:     y = ReLU(BN(W_2 * ReLU(BN(W_1 * x))))
    logits = W_fc · GAP(stage_3(stage_2(stage_1(ReLU(BN(W_0 * x)))))) + b      W_0 3×3, 16 filters; (B, K)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from archlab.layers.conv import init_conv_bn_
from archlab.registry import register_model
from archlab.registry.config import ImageShape, ModelConfig, NonNegativeLayerCount, PositiveInt, Shape
from archlab.utils.shapes import AtLeast, check_shape

PAPER = "He et al., Deep Residual Learning for Image Recognition (CVPR 2016), arXiv:1512.03385, §4.2"


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)


class ShortcutA(nn.Module):
    """Parameter-free shortcut (option A): (B, C, H, W) → (B, P, ⌈H/s⌉, ⌈W/s⌉), extra channels zero."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        if c_out < c_in:
            raise ValueError(f"option A shortcuts can only add channels, got {c_in} → {c_out}")
        self.stride = stride
        self.extra = c_out - c_in

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]  # (B, C, ⌈H/s⌉, ⌈W/s⌉): same grid as a 3×3/s conv, pad 1
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))  # (B, P, ⌈H/s⌉, ⌈W/s⌉)


class CifarBasicBlock(nn.Module):
    """Two 3×3 convolutions, with an option-A/B shortcut or none (plain). (B, C, H, W) → (B, P, H/s, W/s)."""

    def __init__(self, c_in: int, planes: int, stride: int, shortcut: Literal["A", "B"], residual: bool):
        super().__init__()
        self.conv1 = conv3x3(c_in, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.residual = residual
        self.shortcut: nn.Module | None = None  # identity (residual) or nothing at all (plain)
        if residual and (stride != 1 or c_in != planes):
            if shortcut == "A":
                self.shortcut = ShortcutA(c_in, planes, stride)
            else:
                self.shortcut = nn.Sequential(
                    nn.Conv2d(c_in, planes, kernel_size=1, stride=stride, bias=False), nn.BatchNorm2d(planes)
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))  # (B, P, H/s, W/s)
        out = self.bn2(self.conv2(out))  # (B, P, H/s, W/s)
        if self.residual:
            out = out + (x if self.shortcut is None else self.shortcut(x))
        return self.relu(out)


@dataclass
class CifarResNetConfig(ModelConfig):
    """CIFAR ResNet options.

    ``small_input`` is accepted for uniformity with the other CNNs and changes nothing: the stem is
    already a 3×3 stride-1 convolution with no pooling, and global average pooling takes any input of
    at least 4×4 (28×28 MNIST-sized images end at 7×7).
    """

    in_shape: ImageShape = (3, 32, 32)  # (C, H, W): CIFAR-10 images
    num_classes: PositiveInt = 10  # K
    small_input: bool = False  # no effect (already a small-input network)
    depth: NonNegativeLayerCount = 20  # 6n + 2 weighted layers: 20, 32, 44, 56, 110 (n = 3, 5, 7, 9, 18)
    widths: Shape = (16, 32, 64)  # P of each stage (the stem has widths[0]); later stages halve H, W
    shortcut: Literal["A", "B"] = "A"  # where the shape changes: A zero-pad identity (paper), B 1×1 projection + BN
    residual: bool = True  # False: the plain network, no shortcut anywhere (Fig. 6 left)
    zero_init_residual: bool = False  # zero γ of each block's last BN (residual blocks start as identities)


class CifarResNet(nn.Module):
    """Shapes: x (B, C, H, W) → stem (B, 16, H, W) → stages (B, 16·2^i, H/2^i, W/2^i) → (B, 64) → (B, K)."""

    def __init__(self, config: CifarResNetConfig):
        super().__init__()
        self.config = config
        self.input_shape = tuple(config.in_shape)
        c, h, w = self.input_shape
        if config.depth < 8 or (config.depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 with n ≥ 1 (20, 32, 44, 56, 110), got {config.depth}")
        if not config.widths or min(config.widths) < 1:
            raise ValueError(f"widths must be positive, got {config.widths}")
        stride = 2 ** (len(config.widths) - 1)
        if min(h, w) < stride:
            n_halve = len(config.widths) - 1
            raise ValueError(f"input {h}×{w} is too small for {n_halve} halvings (total stride {stride})")
        self.input_spec = (c, AtLeast("H", stride), AtLeast("W", stride))  # global pooling: any H, W ≥ stride
        n = (config.depth - 2) // 6
        self.conv1 = conv3x3(c, config.widths[0])
        self.bn1 = nn.BatchNorm2d(config.widths[0])
        self.relu = nn.ReLU(inplace=True)
        c_in = config.widths[0]
        stages = []
        for i, planes in enumerate(config.widths):
            blocks = []
            for j in range(n):
                s = 2 if (i > 0 and j == 0) else 1
                blocks.append(CifarBasicBlock(c_in, planes, s, config.shortcut, config.residual))
                c_in = planes
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.num_features = c_in
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, config.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        init_conv_bn_(self)  # as torchvision's ResNet; the classifier keeps nn.Linear's default
        if self.config.zero_init_residual:
            for m in self.modules():
                if isinstance(m, CifarBasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, *self.input_spec))
        x = self.relu(self.bn1(self.conv1(x)))  # (B, 16, H, W)
        x = self.stages(x)  # (B, 64, H/4, W/4)
        return self.avgpool(x).flatten(1)  # (B, 64)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)  # (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model(
    family="cnn",
    config=CifarResNetConfig,
    paper=PAPER,
    defaults={"depth": 20},
    meta={"num_params": 269_722, "macs": 40_551_040},
)
def resnet20(**overrides) -> CifarResNet:
    """ResNet-20 for CIFAR: 3 basic blocks per stage, option-A shortcuts."""
    return CifarResNet(CifarResNetConfig(**overrides))


@register_model(
    family="cnn",
    config=CifarResNetConfig,
    paper=PAPER,
    defaults={"depth": 32},
    meta={"num_params": 464_154, "macs": 68_862_592},
)
def resnet32(**overrides) -> CifarResNet:
    """ResNet-32 for CIFAR: 5 basic blocks per stage, option-A shortcuts."""
    return CifarResNet(CifarResNetConfig(**overrides))


@register_model(
    family="cnn",
    config=CifarResNetConfig,
    paper=PAPER,
    defaults={"depth": 44},
    meta={"num_params": 658_586, "macs": 97_174_144},
)
def resnet44(**overrides) -> CifarResNet:
    """ResNet-44 for CIFAR: 7 basic blocks per stage, option-A shortcuts."""
    return CifarResNet(CifarResNetConfig(**overrides))


@register_model(
    family="cnn",
    config=CifarResNetConfig,
    paper=PAPER,
    defaults={"depth": 56},
    meta={"num_params": 853_018, "macs": 125_485_696},
)
def resnet56(**overrides) -> CifarResNet:
    """ResNet-56 for CIFAR: 9 basic blocks per stage, option-A shortcuts."""
    return CifarResNet(CifarResNetConfig(**overrides))


@register_model(
    family="cnn",
    config=CifarResNetConfig,
    paper=PAPER,
    defaults={"depth": 110},
    meta={"num_params": 1_727_962, "macs": 252_887_680},
)
def resnet110(**overrides) -> CifarResNet:
    """ResNet-110 for CIFAR: 18 basic blocks per stage, option-A shortcuts."""
    return CifarResNet(CifarResNetConfig(**overrides))


@register_model(
    family="cnn",
    config=CifarResNetConfig,
    paper=PAPER,
    defaults={"depth": 20, "residual": False},
    meta={"num_params": 269_722, "macs": 40_551_040},
)
def plain20(**overrides) -> CifarResNet:
    """Plain-20 for CIFAR: ResNet-20 without shortcuts (3 blocks per stage)."""
    return CifarResNet(CifarResNetConfig(**overrides))


@register_model(
    family="cnn",
    config=CifarResNetConfig,
    paper=PAPER,
    defaults={"depth": 32, "residual": False},
    meta={"num_params": 464_154, "macs": 68_862_592},
)
def plain32(**overrides) -> CifarResNet:
    """Plain-32 for CIFAR: ResNet-32 without shortcuts (5 blocks per stage)."""
    return CifarResNet(CifarResNetConfig(**overrides))


@register_model(
    family="cnn",
    config=CifarResNetConfig,
    paper=PAPER,
    defaults={"depth": 44, "residual": False},
    meta={"num_params": 658_586, "macs": 97_174_144},
)
def plain44(**overrides) -> CifarResNet:
    """Plain-44 for CIFAR: ResNet-44 without shortcuts (7 blocks per stage)."""
    return CifarResNet(CifarResNetConfig(**overrides))


@register_model(
    family="cnn",
    config=CifarResNetConfig,
    paper=PAPER,
    defaults={"depth": 56, "residual": False},
    meta={"num_params": 853_018, "macs": 125_485_696},
)
def plain56(**overrides) -> CifarResNet:
    """Plain-56 for CIFAR: ResNet-56 without shortcuts (9 blocks per stage)."""
    return CifarResNet(CifarResNetConfig(**overrides))


@register_model(
    family="cnn",
    config=CifarResNetConfig,
    paper=PAPER,
    defaults={"depth": 110, "residual": False},
    meta={"num_params": 1_727_962, "macs": 252_887_680},
)
def plain110(**overrides) -> CifarResNet:
    """Plain-110 for CIFAR: ResNet-110 without shortcuts (18 blocks per stage)."""
    return CifarResNet(CifarResNetConfig(**overrides))
