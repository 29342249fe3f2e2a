"""VGG: very deep stacks of 3×3 convolutions.

Simonyan & Zisserman, *Very Deep Convolutional Networks for Large-Scale Image Recognition*
(ICLR 2015), arXiv:1409.1556. Configurations A, B, D, E of Table 1 (11, 13, 16 and 19 weight
layers) as torchvision builds them: 3×3 convs with padding 1, five 2×2/2 max-pools, a 7×7
adaptive average pool and a 4096-4096-K classifier; the ``_bn`` variants put batch norm
(Ioffe & Szegedy 2015, not in the paper) after every conv.

Variants: vgg11, vgg13, vgg16, vgg19 and vgg11_bn, vgg13_bn, vgg16_bn, vgg19_bn.

Letters: B batch, C input channels, H×W input size, K classes, W ⋆ a 3×3 convolution with
padding 1, P a 2×2 stride-2 max-pool, n_s the number of convs in stage s (Table 1).

Equations:
    h ← ReLU(BN(W ⋆ h))                  n_s times in stage s (BN only with batch_norm)
    h ← P(h)                             after each of the 5 stages: 64, 128, 256, 512, 512 maps
    z = flatten(AdaptiveAvgPool_{7×7}(h))                       (B, 25088)
    y = W_3 drop(ReLU(W_2 drop(ReLU(W_1 z))))                   4096-4096-K
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from archlab.layers.conv import init_conv_bn_
from archlab.registry import register_model
from archlab.registry.config import ImageShape, ModelConfig, PositiveInt, Probability
from archlab.utils.shapes import AtLeast, check_shape

# convs per stage (Table 1); the stage widths are width · (1, 2, 4, 8, 8) = 64, 128, 256, 512, 512
STAGE_DEPTHS: dict[int, tuple[int, ...]] = {
    11: (1, 1, 2, 2, 2),  # A
    13: (2, 2, 2, 2, 2),  # B
    16: (2, 2, 3, 3, 3),  # D
    19: (2, 2, 4, 4, 4),  # E
}
STAGE_MULTIPLIERS = (1, 2, 4, 8, 8)


@dataclass
class VGGConfig(ModelConfig):
    """VGG options; the defaults are torchvision's ``vgg16``.

    ``small_input`` (the common CIFAR VGG, e.g. 32×32 → 1×1 after the five pools): the conv stack
    is unchanged, the max-pools round up (ceil mode, so 28×28 also ends at 1×1: 28→14→7→4→2→1),
    the features are globally average-pooled to 512 (instead of 7×7×512) and the classifier is
    512-512-K (``head_width`` defaults to 512 instead of 4096): VGG-16 then has 15.2M parameters
    at 10 classes instead of 134M.
    """

    in_shape: ImageShape = (3, 224, 224)  # (C, H, W): ImageNet crops
    num_classes: PositiveInt = 1000  # K
    small_input: bool = False  # CIFAR-style: ceil-mode pools, 1×1 pooled features, 512-wide head
    depth: Literal[11, 13, 16, 19] = 16  # weight layers: configuration A, B, D or E (Table 1)
    batch_norm: bool = False  # BN after every conv (the torchvision ``_bn`` models)
    width: PositiveInt = 64  # conv1 width; the stages have width · (1, 2, 4, 8, 8) maps (paper: 64)
    head_width: PositiveInt | None = None  # hidden FC width; None: 4096 (paper), or 512 with small_input
    dropout: Probability = 0.5  # after each hidden FC layer (paper §3.1: 0.5)


class VGG(nn.Module):
    """Shapes: x (B, C, 224, 224) → stages (B, 64, 112, 112) … (B, 512, 7, 7) → features
    (B, 25088) → (B, K); with small_input (B, C, 32, 32) → (B, 512, 1, 1) → (B, 512) → (B, K)."""

    def __init__(self, config: VGGConfig):
        super().__init__()
        if config.depth not in STAGE_DEPTHS:
            raise ValueError(f"depth must be one of {sorted(STAGE_DEPTHS)}, got {config.depth}")
        if not 0.0 <= config.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {config.dropout}")
        self.config = config
        self.input_shape = tuple(config.in_shape)
        c, h, w = config.in_shape
        if not config.small_input and min(h, w) < 32:
            raise ValueError(
                f"input {h}×{w} is too small for vgg{config.depth} (5 halvings need at least 32×32); "
                "set model.small_input=true"
            )
        # the adaptive pool before the classifier takes any map: any H, W the five pools leave ≥ 1 (ceil-mode
        # pools with small_input: any size)
        side_min = 1 if config.small_input else 32
        self.input_spec = (c, AtLeast("H", side_min), AtLeast("W", side_min))
        layers: list[nn.Module] = []
        if config.width < 1 or (config.head_width is not None and config.head_width < 1):
            raise ValueError(f"width and head_width must be ≥ 1, got {config.width} and {config.head_width}")
        for n_convs, mult in zip(STAGE_DEPTHS[config.depth], STAGE_MULTIPLIERS):
            width = config.width * mult
            for _ in range(n_convs):
                layers.append(nn.Conv2d(c, width, 3, padding=1))
                if config.batch_norm:
                    layers.append(nn.BatchNorm2d(width))
                layers.append(nn.ReLU(inplace=True))
                c = width
            layers.append(nn.MaxPool2d(2, 2, ceil_mode=config.small_input))
        self.features = nn.Sequential(*layers)
        side = 1 if config.small_input else 7
        self.avgpool = nn.AdaptiveAvgPool2d((side, side))
        hw = config.head_width or (512 if config.small_input else 4096)
        self.classifier = nn.Sequential(
            nn.Linear(c * side * side, hw),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(hw, hw),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(hw, config.num_classes),
        )
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        """As torchvision: convs kaiming-normal (fan_out, ReLU gain), BN 1/0, linear N(0, 0.01), biases 0."""
        init_conv_bn_(self, linear_std=0.01)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, *self.input_spec))
        x = self.features(x)  # (B, 512, H/32, W/32)
        x = self.avgpool(x)  # (B, 512, 7, 7), or (B, 512, 1, 1) with small_input
        return x.flatten(1)  # (B, 25088) or (B, 512)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.classifier(h)  # (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


_PAPER = (
    "Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition (ICLR 2015), "
    "arXiv:1409.1556"
)
_TEST = {"in_shape": (3, 32, 32), "small_input": True, "num_classes": 10, "width": 8, "head_width": 64}


@register_model(
    family="cnn",
    config=VGGConfig,
    paper=_PAPER,
    defaults={"depth": 11},
    test_overrides=_TEST,
    meta={"num_params": 132_863_336, "macs": 7.609e9, "source": "torchvision"},
)
def vgg11(**overrides) -> VGG:
    """VGG-11 (configuration A)."""
    return VGG(VGGConfig(**overrides))


@register_model(
    family="cnn",
    config=VGGConfig,
    paper=_PAPER,
    defaults={"depth": 13},
    test_overrides=_TEST,
    meta={"num_params": 133_047_848, "macs": 11.308e9, "source": "torchvision"},
)
def vgg13(**overrides) -> VGG:
    """VGG-13 (configuration B)."""
    return VGG(VGGConfig(**overrides))


@register_model(
    family="cnn",
    config=VGGConfig,
    paper=_PAPER,
    defaults={"depth": 16},
    test_overrides=_TEST,
    meta={"num_params": 138_357_544, "macs": 15.470e9, "source": "torchvision"},
)
def vgg16(**overrides) -> VGG:
    """VGG-16 (configuration D)."""
    return VGG(VGGConfig(**overrides))


@register_model(
    family="cnn",
    config=VGGConfig,
    paper=_PAPER,
    defaults={"depth": 19},
    test_overrides=_TEST,
    meta={"num_params": 143_667_240, "macs": 19.632e9, "source": "torchvision"},
)
def vgg19(**overrides) -> VGG:
    """VGG-19 (configuration E)."""
    return VGG(VGGConfig(**overrides))


_BN = {"batch_norm": True}


@register_model(
    family="cnn",
    config=VGGConfig,
    paper=_PAPER,
    defaults={"depth": 11, **_BN},
    test_overrides=_TEST,
    meta={"num_params": 132_868_840, "macs": 7.609e9, "source": "torchvision"},
)
def vgg11_bn(**overrides) -> VGG:
    """VGG-11 with batch norm."""
    return VGG(VGGConfig(**overrides))


@register_model(
    family="cnn",
    config=VGGConfig,
    paper=_PAPER,
    defaults={"depth": 13, **_BN},
    test_overrides=_TEST,
    meta={"num_params": 133_053_736, "macs": 11.308e9, "source": "torchvision"},
)
def vgg13_bn(**overrides) -> VGG:
    """VGG-13 with batch norm."""
    return VGG(VGGConfig(**overrides))


@register_model(
    family="cnn",
    config=VGGConfig,
    paper=_PAPER,
    defaults={"depth": 16, **_BN},
    test_overrides=_TEST,
    meta={"num_params": 138_365_992, "macs": 15.470e9, "source": "torchvision"},
)
def vgg16_bn(**overrides) -> VGG:
    """VGG-16 with batch norm."""
    return VGG(VGGConfig(**overrides))


@register_model(
    family="cnn",
    config=VGGConfig,
    paper=_PAPER,
    defaults={"depth": 19, **_BN},
    test_overrides=_TEST,
    meta={"num_params": 143_678_248, "macs": 19.632e9, "source": "torchvision"},
)
def vgg19_bn(**overrides) -> VGG:
    """VGG-19 with batch norm."""
    return VGG(VGGConfig(**overrides))
