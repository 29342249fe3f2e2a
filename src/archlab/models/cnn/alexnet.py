"""AlexNet, as torchvision builds it (single tower).

Krizhevsky, Sutskever & Hinton, *ImageNet Classification with Deep Convolutional Neural
Networks* (NeurIPS 2012); the single-tower channel widths 64-192-384-256-256 are those of
Krizhevsky, *One weird trick for parallelizing convolutional neural networks*, arXiv:1404.5997
(2014), which torchvision follows. The 2012 network is split over two GPUs (48+48, 128+128,
192+192, 192+192, 128+128 kernels, some layers reading only their own GPU's maps) and uses local
response normalisation (LRN) after conv1 and conv2; ``lrn=True`` adds the LRN layers (they have
no parameters, so the count stays 61,100,840).

Variants: alexnet (61,100,840 parameters and 0.71 GMACs at 1000 classes, 3×224×224).

Letters: B batch, C input channels, H×W input size, K classes, W_l ⋆ a convolution with
kernel k, stride s, padding p, P a 3×3 stride-2 max-pool, N the optional LRN.

Equations:
    h_1 = P(N(ReLU(W_1 ⋆_{11, s4, p2} x)))           64 maps, 55×55 → 27×27
    h_2 = P(N(ReLU(W_2 ⋆_{5, p2} h_1)))              192 maps, 27×27 → 13×13
    h_5 = P(ReLU(W_5 ⋆ ReLU(W_4 ⋆ ReLU(W_3 ⋆ h_2))))   3×3 convs, 384-256-256 maps → 6×6
    z   = flatten(AdaptiveAvgPool_{6×6}(h_5))        (B, 9216)
    y   = W_8 ReLU(W_7 drop(ReLU(W_6 drop(z))))      4096-4096-K
    N(a)_c = a_c / (k + α Σ_{c' ∈ c±n/2} a_{c'}²)^β   n=5, k=2, α=1e−4, β=0.75 (§3.3)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from archlab.registry import register_model
from archlab.registry.config import ImageShape, ModelConfig, PositiveInt, Probability
from archlab.utils.shapes import AtLeast, check_shape, min_side


def _out(n: int, k: int, s: int = 1, p: int = 0) -> int:
    """Output side of a conv/pool (floor mode); < 1 if the input is too small."""
    return (n + 2 * p - k) // s + 1 if n + 2 * p >= k else 0


@dataclass
class AlexNetConfig(ModelConfig):
    """AlexNet options; the defaults are torchvision's ``alexnet``.

    ``small_input`` (CIFAR-sized 28×28 or 32×32 inputs): conv1 becomes a 3×3 stride-1 conv with
    padding 1 and the first max-pool is dropped, so only two 3×3/2 max-pools remain:
    32 → 15 → 7 and 28 → 13 → 6 before the 6×6 adaptive pool (the classifier is unchanged;
    set ``head_width`` smaller, e.g. 512, for a CIFAR-sized head).
    """

    in_shape: ImageShape = (3, 224, 224)  # (C, H, W): ImageNet crops
    num_classes: PositiveInt = 1000  # K
    small_input: bool = False  # 3×3 stride-1 conv1 and no first max-pool, for 28×28/32×32 inputs
    head_width: PositiveInt = 4096  # width of the two hidden fully connected layers (paper: 4096)
    dropout: Probability = 0.5  # before each of the two hidden FC layers (paper: 0.5, §4.2)
    lrn: bool = False  # local response normalisation after conv1 and conv2 (paper §3.3; torchvision drops it)


class AlexNet(nn.Module):
    """Shapes: x (B, C, 224, 224) → (B, 64, 27, 27) → (B, 192, 13, 13) → (B, 256, 6, 6)
    → features (B, 9216) → (B, K)."""

    def __init__(self, config: AlexNetConfig):
        super().__init__()
        if not 0.0 <= config.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {config.dropout}")
        self.config = config
        self.input_shape = tuple(config.in_shape)
        c, h, w = config.in_shape
        small = config.small_input

        def last_side(n: int) -> int:  # the side pool5 leaves
            n = _out(n, 3, 1, 1) if small else _out(_out(n, 11, 4, 2), 3, 2)  # conv1 (+ pool1)
            return _out(_out(_out(n, 5, 1, 2), 3, 2), 3, 2)  # conv2, pool2, conv3–5 keep size, pool5

        if min(last_side(h), last_side(w)) < 1:
            fix = "; set model.small_input=true" if not small else ""
            raise ValueError(f"input {h}×{w} is too small for AlexNet (stride-4 conv1 and three max-pools){fix}")
        # the 6×6 adaptive pool takes any map: any H, W that leave pool5 at least 1×1 (torchvision: 63×63)
        side_min = min_side(lambda n: last_side(n) >= 1)
        self.input_spec = (c, AtLeast("H", side_min), AtLeast("W", side_min))

        def lrn() -> list[nn.Module]:
            # torch's LRN divides α by n; the paper's Eq. does not, so α_torch = n · 1e−4
            return [nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)] if config.lrn else []

        conv1 = nn.Conv2d(c, 64, 3, padding=1) if small else nn.Conv2d(c, 64, 11, stride=4, padding=2)
        pool1 = [] if small else [nn.MaxPool2d(3, 2)]
        self.features = nn.Sequential(
            conv1,
            nn.ReLU(inplace=True),
            *lrn(),
            *pool1,
            nn.Conv2d(64, 192, 5, padding=2),
            nn.ReLU(inplace=True),
            *lrn(),
            nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        hw = config.head_width
        self.classifier = nn.Sequential(
            nn.Dropout(config.dropout),
            nn.Linear(256 * 6 * 6, hw),
            nn.ReLU(inplace=True),
            nn.Dropout(config.dropout),
            nn.Linear(hw, hw),
            nn.ReLU(inplace=True),
            nn.Linear(hw, config.num_classes),
        )
        # init: torch's defaults, as torchvision (the paper's N(0, 0.01) weights and unit biases
        # in conv2, conv4, conv5 and the FC layers, §5, are not used)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, *self.input_spec))
        x = self.features(x)  # (B, 256, 6, 6) at 224×224
        x = self.avgpool(x)  # (B, 256, 6, 6)
        return x.flatten(1)  # (B, 9216)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.classifier(h)  # (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


@register_model(
    family="cnn",
    config=AlexNetConfig,
    paper="Krizhevsky, Sutskever & Hinton, ImageNet Classification with Deep Convolutional Neural Networks "
    "(NeurIPS 2012); single-tower widths of Krizhevsky, One weird trick…, arXiv:1404.5997",
    test_overrides={"in_shape": (3, 32, 32), "small_input": True, "num_classes": 10, "head_width": 64},
    meta={"num_params": 61_100_840, "macs": 0.714e9, "source": "torchvision"},
)
def alexnet(**overrides) -> AlexNet:
    """AlexNet (torchvision's single tower)."""
    return AlexNet(AlexNetConfig(**overrides))
