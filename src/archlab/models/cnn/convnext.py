"""ConvNeXt: a ResNet modernised step by step towards the Swin Transformer's design.

Liu, Mao, Wu, Feichtenhofer, Darrell & Xie, *A ConvNet for the 2020s* (CVPR 2022), arXiv:2201.03545.
A patchify stem (4×4 convolution, stride 4, + LayerNorm), four stages of identical blocks with widths
D_1…D_4 separated by downsampling layers (LayerNorm + 2×2 convolution, stride 2), then global average
pooling, LayerNorm and a linear classifier. A block is a 7×7 depthwise convolution, LayerNorm and an
inverted MLP (C → 4C → C, GELU) applied per pixel, scaled by a learnable per-channel layer scale γ
(initialised to 1e-6, so every block starts near the identity) and added to the input through
stochastic depth (rate linear in the block index from 0 to ``drop_path_rate``, torchvision/timm).

Variants (§3, torchvision): tiny depths (3, 3, 9, 3), dims (96, 192, 384, 768) — 28,589,128 params,
4.46 GMACs; small (3, 3, 27, 3), same dims — 50,223,688, 8.68; base (3, 3, 27, 3), (128, 256, 512,
1024) — 88,591,464, 15.36. ``convnext_atto`` is timm's smallest (depths (2, 2, 6, 2), dims (40, 80,
160, 320), 3,695,520 params, "3.7M" in timm): a size that trains on Fashion-MNIST in minutes. (timm builds atto with 1×1
convolutions for the MLP, ``conv_mlp=True``: the same parameters and arithmetic as the linear layers.)

Letters: B batch, C channels of the current stage (D_i), H/W height/width, K classes, γ layer scale,
DW a depthwise 7×7 convolution, LN LayerNorm over channels, GAP global average pooling.

Equations:
    block:      h = DW_{7×7} * x                                  (B, C, H, W)
                h = W_2 · GELU(W_1 · LN(h) + b_1) + b_2           per pixel, channels-last: C → 4C → C
                y = x + DropPath_{p_i}(γ ⊙ h)                     γ ∈ R^C, γ_0 = 1e-6
    stem:       h_0 = LN(W_0 * x)                                 4×4 conv, stride 4 (small_input: 2×2, stride 2)
    downsample: LN then 2×2 conv, stride 2, D_i → D_{i+1}
    logits    = W_fc · LN(GAP(stage_4(… stage_1(h_0)))) + b       (B, K)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from archlab.layers.conv import DropPath, LayerNorm2d
from archlab.registry import register_model
from archlab.registry.config import (
    ImageShape,
    ModelConfig,
    NonNegativeFloat,
    PositiveInt,
    Probability,
    Shape,
    StageDepths,
)
from archlab.utils.shapes import AtLeast, check_shape

PAPER = "Liu et al., A ConvNet for the 2020s (CVPR 2022), arXiv:2201.03545"
TEST_OVERRIDES = {"in_shape": (3, 32, 32), "num_classes": 10}
LN_EPS = 1e-6  # every LayerNorm (official code, torchvision, timm)


class ConvNeXtBlock(nn.Module):
    """DW 7×7 → LN → Linear 4C → GELU → Linear C → layer scale → drop path → + x.

    Args:
        dim: C. drop_path: this block's stochastic-depth rate.
        layer_scale_init: initial γ; 0 (or less) removes the layer scale.

    Shapes: (B, C, H, W) → (B, C, H, W).
    """

    def __init__(self, dim: int, drop_path: float = 0.0, layer_scale_init: float = 1e-6):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=LN_EPS)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), layer_scale_init)) if layer_scale_init > 0 else None
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x)  # (B, C, H, W)
        h = h.permute(0, 2, 3, 1)  # (B, H, W, C): channels-last for LN and the per-pixel MLP
        h = self.fc2(self.act(self.fc1(self.norm(h))))  # (B, H, W, 4C) → (B, H, W, C)
        if self.gamma is not None:
            h = self.gamma * h  # γ ⊙ h
        h = h.permute(0, 3, 1, 2)  # (B, C, H, W)
        return x + self.drop_path(h)


@dataclass
class ConvNeXtConfig(ModelConfig):
    """ConvNeXt (Liu et al. 2022); defaults are ConvNeXt-T.

    ``small_input`` replaces the 4×4/4 patchify stem by a 2×2/2 one (still non-overlapping patches,
    each 2×2 instead of 4×4; a 1×1/1 stem would keep 4× more positions at 4× the cost), so that with
    the three 2×2 downsamplings the network reduces by 16 instead of 32: 28 → 14 → 7 → 3 → 1 and
    32 → 16 → 8 → 4 → 2. Without it a 28×28 input would reach 0 (28 → 7 → 3 → 1 → 0) and is refused
    with a ValueError.
    """

    in_shape: ImageShape = (3, 224, 224)  # (C, H, W): ImageNet 224×224
    num_classes: PositiveInt = 1000  # K
    small_input: bool = False  # stem 2×2 stride 2 instead of 4×4 stride 4 (28×28 / 32×32 images)
    depths: StageDepths = (3, 3, 9, 3)  # blocks per stage (T: 3-3-9-3, S/B: 3-3-27-3, §2.2)
    dims: Shape = (96, 192, 384, 768)  # D_i, channels per stage (T/S: 96…768, B: 128…1024)
    drop_path_rate: Probability = 0.1  # stochastic depth of the last block (T 0.1, S 0.4, B 0.5; torchvision)
    layer_scale_init: NonNegativeFloat = 1e-6  # initial γ (Appendix A.1: 1e-6); 0 disables the layer scale


class ConvNeXt(nn.Module):
    """Shapes: x (B, C, H, W) → (B, K); features (B, D_last)."""

    def __init__(self, config: ConvNeXtConfig):
        super().__init__()
        self.config = config
        self.input_shape = tuple(config.in_shape)
        depths, dims = tuple(config.depths), tuple(config.dims)
        if len(depths) != len(dims) or not depths:
            raise ValueError(f"depths and dims must have the same non-zero length, got {depths} and {dims}")
        c, h, w = config.in_shape
        patch = 2 if config.small_input else 4
        self._check_size(h, w, patch, len(dims) - 1)
        side_min = patch * 2 ** (len(dims) - 1)  # global pooling: any H, W the stem and downsamplings keep ≥ 1
        self.input_spec = (c, AtLeast("H", side_min), AtLeast("W", side_min))

        self.stem = nn.Sequential(nn.Conv2d(c, dims[0], kernel_size=patch, stride=patch), LayerNorm2d(dims[0], LN_EPS))
        n_blocks = sum(depths)
        i = 0
        self.downsample = nn.ModuleList()  # before stages 2…: LN + 2×2/2 conv
        self.stages = nn.ModuleList()
        for s, (depth, dim) in enumerate(zip(depths, dims)):
            if s > 0:
                self.downsample.append(
                    nn.Sequential(
                        LayerNorm2d(dims[s - 1], LN_EPS), nn.Conv2d(dims[s - 1], dim, kernel_size=2, stride=2)
                    )
                )
            blocks = []
            for _ in range(depth):
                p = config.drop_path_rate * i / max(n_blocks - 1, 1)  # 0 … drop_path_rate
                blocks.append(ConvNeXtBlock(dim, p, config.layer_scale_init))
                i += 1
            self.stages.append(nn.Sequential(*blocks))
        self.num_features = dims[-1]
        self.norm = nn.LayerNorm(dims[-1], eps=LN_EPS)  # on the pooled features
        self.head = nn.Linear(dims[-1], config.num_classes)
        self._init_weights()

    def _check_size(self, h: int, w: int, patch: int, halvings: int) -> None:
        for name, n in (("height", h), ("width", w)):
            sizes = [n, n // patch]
            for _ in range(halvings):
                sizes.append(sizes[-1] // 2)
            if min(sizes) < 1:
                chain = " → ".join(str(s) for s in sizes)
                fix = "; set model.small_input=true" if patch == 4 else ""
                raise ValueError(
                    f"input {h}×{w} is too small for ConvNeXt (stem /{patch} then {halvings} halvings, "
                    f"{name}: {chain}){fix}"
                )

    def _init_weights(self) -> None:
        """torchvision/official: conv and linear weights truncated normal (σ 0.02), biases 0; LN 1/0."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, *self.input_spec))
        x = self.stem(x)  # (B, D_1, H/4, W/4)  (H/2 with small_input)
        for s, stage in enumerate(self.stages):
            if s > 0:
                x = self.downsample[s - 1](x)  # (B, D_s, H/2^(s+2), W/2^(s+2))
            x = stage(x)
        return self.norm(x.mean((2, 3)))  # (B, D_4): GAP then LN

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h)  # (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# -- builders ----------------------------------------------------------------------------------
@register_model(
    family="cnn",
    config=ConvNeXtConfig,
    paper=PAPER,
    defaults={"depths": (2, 2, 6, 2), "dims": (40, 80, 160, 320), "drop_path_rate": 0.0},
    test_overrides=TEST_OVERRIDES,
    meta={"num_params": 3_695_520, "macs": 0.55e9, "source": "timm"},
)
def convnext_atto(**overrides) -> ConvNeXt:
    """ConvNeXt-Atto (timm): depths 2-2-6-2, dims 40…320."""
    return ConvNeXt(ConvNeXtConfig(**overrides))


@register_model(
    family="cnn",
    config=ConvNeXtConfig,
    paper=PAPER,
    defaults={"depths": (3, 3, 9, 3), "dims": (96, 192, 384, 768), "drop_path_rate": 0.1},
    test_overrides=TEST_OVERRIDES,
    meta={"num_params": 28_589_128, "macs": 4.46e9, "source": "torchvision"},
)
def convnext_tiny(**overrides) -> ConvNeXt:
    """ConvNeXt-T: depths 3-3-9-3, dims 96…768."""
    return ConvNeXt(ConvNeXtConfig(**overrides))


@register_model(
    family="cnn",
    config=ConvNeXtConfig,
    paper=PAPER,
    defaults={"depths": (3, 3, 27, 3), "dims": (96, 192, 384, 768), "drop_path_rate": 0.4},
    test_overrides=TEST_OVERRIDES,
    meta={"num_params": 50_223_688, "macs": 8.68e9, "source": "torchvision"},
)
def convnext_small(**overrides) -> ConvNeXt:
    """ConvNeXt-S: depths 3-3-27-3, dims 96…768."""
    return ConvNeXt(ConvNeXtConfig(**overrides))


@register_model(
    family="cnn",
    config=ConvNeXtConfig,
    paper=PAPER,
    defaults={"depths": (3, 3, 27, 3), "dims": (128, 256, 512, 1024), "drop_path_rate": 0.5},
    test_overrides=TEST_OVERRIDES,
    meta={"num_params": 88_591_464, "macs": 15.36e9, "source": "torchvision"},
)
def convnext_base(**overrides) -> ConvNeXt:
    """ConvNeXt-B: depths 3-3-27-3, dims 128…1024."""
    return ConvNeXt(ConvNeXtConfig(**overrides))
