"""Residual networks for ImageNet: ResNet-18/34/50/101/152 in torchvision's layout.

He, Zhang, Ren & Sun, *Deep Residual Learning for Image Recognition* (CVPR 2016), arXiv:1512.03385.
A 7×7/2 convolution and a 3×3/2 max-pool (the stem, ÷4) feed four stages of residual blocks with
widths P = 64, 128, 256, 512; every stage after the first halves H and W in its first block. A global
average pool and one linear layer read out. ResNet-18/34 stack basic blocks (two 3×3 convolutions);
ResNet-50/101/152 stack bottleneck blocks (1×1 reduce, 3×3, 1×1 expand ×4, Table 1 of the paper).
Shortcuts are identities, or a 1×1 convolution + BN where the shape changes (the paper's option B).

Bottleneck stride: like torchvision ("ResNet v1.5"), the downsampling stride sits on the 3×3
convolution, not on the first 1×1 as in the paper and the original Caffe model (v1). The 1×1/2 of v1
discards three quarters of the positions before any spatial filtering; v1.5 is about 0.5% more
accurate on ImageNet top-1 at 4.09 instead of 3.86 GMACs (ResNet-50). ``stride_in_1x1=True`` restores
v1; the parameter count does not change.

Letters: B batch, C input channels, H/W height/width, P stage width (planes), E block expansion
(1 basic, 4 bottleneck), K classes, s stride (1, or 2 in the first block of stages 2–4).

Equations:
    S(x)   = x                           if the block keeps the shape
           = BN(W_s * x)                 otherwise (1×1 conv, stride s: option B)
    basic:      y = ReLU(S(x) + BN(W_2 * ReLU(BN(W_1 * x))))                    W_1, W_2 3×3; W_1 stride s
    bottleneck: y = ReLU(S(x) + BN(W_3 * ReLU(BN(W_2 * ReLU(BN(W_1 * x))))))     W_1 1×1 C→P, W_2 3×3 stride s,
                                                                                  W_3 1×1 P→4P
    stem:       h_0 = maxpool_{3,2}(ReLU(BN(W_0 * x)))                            W_0 7×7 stride 2
    logits      = W_fc · GAP(stage_4(… stage_1(h_0))) + b                         (B, K)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from archlab.layers.conv import init_conv_bn_
from archlab.registry import register_model
from archlab.registry.config import ImageShape, ModelConfig, PositiveInt, StageDepths
from archlab.utils.shapes import AtLeast, check_shape

PAPER = "He et al., Deep Residual Learning for Image Recognition (CVPR 2016), arXiv:1512.03385"


def conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    """3×3 convolution with 'same' padding and no bias (BN follows)."""
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=1, stride=stride, bias=False)


def projection(c_in: int, c_out: int, stride: int) -> nn.Module | None:
    """Option B shortcut: a 1×1 convolution + BN where the block changes shape, else None (identity)."""
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    """Two 3×3 convolutions (ResNet-18/34). Shapes: (B, C, H, W) → (B, P, H/s, W/s)."""

    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int = 1, stride_in_1x1: bool = False):
        super().__init__()
        del stride_in_1x1  # a basic block has a single place for the stride
        self.conv1 = conv3x3(c_in, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = projection(c_in, planes, stride)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)  # (B, P, H/s, W/s)
        out = self.relu(self.bn1(self.conv1(x)))  # (B, P, H/s, W/s)
        out = self.bn2(self.conv2(out))
        out += identity  # in place, as timm: one tensor fewer per block (BN's backward needs its input only)
        return self.relu(out)


class Bottleneck(nn.Module):
    """1×1 reduce → 3×3 → 1×1 expand (ResNet-50/101/152). Shapes: (B, C, H, W) → (B, 4P, H/s, W/s)."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1, stride_in_1x1: bool = False):
        super().__init__()
        s1, s2 = (stride, 1) if stride_in_1x1 else (1, stride)  # v1 vs v1.5 (see the module docstring)
        c_out = planes * self.expansion
        self.conv1 = conv1x1(c_in, planes, s1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, s2)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, c_out)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = projection(c_in, c_out, stride)

    @property
    def last_bn(self) -> nn.BatchNorm2d:
        return self.bn3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)  # (B, 4P, H/s, W/s)
        out = self.relu(self.bn1(self.conv1(x)))  # (B, P, H, W)  (H/s with stride_in_1x1)
        out = self.relu(self.bn2(self.conv2(out)))  # (B, P, H/s, W/s)
        out = self.bn3(self.conv3(out))  # (B, 4P, H/s, W/s)
        out += identity  # in place (see BasicBlock)
        return self.relu(out)


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


@dataclass
class ResNetConfig(ModelConfig):
    """ResNet options.

    ``small_input`` is the usual CIFAR adaptation of the ImageNet ResNets (as in the CIFAR ResNet-18
    of many papers, e.g. Zhang et al. mixup 2018; kuangliu/pytorch-cifar): the 7×7/2 stem convolution
    becomes 3×3/1 and the max-pool is dropped, so a 32×32 image reaches the last stage at 4×4 instead
    of 1×1. ResNet-18 with it has 11,173,962 parameters at 10 classes.
    """

    in_shape: ImageShape = (3, 224, 224)  # (C, H, W): ImageNet crops
    num_classes: PositiveInt = 1000  # K
    small_input: bool = False  # 3×3 stride-1 stem and no max-pool (CIFAR-sized inputs)
    block: Literal["basic", "bottleneck"] = "basic"  # basic: ResNet-18/34; bottleneck: ResNet-50/101/152
    layers: StageDepths = (2, 2, 2, 2)  # blocks per stage (Table 1); stage i has width P = width·2^i
    width: PositiveInt = 64  # P of the stem and the first stage (64 in the paper)
    stride_in_1x1: bool = False  # bottleneck stride on the first 1×1 (paper, v1) instead of the 3×3 (v1.5)
    zero_init_residual: bool = False  # zero γ of each block's last BN: blocks start as identities (Goyal et al. 2017)


class ResNet(nn.Module):
    """Shapes: x (B, C, H, W) → stem (B, P, H/4, W/4) → stage i (B, E·P·2^i, H/2^(i+2), W/2^(i+2)) → (B, K).

    Module names follow torchvision (conv1, bn1, layer1 … layer4, fc), so its state dicts load.
    """

    def __init__(self, config: ResNetConfig):
        super().__init__()
        self.config = config
        self.input_shape = tuple(config.in_shape)
        c, h, w = self.input_shape
        if not config.layers or min(config.layers) < 1 or config.width < 1:
            raise ValueError(f"layers must be non-empty with ≥ 1 block per stage, got {config.layers}")
        stride = (1 if config.small_input else 4) * 2 ** (len(config.layers) - 1)
        if min(h, w) < stride:
            raise ValueError(
                f"input {h}×{w} is too small for this ResNet (total stride {stride}: the last stage would see "
                "less than one position per stride); set model.small_input=true"
            )
        # fully convolutional with global pooling: any H, W that survive the total stride (as torchvision)
        self.input_spec = (c, AtLeast("H", stride), AtLeast("W", stride))
        block = BLOCKS[config.block]
        p = config.width
        if config.small_input:
            self.conv1 = conv3x3(c, p)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(c, p, kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(p)
        self.relu = nn.ReLU(inplace=True)
        c_in = p
        self.num_stages = len(config.layers)
        for i, n_blocks in enumerate(config.layers):
            planes = p * 2**i
            blocks = []
            for j in range(n_blocks):
                s = 2 if (i > 0 and j == 0) else 1
                blocks.append(block(c_in, planes, s, config.stride_in_1x1))
                c_in = planes * block.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.num_features = c_in
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, config.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        init_conv_bn_(self)  # torchvision's init; the classifier keeps nn.Linear's default
        if self.config.zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock | Bottleneck):
                    nn.init.zeros_(m.last_bn.weight)

    def stage(self, i: int) -> nn.Sequential:
        """Stage i = 1 … len(layers) (torchvision's ``layer{i}``)."""
        return getattr(self, f"layer{i}")

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, *self.input_spec))
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, P, H/4, W/4)  (H, W with small_input)
        for i in range(1, self.num_stages + 1):
            x = self.stage(i)(x)  # (B, E·P·2^(i−1), H/2^(i+1), W/2^(i+1))
        return self.avgpool(x).flatten(1)  # (B, E·P·2^(n−1))

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.fc(h)  # (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# the registry-wide smoke test builds each variant on 32×32 images (the deeper ones narrower, to stay fast)
_SMOKE = {"in_shape": (3, 32, 32), "small_input": True, "num_classes": 10}


@register_model(
    family="cnn",
    config=ResNetConfig,
    paper=PAPER,
    defaults={"block": "basic", "layers": (2, 2, 2, 2)},
    test_overrides=_SMOKE,
    meta={"num_params": 11_689_512, "macs": 1.81e9, "source": "torchvision"},
)
def resnet18(**overrides) -> ResNet:
    """ResNet-18: basic blocks [2, 2, 2, 2]."""
    return ResNet(ResNetConfig(**overrides))


@register_model(
    family="cnn",
    config=ResNetConfig,
    paper=PAPER,
    defaults={"block": "basic", "layers": (3, 4, 6, 3)},
    test_overrides={**_SMOKE, "width": 16},
    meta={"num_params": 21_797_672, "macs": 3.66e9, "source": "torchvision"},
)
def resnet34(**overrides) -> ResNet:
    """ResNet-34: basic blocks [3, 4, 6, 3]."""
    return ResNet(ResNetConfig(**overrides))


@register_model(
    family="cnn",
    config=ResNetConfig,
    paper=PAPER,
    defaults={"block": "bottleneck", "layers": (3, 4, 6, 3)},
    test_overrides={**_SMOKE, "width": 16},
    meta={"num_params": 25_557_032, "macs": 4.09e9, "source": "torchvision"},
)
def resnet50(**overrides) -> ResNet:
    """ResNet-50: bottleneck blocks [3, 4, 6, 3]."""
    return ResNet(ResNetConfig(**overrides))


@register_model(
    family="cnn",
    config=ResNetConfig,
    paper=PAPER,
    defaults={"block": "bottleneck", "layers": (3, 4, 23, 3)},
    test_overrides={**_SMOKE, "width": 8},
    meta={"num_params": 44_549_160, "macs": 7.80e9, "source": "torchvision"},
)
def resnet101(**overrides) -> ResNet:
    """ResNet-101: bottleneck blocks [3, 4, 23, 3]."""
    return ResNet(ResNetConfig(**overrides))


@register_model(
    family="cnn",
    config=ResNetConfig,
    paper=PAPER,
    defaults={"block": "bottleneck", "layers": (3, 8, 36, 3)},
    test_overrides={**_SMOKE, "width": 8},
    meta={"num_params": 60_192_808, "macs": 11.51e9, "source": "torchvision"},
)
def resnet152(**overrides) -> ResNet:
    """ResNet-152: bottleneck blocks [3, 8, 36, 3]."""
    return ResNet(ResNetConfig(**overrides))
