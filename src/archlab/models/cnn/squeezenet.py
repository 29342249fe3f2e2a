"""SqueezeNet: AlexNet-level accuracy from Fire modules with 50× fewer parameters.

Iandola, Han, Moskewicz, Ashraf, Dally & Keutzer, *SqueezeNet: AlexNet-level accuracy with 50x
fewer parameters and <0.5MB model size*, arXiv:1602.07360 (2016). Version 1.0 is the paper's
Table 1; version 1.1 (from the authors' repository) has a 3×3/64 conv1 and pools earlier, for
2.4× less computation at the same accuracy. Both as torchvision builds them.

Variants: squeezenet1_0 (1,248,424 parameters, 0.82 GMACs), squeezenet1_1 (1,235,496
parameters, 0.35 GMACs), at 1000 classes and 3×224×224.

Letters: B batch, C input channels, H×W input size, K classes, s / e squeeze and expand widths
of a Fire module, W ⋆ a convolution, P a 3×3 stride-2 ceil-mode max-pool, ‖ channel concatenation.

Equations:
    Fire(x) = ReLU(W_{e1} ⋆_{1×1} s) ‖ ReLU(W_{e3} ⋆_{3×3, p1} s),  s = ReLU(W_s ⋆_{1×1} x)
    1.0: h = Fire_{2..9} with P after conv1 (7×7/2, 96), Fire4 and Fire8
    1.1: h = Fire_{2..9} with P after conv1 (3×3/2, 64), Fire3 and Fire5
    y   = GlobalAvgPool(ReLU(W_10 ⋆_{1×1} drop(h)))       (B, K): conv10 is the classifier
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from archlab.registry import register_model
from archlab.registry.config import ImageShape, ModelConfig, PositiveInt, Probability
from archlab.utils.shapes import AtLeast, check_shape, min_side

# Fire modules (squeeze s, expand e = 1×1 and 3×3 widths each) and max-pools "M" after conv1
FIRE_PLAN: dict[str, tuple[tuple[int, int] | str, ...]] = {
    "1_0": ("M", (16, 64), (16, 64), (32, 128), "M", (32, 128), (48, 192), (48, 192), (64, 256), "M", (64, 256)),
    "1_1": ("M", (16, 64), (16, 64), "M", (32, 128), (32, 128), "M", (48, 192), (48, 192), (64, 256), (64, 256)),
}
# conv1: (out channels, kernel, stride) at ImageNet resolution
CONV1 = {"1_0": (96, 7, 2), "1_1": (64, 3, 2)}


def _pool_out(n: int, k: int = 3, s: int = 2) -> int:
    """Output side of a ceil-mode max-pool without padding (torch's rule); < 1 if too small."""
    if n < 2 or n < k - s + 1:
        return 0
    out = -(-(n - k) // s) + 1
    return out - 1 if (out - 1) * s >= n else out


class Fire(nn.Module):
    """Squeeze to s maps with 1×1 convs, expand with e 1×1 and e 3×3 convs, concatenate.
    Shapes: (B, C, H, W) → (B, 2e, H, W)."""

    def __init__(self, in_channels: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = nn.Conv2d(in_channels, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.act(self.squeeze(x))  # (B, s, H, W)
        return torch.cat([self.act(self.expand1x1(s)), self.act(self.expand3x3(s))], dim=1)  # (B, 2e, H, W)


@dataclass
class SqueezeNetConfig(ModelConfig):
    """SqueezeNet options; the defaults are torchvision's ``squeezenet1_0``.

    ``small_input`` (28×28 / 32×32): conv1 becomes a 3×3 stride-1 conv with padding 1 (same
    number of maps), the ResNet-CIFAR-style stem; the three max-pools stay, so a 32×32 input
    reaches the classifier at 4×4 (32 → 16 → 8 → 4) and a 28×28 one at 3×3.
    """

    in_shape: ImageShape = (3, 224, 224)  # (C, H, W): ImageNet crops
    num_classes: PositiveInt = 1000  # K
    small_input: bool = False  # conv1 3×3, stride 1, padding 1 for CIFAR-sized inputs
    version: Literal["1_0", "1_1"] = "1_0"  # 1_0: paper Table 1; 1_1: v1.1 (quote it in YAML: 1_0 reads as 10)
    dropout: Probability = 0.5  # before the conv10 classifier (paper §5: after fire9)


class SqueezeNet(nn.Module):
    """Shapes (1.0): x (B, C, 224, 224) → conv1 (B, 96, 109, 109) → (B, 512, 13, 13) after fire9
    → features (B, 512·13·13) → (B, K)."""

    def __init__(self, config: SqueezeNetConfig):
        super().__init__()
        if not 0.0 <= config.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {config.dropout}")
        self.config = config
        self.input_shape = tuple(config.in_shape)
        c, h, w = config.in_shape
        width, k, s = CONV1[config.version]
        conv1 = nn.Conv2d(c, width, 3, padding=1) if config.small_input else nn.Conv2d(c, width, k, stride=s)

        def last_side(n: int) -> int:  # the side of the fire9 map
            n = n if config.small_input else ((n - k) // s + 1 if n >= k else 0)
            for _ in range(3):
                n = _pool_out(n)
            return n

        sides = [last_side(h), last_side(w)]
        if min(sides) < 1:
            fix = "; set model.small_input=true" if not config.small_input else ""
            raise ValueError(f"input {h}×{w} is too small for SqueezeNet {config.version} (conv1 and three pools){fix}")
        # conv10 and the global average pool take any map: any H, W that leave fire9 at least 1×1
        side_min = min_side(lambda n: last_side(n) >= 1)
        self.input_spec = (c, AtLeast("H", side_min), AtLeast("W", side_min))
        self.feature_shape = (512, sides[0], sides[1])  # the map fire9 produces

        layers: list[nn.Module] = [conv1, nn.ReLU(inplace=True)]
        c = width
        for item in FIRE_PLAN[config.version]:
            if item == "M":
                layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
            else:
                squeeze, expand = item
                layers.append(Fire(c, squeeze, expand))
                c = 2 * expand
        self.features = nn.Sequential(*layers)
        self.final_conv = nn.Conv2d(c, config.num_classes, 1)
        self.classifier = nn.Sequential(
            nn.Dropout(config.dropout), self.final_conv, nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1)
        )
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        """As torchvision: conv10 N(0, 0.01), every other conv kaiming-uniform with torch's defaults
        (a = 0, gain √2: U(±√(6 / fan_in))), biases 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                if m is self.final_conv:
                    nn.init.normal_(m.weight, 0.0, 0.01)
                else:
                    nn.init.kaiming_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The fire9 map (B, 512, h, w), (B, 512, 13, 13) at 224×224. Not globally pooled, because the
        classifier is a 1×1 conv followed by ReLU *before* the average pool, and ReLU does not commute
        with it."""
        check_shape(x, (None, *self.input_spec))
        return self.features(x)  # (B, 512, h, w)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.classifier(h).flatten(1)  # (B, 512, h, w) → (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


_PAPER = (
    "Iandola et al., SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size "
    "(2016), arXiv:1602.07360"
)
_TEST = {"in_shape": (3, 16, 16), "small_input": True, "num_classes": 10}


@register_model(
    family="cnn",
    config=SqueezeNetConfig,
    paper=_PAPER,
    defaults={"version": "1_0"},
    test_overrides=_TEST,
    meta={"num_params": 1_248_424, "macs": 0.819e9, "source": "torchvision"},
)
def squeezenet1_0(**overrides) -> SqueezeNet:
    """SqueezeNet 1.0 (paper Table 1)."""
    return SqueezeNet(SqueezeNetConfig(**overrides))


@register_model(
    family="cnn",
    config=SqueezeNetConfig,
    paper=_PAPER,
    defaults={"version": "1_1"},
    test_overrides=_TEST,
    meta={"num_params": 1_235_496, "macs": 0.349e9, "source": "torchvision"},
)
def squeezenet1_1(**overrides) -> SqueezeNet:
    """SqueezeNet 1.1 (3×3 conv1, earlier pools)."""
    return SqueezeNet(SqueezeNetConfig(**overrides))
