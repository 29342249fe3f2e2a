"""Densely connected networks: DenseNet-BC-121/161/169/201 (ImageNet) and DenseNet-BC-100 (CIFAR).

Huang, Liu, van der Maaten & Weinberger, *Densely Connected Convolutional Networks* (CVPR 2017),
arXiv:1608.06993. Inside a dense block every layer receives the concatenation of all earlier feature
maps of the block and adds k new ones (k, the growth rate). DenseNet-BC layers first reduce their input
with a 1×1 convolution to 4k channels (B, the bottleneck) before the 3×3 convolution, and the
transition layers between blocks compress the channels by θ = 0.5 (C) and halve H and W with a 2×2
average pool. The ImageNet networks (Table 1; torchvision's layout) have a 7×7/2 convolution, BN,
ReLU and a 3×3/2 max-pool as stem and four blocks: 121 = (6, 12, 24, 16), 169 = (6, 12, 32, 32),
201 = (6, 12, 48, 32) with k = 32 and 64 stem filters, 161 = (6, 12, 36, 24) with k = 48 and 96.
The CIFAR DenseNet-BC-100 (k = 12, Table 2) has a single 3×3 convolution with 2k filters as stem and
three blocks of (100 − 4)/6 = 16 layers on 32×32, 16×16 and 8×8 maps.

Letters: B batch, C channels entering a layer, H/W height/width, k growth rate, ℓ layers of a block,
C_0 channels entering a block, θ compression, K classes.

Equations:
    dense layer:  H(x) = W_2 * ReLU(BN(W_1 * ReLU(BN(x))))          W_1 1×1 C→4k, W_2 3×3 4k→k
    dense block:  x_ℓ = H_ℓ([x_0, x_1, …, x_{ℓ−1}])                 [·] concatenation over channels;
                  output [x_0, …, x_ℓ] has C_0 + ℓ·k channels
    transition:   T(x) = avgpool_{2,2}(W_t * ReLU(BN(x)))            W_t 1×1 C→⌊θC⌋
    logits = W_fc · GAP(ReLU(BN(block_n(… T(block_1(stem(x))))))) + b      (B, K)
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from archlab.registry import register_model
from archlab.registry.config import (
    ImageShape,
    ModelConfig,
    NonNegativeInt,
    PositiveInt,
    Probability,
    StageDepths,
)
from archlab.utils.shapes import AtLeast, check_shape, min_side

PAPER = "Huang et al., Densely Connected Convolutional Networks (CVPR 2017), arXiv:1608.06993"


class DenseLayer(nn.Module):
    """BN-ReLU-Conv(1×1)-BN-ReLU-Conv(3×3). Shapes: (B, C, H, W) → (B, k, H, W) (the new features only)."""

    def __init__(self, c_in: int, growth_rate: int, bn_size: int, drop_rate: float):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(c_in)
        self.relu1 = nn.ReLU(inplace=True)
        if bn_size > 0:  # DenseNet-B: bottleneck to bn_size·k channels
            c_mid = bn_size * growth_rate
            self.conv1: nn.Module = nn.Conv2d(c_in, c_mid, kernel_size=1, bias=False)
            self.norm2: nn.Module = nn.BatchNorm2d(c_mid)
            self.relu2: nn.Module = nn.ReLU(inplace=True)
        else:  # plain DenseNet layer: BN-ReLU-Conv(3×3) only
            c_mid = c_in
            self.conv1 = self.norm2 = self.relu2 = nn.Identity()
        self.conv2 = nn.Conv2d(c_mid, growth_rate, kernel_size=3, padding=1, bias=False)
        self.drop_rate = drop_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.relu1(self.norm1(x)))  # (B, 4k, H, W)
        h = self.conv2(self.relu2(self.norm2(h)))  # (B, k, H, W)
        if self.drop_rate > 0:  # on the new features, as torchvision
            h = F.dropout(h, p=self.drop_rate, training=self.training)
        return h


class DenseBlock(nn.ModuleDict):
    """ℓ dense layers. Shapes: (B, C_0, H, W) → (B, C_0 + ℓ·k, H, W)."""

    def __init__(self, num_layers: int, c_in: int, growth_rate: int, bn_size: int, drop_rate: float):
        super().__init__()
        for i in range(num_layers):
            self[f"denselayer{i + 1}"] = DenseLayer(c_in + i * growth_rate, growth_rate, bn_size, drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.values():
            x = torch.cat([x, layer(x)], dim=1)  # (B, C + k, H, W)
        return x


class Transition(nn.Sequential):
    """BN-ReLU-Conv(1×1)-AvgPool(2×2). Shapes: (B, C, H, W) → (B, ⌊θC⌋, ⌊H/2⌋, ⌊W/2⌋)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(
            OrderedDict(
                norm=nn.BatchNorm2d(c_in),
                relu=nn.ReLU(inplace=True),
                conv=nn.Conv2d(c_in, c_out, kernel_size=1, bias=False),
                pool=nn.AvgPool2d(kernel_size=2, stride=2),
            )
        )


@dataclass
class DenseNetConfig(ModelConfig):
    """DenseNet options.

    ``small_input`` uses the paper's own CIFAR stem (§3, Implementation details): a single 3×3 stride-1
    convolution, with no BN-ReLU (the first dense layer starts with its own BN-ReLU) and no max-pool,
    so that 32×32 images enter the first block at full resolution. ``bn_size=0`` gives layers without the
    bottleneck (DenseNet, not -B) and ``compression=1`` transitions without compression (not -C).
    """

    in_shape: ImageShape = (3, 224, 224)  # (C, H, W): ImageNet crops
    num_classes: PositiveInt = 1000  # K
    small_input: bool = False  # 3×3 stride-1 stem, no BN-ReLU, no max-pool (the paper's CIFAR stem)
    growth_rate: PositiveInt = 32  # k, new channels per dense layer
    block_config: StageDepths = (6, 12, 24, 16)  # dense layers per block (DenseNet-121, Table 1)
    num_init_features: PositiveInt = 64  # stem filters (2k for DenseNet-BC)
    bn_size: NonNegativeInt = 4  # bottleneck width bn_size·k (B); 0 = no bottleneck layer
    compression: float = 0.5  # θ: a transition keeps ⌊θC⌋ channels (C); 1 = no compression
    drop_rate: Probability = 0.0  # dropout on each dense layer's new features


class DenseNet(nn.Module):
    """Shapes: x (B, C, H, W) → stem (B, C_0, H/4, W/4) → blocks and transitions (÷2 each) → (B, D) → (B, K).

    Module names follow torchvision (features.conv0 … features.norm5, classifier), so its state dicts load.
    """

    def __init__(self, config: DenseNetConfig):
        super().__init__()
        self.config = config
        self.input_shape = tuple(config.in_shape)
        c, h, w = self.input_shape
        if not config.block_config or min(config.block_config) < 1:
            raise ValueError(f"block_config needs ≥ 1 layer per block, got {config.block_config}")
        if not 0.0 < config.compression <= 1.0:
            raise ValueError(f"compression θ must be in (0, 1], got {config.compression}")
        if not 0.0 <= config.drop_rate < 1.0:
            raise ValueError(f"drop_rate must be in [0, 1), got {config.drop_rate}")
        self._check_input_size(h, w)
        k, c0 = config.growth_rate, config.num_init_features
        if config.small_input:
            stem = OrderedDict(conv0=nn.Conv2d(c, c0, kernel_size=3, padding=1, bias=False))
        else:
            stem = OrderedDict(
                conv0=nn.Conv2d(c, c0, kernel_size=7, stride=2, padding=3, bias=False),
                norm0=nn.BatchNorm2d(c0),
                relu0=nn.ReLU(inplace=True),
                pool0=nn.MaxPool2d(kernel_size=3, stride=2, padding=1),
            )
        self.features = nn.Sequential(stem)
        n = c0
        for i, num_layers in enumerate(config.block_config):
            self.features.add_module(
                f"denseblock{i + 1}", DenseBlock(num_layers, n, k, config.bn_size, config.drop_rate)
            )
            n += num_layers * k
            if i != len(config.block_config) - 1:
                n_out = math.floor(config.compression * n)
                self.features.add_module(f"transition{i + 1}", Transition(n, n_out))
                n = n_out
        self.features.add_module("norm5", nn.BatchNorm2d(n))
        self.num_features = n
        self.classifier = nn.Linear(n, config.num_classes)
        self._init_weights()

    def _check_input_size(self, h: int, w: int) -> None:
        """The 2×2 average pools floor: each transition needs at least a 2×2 map. The global pool at
        the end takes any map, so any H, W from that minimum on fit (``self.input_spec``)."""
        side_min = min_side(self._fits)
        if min(h, w) < side_min:
            n_trans = len(self.config.block_config) - 1
            raise ValueError(
                f"input {h}×{w} is too small for this DenseNet (stem ÷4 and {n_trans} transitions ÷2 leave "
                "no pixels for the last blocks); set model.small_input=true"
            )
        self.input_spec = (self.input_shape[0], AtLeast("H", side_min), AtLeast("W", side_min))

    def _fits(self, size: int) -> bool:
        if not self.config.small_input:
            size = (size - 1) // 2 + 1  # 7×7/2 conv, padding 3
            size = (size - 1) // 2 + 1  # 3×3/2 max-pool, padding 1
        for _ in range(len(self.config.block_config) - 1):
            if size < 2:
                return False
            size //= 2
        return True

    def _init_weights(self) -> None:
        # torchvision's init: He-normal (fan_in) convolutions, BN γ=1 β=0, zero linear bias
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, *self.input_spec))
        x = self.features(x)  # (B, D, H/32, W/32) for four blocks (H/4, W/4 for three with small_input)
        x = F.relu(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)  # (B, D)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.classifier(h)  # (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


_SMOKE = {"in_shape": (3, 32, 32), "num_classes": 10}


@register_model(
    family="cnn",
    config=DenseNetConfig,
    paper=PAPER,
    defaults={"growth_rate": 32, "block_config": (6, 12, 24, 16), "num_init_features": 64},
    test_overrides=_SMOKE,
    meta={"num_params": 7_978_856, "macs": 2.83e9, "source": "torchvision"},
)
def densenet121(**overrides) -> DenseNet:
    """DenseNet-BC-121: k=32, blocks (6, 12, 24, 16)."""
    return DenseNet(DenseNetConfig(**overrides))


@register_model(
    family="cnn",
    config=DenseNetConfig,
    paper=PAPER,
    defaults={"growth_rate": 48, "block_config": (6, 12, 36, 24), "num_init_features": 96},
    test_overrides=_SMOKE,
    meta={"num_params": 28_681_000, "macs": 7.73e9, "source": "torchvision"},
)
def densenet161(**overrides) -> DenseNet:
    """DenseNet-BC-161: k=48, blocks (6, 12, 36, 24), 96 stem filters."""
    return DenseNet(DenseNetConfig(**overrides))


@register_model(
    family="cnn",
    config=DenseNetConfig,
    paper=PAPER,
    defaults={"growth_rate": 32, "block_config": (6, 12, 32, 32), "num_init_features": 64},
    test_overrides=_SMOKE,
    meta={"num_params": 14_149_480, "macs": 3.36e9, "source": "torchvision"},
)
def densenet169(**overrides) -> DenseNet:
    """DenseNet-BC-169: k=32, blocks (6, 12, 32, 32)."""
    return DenseNet(DenseNetConfig(**overrides))


@register_model(
    family="cnn",
    config=DenseNetConfig,
    paper=PAPER,
    defaults={"growth_rate": 32, "block_config": (6, 12, 48, 32), "num_init_features": 64},
    test_overrides=_SMOKE,
    meta={"num_params": 20_013_928, "macs": 4.29e9, "source": "torchvision"},
)
def densenet201(**overrides) -> DenseNet:
    """DenseNet-BC-201: k=32, blocks (6, 12, 48, 32)."""
    return DenseNet(DenseNetConfig(**overrides))


@register_model(
    family="cnn",
    config=DenseNetConfig,
    paper=PAPER,
    defaults={
        "in_shape": (3, 32, 32),
        "num_classes": 10,
        "small_input": True,
        "growth_rate": 12,
        "block_config": (16, 16, 16),
        "num_init_features": 24,
    },
    meta={"num_params": 769_162, "macs": 287_929_692},
)
def densenet_bc_100(**overrides) -> DenseNet:
    """DenseNet-BC-100 for CIFAR: k=12, three blocks of 16 layers."""
    return DenseNet(DenseNetConfig(**overrides))
