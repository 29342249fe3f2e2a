"""EfficientNet B0–B7: MBConv networks scaled in width, depth and resolution together.

Tan & Le, *EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks* (ICML 2019),
arXiv:1905.11946. The baseline B0 (Table 1, found by architecture search) is a 3×3/2 stem, seven
stages of MBConv blocks — MobileNet V2's inverted residual with a squeeze-and-excitation gate and
SiLU ("swish") — a 1×1 convolution to 1280 channels, global pooling, dropout and a linear classifier.
Residual branches use drop-connect (stochastic depth, per example) with a rate growing linearly with
the block index, 0.2·i/N for block i of N (as the TF reference and torchvision: the last block gets
0.2·(N−1)/N).

Compound scaling (§3.3, Eq. 3): with one coefficient φ, depth d = α^φ, width w = β^φ, resolution
r = γ^φ, where α = 1.2, β = 1.1, γ = 1.15 were found by grid search on B0 so that α·β²·γ² ≈ 2 and the
FLOPs grow ≈ 2^φ. Channels become make_divisible(c·w, 8), repeats ⌈n·d⌉. ``phi`` applies the pure
formula. The published B1–B7 (Table 2; the TF code's ``efficientnet_params``, copied by torchvision
and timm) are *not* the formula's values: they were rounded by hand and deepen much less,

    φ   formula (w, d, r)        published (w, d, r)    dropout
    1   1.100, 1.200, 258        1.0, 1.1, 240          0.2
    2   1.210, 1.440, 296        1.1, 1.2, 260          0.3
    3   1.331, 1.728, 341        1.2, 1.4, 300          0.3
    4   1.464, 2.074, 392        1.4, 1.8, 380          0.4
    5   1.611, 2.488, 451        1.6, 2.2, 456          0.4
    6   1.772, 2.986, 518        1.8, 2.6, 528          0.5
    7   1.949, 3.583, 596        2.0, 3.1, 600          0.5

so the registered ``efficientnet_b1`` … ``b7`` use the published table, and ``phi`` is for
experiments with the rule itself: φ = 1 gives B2's width and depth (1.1, 1.2) at 258×258 and φ = 2
builds B3's network (1.21 and 1.44 round to the same channels and repeats as 1.2 and 1.4) at 296×296.
The ⌈·⌉ on short stages and the rounding to 8 make the realised cost grow faster than 2^φ: φ = 1, 2, 3
cost 2.6×, 4.7× and 8.4× B0's 0.39 GMACs, where α·β²·γ² = 1.92 predicts 1.9×, 3.7× and 7.1×.
The canonical ``in_shape`` is the paper's resolution. torchvision agrees everywhere except B2, whose
weights are evaluated at 288×288: its 1.09 GMACs are at 288 (0.99 GMACs at 260, the paper's 1.0B).

Letters: B batch, C channels (C_in block input, C' block output), H/W height/width, K classes,
t expansion ratio, k depthwise kernel (3 or 5), s stride, r = max(1, ⌊C_in/4⌋) SE width, σ sigmoid,
DW a depthwise k×k convolution, W a 1×1 convolution.

Equations:
    MBConv (t, k, s), SiLU(x) = x·σ(x):
        h = SiLU(BN(W_expand * x))                      C_in → tC_in  (omitted when t = 1)
        h = SiLU(BN(DW_{k×k, s} * h))
        h = h ⊙ σ(W_2 · SiLU(W_1 · GAP(h)))             squeeze-excite, tC_in → r → tC_in
        y = BN(W_project * h)                           tC_in → C'  (linear bottleneck)
        y = x + DropPath_{p_i}(y)                       only if s = 1 and C_in = C'
    scaling: width w = β^φ, depth d = α^φ, resolution = 224·γ^φ; c → make_divisible(c·w, 8), n → ⌈n·d⌉
    logits = W_fc · dropout(GAP(SiLU(BN(W_head * stages(stem(x)))))) + b          (B, K)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from archlab.layers.conv import ConvNormAct, DropPath, SqueezeExcite, init_conv_bn_, make_divisible
from archlab.registry import register_model
from archlab.registry.config import ImageShape, ModelConfig, NonNegativeFloat, PositiveFloat, PositiveInt, Probability
from archlab.utils.shapes import check_shape

PAPER = (
    "Tan & Le, EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks (ICML 2019), arXiv:1905.11946"
)
TEST_OVERRIDES = {"in_shape": (3, 32, 32), "num_classes": 10}

# compound-scaling constants (§3.3): depth α, width β, resolution γ, with α·β²·γ² ≈ 2
ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15

# B0, Table 1: expansion t, kernel k, stride s, input channels, output channels, repeats n
B0_STAGES: tuple[tuple[int, int, int, int, int, int], ...] = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)


def compound_scaling(phi: float, base_resolution: int = 224) -> tuple[float, float, int]:
    """(width, depth, resolution) = (β^φ, α^φ, round(224·γ^φ)) with α, β, γ = 1.2, 1.1, 1.15 (Eq. 3)."""
    return BETA**phi, ALPHA**phi, round(base_resolution * GAMMA**phi)


class MBConv(nn.Module):
    """Mobile inverted bottleneck with squeeze-excitation and drop-connect.

    Shapes: (B, C_in, H, W) → (B, C', ⌈H/s⌉, ⌈W/s⌉).
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int,
        stride: int,
        expand_ratio: int,
        drop_path: float,
        bn_eps: float = 1e-5,
        bn_momentum: float = 0.1,
    ):
        super().__init__()
        bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        hidden = make_divisible(c_in * expand_ratio, 8)  # tC_in
        self.use_residual = stride == 1 and c_in == c_out
        self.expand = ConvNormAct(c_in, hidden, 1, act_layer=nn.SiLU, **bn) if hidden != c_in else nn.Identity()
        self.dw = ConvNormAct(hidden, hidden, kernel, stride, groups=hidden, act_layer=nn.SiLU, **bn)
        # SE width: a quarter of the *block input* channels, not of the expanded ones
        self.se = SqueezeExcite(hidden, max(1, c_in // 4), act_layer=nn.SiLU)
        self.project = ConvNormAct(hidden, c_out, 1, act_layer=None, **bn)
        self.drop_path = DropPath(drop_path) if self.use_residual else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.expand(x)  # (B, tC_in, H, W)
        h = self.dw(h)  # (B, tC_in, H/s, W/s)
        h = self.se(h)  # (B, tC_in, H/s, W/s)
        h = self.project(h)  # (B, C', H/s, W/s)
        return x + self.drop_path(h) if self.use_residual else h


@dataclass
class EfficientNetConfig(ModelConfig):
    """EfficientNet (Tan & Le 2019) in torchvision's layout; defaults are B0.

    ``small_input`` makes the stem convolution stride 1 instead of 2; every other stride is kept, so
    the network downsamples by 16 (28×28 → 2×2 before the pool). Without it any input runs (padded
    stride-2 convolutions give ⌈H/2⌉, never 0): 28×28 ends on 1×1.

    ``phi``, when set, replaces ``width_mult``, ``depth_mult`` and the spatial size of ``in_shape`` by
    the compound-scaling formula β^φ, α^φ and round(224·γ^φ) (the channel count of ``in_shape`` is
    kept); see the module docstring for how the published B1–B7 differ from it. With ``small_input``
    the data's size is fixed (28×28 Fashion-MNIST), so the model keeps accepting ``in_shape`` and
    resamples each image bilinearly to round(H·γ^φ) before the stem: 28 → 32 at φ = 1, 37 at φ = 2.
    """

    in_shape: ImageShape = (3, 224, 224)  # (C, H, W): B0 at 224 (B1…B7: 240 … 600)
    num_classes: PositiveInt = 1000  # K
    small_input: bool = False  # stem stride 1 instead of 2 (28×28 / 32×32 images)
    width_mult: PositiveFloat = 1.0  # w: channels make_divisible(c·w, 8), head 4·make_divisible(320w, 8)
    depth_mult: PositiveFloat = 1.0  # d: repeats per stage ⌈n·d⌉
    dropout: Probability = 0.2  # before the classifier (B0/B1 0.2, B2/B3 0.3, B4/B5 0.4, B6/B7 0.5)
    drop_connect_rate: Probability = 0.2  # stochastic depth of the last block; block i of N gets rate·i/N
    phi: float | None = None  # compound coefficient φ: overrides width_mult, depth_mult and H, W
    bn_eps: PositiveFloat = 1e-5  # BatchNorm ε (torchvision: 1e-5 for B0–B4, 1e-3 for B5–B7 as TF)
    bn_momentum: NonNegativeFloat = 0.1  # BatchNorm momentum (torchvision: 0.1 for B0–B4, 0.01 for B5–B7)


class EfficientNet(nn.Module):
    """Shapes: x (B, C, H, W) → (B, K); features (B, 4·make_divisible(320w, 8)) = (B, 1280) for B0."""

    def __init__(self, config: EfficientNetConfig):
        super().__init__()
        self.config = config
        c, h, w = config.in_shape
        width, depth = config.width_mult, config.depth_mult
        self.resolution: tuple[int, int] | None = None  # resample the input to this size first
        if config.phi is not None:
            width, depth, res = compound_scaling(config.phi)
            if config.small_input:  # the data fixes the input size: resolution scaling happens inside
                scale = GAMMA**config.phi
                self.resolution = (round(h * scale), round(w * scale))
            else:
                h = w = res
        if width <= 0 or depth <= 0:
            raise ValueError(f"width_mult and depth_mult must be > 0, got {width} and {depth}")
        self.input_shape = (c, h, w)
        self.input_spec = (c, "H", "W")  # padded convolutions and global pooling: any H, W ≥ 1 (as torchvision)
        self.width_mult, self.depth_mult = width, depth
        bn = {"bn_eps": config.bn_eps, "bn_momentum": config.bn_momentum}

        stages = [
            (t, k, s, make_divisible(ci * width, 8), make_divisible(co * width, 8), math.ceil(n * depth))
            for t, k, s, ci, co, n in B0_STAGES
        ]
        n_blocks = sum(st[-1] for st in stages)
        self.stem = ConvNormAct(c, stages[0][3], 3, 1 if config.small_input else 2, act_layer=nn.SiLU, **bn)
        blocks: list[nn.Module] = []
        i = 0
        for t, k, s, c_in, c_out, n in stages:
            stage = []
            for j in range(n):
                p = config.drop_connect_rate * i / n_blocks  # linear in the block index
                stage.append(MBConv(c_in if j == 0 else c_out, c_out, k, s if j == 0 else 1, t, p, **bn))
                i += 1
            blocks.append(nn.Sequential(*stage))
        self.blocks = nn.Sequential(*blocks)
        self.num_features = 4 * stages[-1][4]  # 1280 for B0
        self.head_conv = ConvNormAct(stages[-1][4], self.num_features, 1, act_layer=nn.SiLU, **bn)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(self.num_features, config.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision: conv kaiming-normal (fan_out), BN γ=1 β=0, linear U(±1/√K), biases 0."""
        init_conv_bn_(self)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, *self.input_spec))
        if self.resolution is not None and self.resolution != tuple(x.shape[-2:]):
            x = F.interpolate(x, size=self.resolution, mode="bilinear", align_corners=False)  # (B, C, γ^φ·H, γ^φ·W)
        x = self.stem(x)  # (B, 32w, H/2, W/2)  (H with small_input)
        x = self.blocks(x)  # (B, 320w, H/32, W/32)
        x = self.head_conv(x)  # (B, 1280w, H/32, W/32)
        return self.pool(x).flatten(1)  # (B, 1280w)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(h))  # (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# -- builders: the published coefficients (Table 2 / TF efficientnet_params / torchvision) -----
_TF_BN = {"bn_eps": 1e-3, "bn_momentum": 0.01}  # torchvision B5–B7 (weights ported from TF)


@register_model(
    family="cnn",
    config=EfficientNetConfig,
    paper=PAPER,
    defaults={"width_mult": 1.0, "depth_mult": 1.0, "in_shape": (3, 224, 224), "dropout": 0.2},
    test_overrides=TEST_OVERRIDES,
    meta={"num_params": 5_288_548, "macs": 0.39e9, "source": "torchvision"},
)
def efficientnet_b0(**overrides) -> EfficientNet:
    """EfficientNet-B0: the searched baseline (w 1.0, d 1.0, 224×224)."""
    return EfficientNet(EfficientNetConfig(**overrides))


@register_model(
    family="cnn",
    config=EfficientNetConfig,
    paper=PAPER,
    defaults={"width_mult": 1.0, "depth_mult": 1.1, "in_shape": (3, 240, 240), "dropout": 0.2},
    test_overrides=TEST_OVERRIDES,
    meta={"num_params": 7_794_184, "macs": 0.69e9, "source": "torchvision"},
)
def efficientnet_b1(**overrides) -> EfficientNet:
    """EfficientNet-B1 (w 1.0, d 1.1, 240×240)."""
    return EfficientNet(EfficientNetConfig(**overrides))


@register_model(
    family="cnn",
    config=EfficientNetConfig,
    paper=PAPER,
    defaults={"width_mult": 1.1, "depth_mult": 1.2, "in_shape": (3, 260, 260), "dropout": 0.3},
    test_overrides=TEST_OVERRIDES,
    meta={"num_params": 9_109_994, "macs": 1.0e9, "source": "torchvision; MACs at 260×260: paper Table 2"},
)
def efficientnet_b2(**overrides) -> EfficientNet:
    """EfficientNet-B2 (w 1.1, d 1.2, 260×260)."""
    return EfficientNet(EfficientNetConfig(**overrides))


@register_model(
    family="cnn",
    config=EfficientNetConfig,
    paper=PAPER,
    defaults={"width_mult": 1.2, "depth_mult": 1.4, "in_shape": (3, 300, 300), "dropout": 0.3},
    test_overrides=TEST_OVERRIDES,
    meta={"num_params": 12_233_232, "macs": 1.83e9, "source": "torchvision"},
)
def efficientnet_b3(**overrides) -> EfficientNet:
    """EfficientNet-B3 (w 1.2, d 1.4, 300×300)."""
    return EfficientNet(EfficientNetConfig(**overrides))


@register_model(
    family="cnn",
    config=EfficientNetConfig,
    paper=PAPER,
    defaults={"width_mult": 1.4, "depth_mult": 1.8, "in_shape": (3, 380, 380), "dropout": 0.4},
    test_overrides=TEST_OVERRIDES,
    meta={"num_params": 19_341_616, "macs": 4.39e9, "source": "torchvision"},
)
def efficientnet_b4(**overrides) -> EfficientNet:
    """EfficientNet-B4 (w 1.4, d 1.8, 380×380)."""
    return EfficientNet(EfficientNetConfig(**overrides))


@register_model(
    family="cnn",
    config=EfficientNetConfig,
    paper=PAPER,
    defaults={"width_mult": 1.6, "depth_mult": 2.2, "in_shape": (3, 456, 456), "dropout": 0.4, **_TF_BN},
    test_overrides=TEST_OVERRIDES,
    meta={"num_params": 30_389_784, "macs": 10.27e9, "source": "torchvision"},
)
def efficientnet_b5(**overrides) -> EfficientNet:
    """EfficientNet-B5 (w 1.6, d 2.2, 456×456)."""
    return EfficientNet(EfficientNetConfig(**overrides))


@register_model(
    family="cnn",
    config=EfficientNetConfig,
    paper=PAPER,
    defaults={"width_mult": 1.8, "depth_mult": 2.6, "in_shape": (3, 528, 528), "dropout": 0.5, **_TF_BN},
    test_overrides=TEST_OVERRIDES,
    meta={"num_params": 43_040_704, "macs": 19.07e9, "source": "torchvision"},
)
def efficientnet_b6(**overrides) -> EfficientNet:
    """EfficientNet-B6 (w 1.8, d 2.6, 528×528)."""
    return EfficientNet(EfficientNetConfig(**overrides))


@register_model(
    family="cnn",
    config=EfficientNetConfig,
    paper=PAPER,
    defaults={"width_mult": 2.0, "depth_mult": 3.1, "in_shape": (3, 600, 600), "dropout": 0.5, **_TF_BN},
    test_overrides=TEST_OVERRIDES,
    meta={"num_params": 66_347_960, "macs": 37.75e9, "source": "torchvision"},
)
def efficientnet_b7(**overrides) -> EfficientNet:
    """EfficientNet-B7 (w 2.0, d 3.1, 600×600)."""
    return EfficientNet(EfficientNetConfig(**overrides))
