"""MobileNet V1 and V2: depthwise-separable and inverted-residual networks for mobile devices.

V1: Howard, Zhu, Chen, Kalenichenko, Wang, Weyand, Andreetto & Adam, *MobileNets: Efficient
Convolutional Neural Networks for Mobile Vision Applications* (arXiv 2017), arXiv:1704.04861.
A 3×3/2 convolution and 13 depthwise-separable layers (3×3 depthwise + BN + ReLU, then 1×1 pointwise
+ BN + ReLU; Table 1 and Fig. 3), a global average pool and a linear classifier. Two global knobs
(§3.3–3.4): the width multiplier α thins every layer (C → αC, cost ≈ α²) and the resolution
multiplier ρ shrinks the input (224 → ρ·224, cost ≈ ρ²). 1.0 MobileNet-224: 4.2M parameters and
569M mult-adds (Table 8); 0.5 MobileNet-224: 1.32M and 149M (Table 6).

V2: Sandler, Howard, Zhu, Zhmoginov & Chen, *MobileNetV2: Inverted Residuals and Linear
Bottlenecks* (CVPR 2018), arXiv:1801.04381. Blocks expand a thin bottleneck by t with a 1×1
convolution, filter it depthwise and project it back *linearly* (no activation: §3.2, ReLU would
destroy information in the low-dimensional manifold); the residual joins the thin ends (Table 1, 2).
ReLU6 throughout; a 1×1 convolution to 1280 channels before the pool; dropout 0.2. torchvision's
``mobilenet_v2``: 3,504,872 parameters, 0.30 GMACs at 224×224.

Width rounding: channel counts are make_divisible(c·α, 8) (V2 as torchvision; for V1 the four
published α ∈ {1, 0.75, 0.5, 0.25} give multiples of 8 either way, so the paper's counts hold).

Letters: B batch, C channels, H/W height/width, K classes, α width multiplier, ρ resolution
multiplier, t expansion ratio, s stride, DW a depthwise k×k convolution, W a 1×1 (pointwise) convolution.

Equations:
    V1 block (depthwise separable, Fig. 3):
        y = ReLU(BN(W_pw * ReLU(BN(DW_{3×3, s} * x))))
    V2 block (inverted residual with linear bottleneck, Table 1):
        h = ReLU6(BN(W_expand * x))                       C → tC   (omitted when t = 1)
        h = ReLU6(BN(DW_{3×3, s} * h))                    tC → tC
        y = BN(W_project * h)                             tC → C'  (linear: no activation)
        y = x + y                                         only if s = 1 and C = C'
    logits = W_fc · dropout(GAP(features(x))) + b        (B, K)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from archlab.layers.conv import ConvNormAct, init_conv_bn_, make_divisible
from archlab.registry import register_model
from archlab.registry.config import ImageShape, ModelConfig, PositiveFloat, PositiveInt, Probability
from archlab.utils.shapes import check_shape

PAPER_V1 = (
    "Howard et al., MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications "
    "(arXiv 2017), arXiv:1704.04861"
)
PAPER_V2 = "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks (CVPR 2018), arXiv:1801.04381"
TEST_OVERRIDES = {"in_shape": (3, 32, 32), "num_classes": 10}

# V1 body, Table 1: (output channels, stride) of the 13 depthwise-separable layers. The paper's table
# lists s2 for the last depthwise layer but its output stays 7×7: every implementation uses s1.
V1_LAYERS: tuple[tuple[int, int], ...] = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
)

# V2 body, Table 2: expansion t, output channels c, repeats n, stride s of the first repeat
V2_SETTING: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _init_weights(model: nn.Module) -> None:
    """torchvision's MobileNet init: conv kaiming-normal (fan_out), BN γ=1 β=0, linear N(0, 0.01²)."""
    init_conv_bn_(model, linear_std=0.01)


class MobileNet(nn.Module):
    """What V1 and V2 share: a feature stack, global average pooling, dropout and a linear classifier,
    with torchvision's initialisation. A subclass builds the stack and sets ``config``,
    ``input_shape`` and ``input_spec``.

    Shapes: x (B, C, H, W) → features (B, D) (D = ``num_features``, the stack's last width) → (B, K).
    """

    input_spec: tuple

    def __init__(self, features: list[nn.Module], num_features: int, num_classes: int, dropout: float):
        super().__init__()
        self.features = nn.Sequential(*features)
        self.num_features = num_features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(num_features, num_classes)
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, *self.input_spec))
        x = self.features(x)  # (B, D, H/32, W/32)  (H/16 with small_input)
        return self.pool(x).flatten(1)  # (B, D)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(h))  # (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# -- MobileNet V1 ------------------------------------------------------------------------------
class DepthwiseSeparable(nn.Sequential):
    """3×3 depthwise conv + BN + ReLU, then 1×1 pointwise conv + BN + ReLU (V1, Fig. 3).

    Shapes: (B, C, H, W) → (B, C', ⌈H/s⌉, ⌈W/s⌉).
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.add_module("dw", ConvNormAct(c_in, c_in, 3, stride, groups=c_in, act_layer=nn.ReLU))
        self.add_module("pw", ConvNormAct(c_in, c_out, 1, act_layer=nn.ReLU))


@dataclass
class MobileNetV1Config(ModelConfig):
    """MobileNet V1 (Howard et al. 2017).

    ``small_input`` makes the stem convolution stride 1 instead of 2 (the usual CIFAR adaptation, e.g.
    kuangliu/pytorch-cifar); the four stride-2 depthwise layers are kept, so a 28×28 input ends on a
    2×2 map (32×32 → 2×2) instead of 1×1. Without it any input runs (padded stride-2 convolutions
    give ⌈H/2⌉, never 0): 28×28 ends on 1×1.

    ``resolution_mult`` ρ is the paper's resolution multiplier: the model's input becomes
    (C, round(ρH), round(ρW)) of ``in_shape`` (224 → 192, 160, 128 for ρ = 6/7, 5/7, 4/7). It changes
    only ``model.input_shape`` (and so the mult-adds, ≈ ρ²), never the parameters.
    """

    in_shape: ImageShape = (3, 224, 224)  # (C, H, W) before ρ: ImageNet 224×224
    num_classes: PositiveInt = 1000  # K
    small_input: bool = False  # stem stride 1 instead of 2 (28×28 / 32×32 images)
    width_mult: PositiveFloat = 1.0  # α (paper: 1.0, 0.75, 0.5, 0.25): every width c → make_divisible(αc, 8)
    resolution_mult: PositiveFloat = 1.0  # ρ (paper: 1, 6/7, 5/7, 4/7): input H, W → round(ρH), round(ρW)
    dropout: Probability = 0.001  # before the classifier (TF-slim / Keras reference: keep_prob 0.999)


class MobileNetV1(MobileNet):
    """Shapes: x (B, C, round(ρH), round(ρW)) → (B, K); features (B, make_divisible(1024α, 8))."""

    def __init__(self, config: MobileNetV1Config):
        c, h, w = config.in_shape
        rho, alpha = config.resolution_mult, config.width_mult
        if rho <= 0 or alpha <= 0:
            raise ValueError(f"width_mult and resolution_mult must be > 0, got {alpha} and {rho}")
        input_shape = (c, round(h * rho), round(w * rho))
        if min(input_shape[1:]) < 1:
            raise ValueError(f"input {input_shape[1]}×{input_shape[2]} is empty; raise resolution_mult")

        c_prev = make_divisible(32 * alpha, 8)
        layers: list[nn.Module] = [ConvNormAct(c, c_prev, 3, 1 if config.small_input else 2, act_layer=nn.ReLU)]
        for c_out, stride in V1_LAYERS:
            c_out = make_divisible(c_out * alpha, 8)
            layers.append(DepthwiseSeparable(c_prev, c_out, stride))
            c_prev = c_out
        super().__init__(layers, c_prev, config.num_classes, config.dropout)  # D = 1024α
        self.config = config
        self.input_shape = input_shape
        self.input_spec = (c, "H", "W")  # padded convolutions and global pooling: any H, W ≥ 1 (as torchvision)


# -- MobileNet V2 ------------------------------------------------------------------------------
class InvertedResidual(nn.Module):
    """Expand 1×1 (ReLU6) → depthwise 3×3 (ReLU6) → linear 1×1 projection, + x when shapes match.

    Shapes: (B, C, H, W) → (B, C', ⌈H/s⌉, ⌈W/s⌉).
    """

    def __init__(self, c_in: int, c_out: int, stride: int, expand_ratio: int):
        super().__init__()
        hidden = int(round(c_in * expand_ratio))  # tC
        self.use_residual = stride == 1 and c_in == c_out
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(ConvNormAct(c_in, hidden, 1, act_layer=nn.ReLU6))  # expand
        layers.append(ConvNormAct(hidden, hidden, 3, stride, groups=hidden, act_layer=nn.ReLU6))  # depthwise
        layers.append(ConvNormAct(hidden, c_out, 1, act_layer=None))  # linear bottleneck
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)  # (B, C', H/s, W/s)
        return x + y if self.use_residual else y


@dataclass
class MobileNetV2Config(ModelConfig):
    """MobileNet V2 (Sandler et al. 2018), torchvision's layout.

    ``small_input`` makes the stem convolution stride 1 instead of 2; every other stride is kept, so
    the network downsamples by 16 instead of 32 (28×28 → 2×2 before the pool). kuangliu/pytorch-cifar
    additionally sets the second stage (24 channels) to stride 1; we do not. Without ``small_input``
    any input runs (⌈H/2⌉ never reaches 0): 28×28 ends on 1×1.
    """

    in_shape: ImageShape = (3, 224, 224)  # (C, H, W): ImageNet 224×224
    num_classes: PositiveInt = 1000  # K
    small_input: bool = False  # stem stride 1 instead of 2 (28×28 / 32×32 images)
    width_mult: PositiveFloat = 1.0  # α: widths make_divisible(αc, 8); the last 1280 only grows (α > 1)
    dropout: Probability = 0.2  # before the classifier (torchvision)


class MobileNetV2(MobileNet):
    """Shapes: x (B, C, H, W) → (B, K); features (B, make_divisible(1280·max(1, α), 8))."""

    def __init__(self, config: MobileNetV2Config):
        alpha = config.width_mult
        if alpha <= 0:
            raise ValueError(f"width_mult must be > 0, got {alpha}")
        c_prev = make_divisible(32 * alpha, 8)
        last = make_divisible(1280 * max(1.0, alpha), 8)
        layers: list[nn.Module] = [
            ConvNormAct(config.in_shape[0], c_prev, 3, 1 if config.small_input else 2, act_layer=nn.ReLU6)
        ]
        for t, c, n, s in V2_SETTING:
            c_out = make_divisible(c * alpha, 8)
            for i in range(n):
                layers.append(InvertedResidual(c_prev, c_out, s if i == 0 else 1, t))
                c_prev = c_out
        layers.append(ConvNormAct(c_prev, last, 1, act_layer=nn.ReLU6))
        super().__init__(layers, last, config.num_classes, config.dropout)  # D = 1280·max(1, α)
        self.config = config
        self.input_shape = tuple(config.in_shape)
        self.input_spec = (config.in_shape[0], "H", "W")  # any H, W ≥ 1, as V1


# -- builders ----------------------------------------------------------------------------------
@register_model(
    family="cnn",
    config=MobileNetV1Config,
    paper=PAPER_V1,
    test_overrides=TEST_OVERRIDES,
    meta={"num_params": 4_231_976, "macs": 569e6, "source": "Howard et al. 2017, Table 8"},
)
def mobilenet_v1(**overrides) -> MobileNetV1:
    """MobileNet V1: 13 depthwise-separable layers, width α and resolution ρ multipliers."""
    return MobileNetV1(MobileNetV1Config(**overrides))


@register_model(
    family="cnn",
    config=MobileNetV2Config,
    paper=PAPER_V2,
    test_overrides=TEST_OVERRIDES,
    meta={"num_params": 3_504_872, "macs": 0.30e9, "source": "torchvision"},
)
def mobilenet_v2(**overrides) -> MobileNetV2:
    """MobileNet V2: inverted residuals with linear bottlenecks, ReLU6."""
    return MobileNetV2(MobileNetV2Config(**overrides))
