"""DCGAN (``dcgan``): the deep convolutional GAN of Radford, Metz & Chintala, with the critic
variant (no batch norm) that WGAN-GP needs.

Radford, Metz & Chintala, *Unsupervised Representation Learning with Deep Convolutional Generative
Adversarial Networks*, ICLR 2016, arXiv:1511.06434, §3 "Architecture guidelines for stable Deep
Convolutional GANs":
  * strided convolutions (D) and fractional-strided convolutions (G) in place of pooling;
  * batch norm in both networks, except G's output layer and D's input layer;
  * no fully connected hidden layers (z is projected and reshaped by the first transposed
    convolution, D's last convolution reads the whole last map);
  * ReLU in G, tanh at its output; LeakyReLU (slope 0.2) in D.
Initialisation N(0, 0.02) (§4). The layer sizes follow pytorch/examples' dcgan/main.py (kernels 4,
no biases): at 64×64 with K = 100 and width 64 its G has 3,576,704 parameters and its D 2,765,568,
which the tests check. Critic variant (``d_norm``): Gulrajani et al. 2017, *Improved Training of
Wasserstein GANs*, arXiv:1704.00028, §4 — the gradient penalty is per example, so the critic must
not use batch norm; they use layer normalisation instead ("layer" here: GroupNorm with one group,
normalising each example over (C, H, W) with a per-channel scale and shift) or none.

Sizes: G doubles the map n times from a base side s₀ ∈ {4, 7}: 28 = 7·2², 32 = 4·2³, 64 = 4·2⁴
(the side is halved while it stays even and at least 8); D mirrors it and reads the s₀×s₀ map with
an s₀×s₀ convolution.

Letters: B batch, K latent_dim, C image channels, w width, n the number of stride-2 stages.

Equations:
    G: z (B, K, 1, 1) → ConvT(K, w·2ⁿ⁻¹, s₀, 1, 0) → BN → ReLU          (B, w·2ⁿ⁻¹, s₀, s₀)
       → [ConvT(4, 2, 1) → BN → ReLU] × (n − 1), channels halving        (B, w, s₀·2ⁿ⁻¹, …)
       → ConvT(w, C, 4, 2, 1) → tanh                                     (B, C, H, W)
    D: x → Conv(C, w, 4, 2, 1) → LReLU(0.2)                              (B, w, H/2, W/2)
       → [Conv(4, 2, 1) → norm → LReLU(0.2)] × (n − 1), channels doubling
       → Conv(w·2ⁿ⁻¹, 1, s₀, 1, 0)                                      (B, 1)

Parameter arithmetic (the default, 3×64×64, K = 100, w = 64): G 100·512·16 + 2·512 + 512·256·16 +
2·256 + 256·128·16 + 2·128 + 128·64·16 + 2·64 + 64·3·16 = 3,576,704; D 3·64·16 + 64·128·16 + 2·128 +
128·256·16 + 2·256 + 256·512·16 + 2·512 + 512·16 = 2,765,568; total 6,342,272.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from archlab.models.gan.base import GANBase, GANConfig, dcgan_init, square_stages
from archlab.registry import register_model
from archlab.registry.config import ImageShape, PositiveInt

Norm = Literal["batch", "layer", "none"]


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":
        return nn.GroupNorm(1, channels)  # layer norm over (C, H, W), per-channel affine
    return nn.Identity()


@dataclass
class DCGANConfig(GANConfig):
    """DCGAN at 64×64 (pytorch/examples' sizes) by default; any square side s₀·2ⁿ with s₀ ≥ 4."""

    in_shape: ImageShape = (3, 64, 64)  # (C, H, W), H = W
    width: PositiveInt = 64  # w: G's last hidden channels and D's first (ngf = ndf in pytorch/examples)
    d_norm: Norm = "batch"  # D's normalisation: "batch" (DCGAN), "layer" or "none" (a WGAN-GP critic)


class DCGAN(GANBase):
    """Shapes: z (B, K) → G → (B, C, H, W) in [−1, 1]; (B, C, H, W) → D → (B, 1)."""

    def __init__(self, config: DCGANConfig):
        super().__init__()
        self._init_common(config)
        c = config.in_shape[0]
        n, s0 = square_stages(config.in_shape, "DCGAN", "28, 32, 64")
        k, w = config.latent_dim, config.width
        chans = [w * 2**i for i in range(n)]  # D's channels per stage: w, 2w, … ; G's in reverse
        g: list[nn.Module] = [
            nn.Unflatten(1, (k, 1, 1)),
            nn.ConvTranspose2d(k, chans[-1], s0, 1, 0, bias=False),  # project and reshape: (B, w·2ⁿ⁻¹, s₀, s₀)
            nn.BatchNorm2d(chans[-1]),
            nn.ReLU(),
        ]
        for c_in, c_out in zip(reversed(chans[1:]), reversed(chans[:-1]), strict=True):
            g += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
        g += [nn.ConvTranspose2d(chans[0], c, 4, 2, 1, bias=False), nn.Tanh()]
        self.generator = nn.Sequential(*g)

        d: list[nn.Module] = [nn.Conv2d(c, chans[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2)]  # no norm on the input
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            bias = config.d_norm == "none"
            d += [nn.Conv2d(c_in, c_out, 4, 2, 1, bias=bias), _norm(config.d_norm, c_out), nn.LeakyReLU(0.2)]
        d += [nn.Conv2d(chans[-1], 1, s0, 1, 0, bias=False), nn.Flatten()]  # (B, 1)
        self.discriminator = nn.Sequential(*d)
        self.apply(dcgan_init)


_TEST = {"in_shape": (1, 8, 8), "width": 4, "latent_dim": 3}


@register_model(
    family="gan",
    config=DCGANConfig,
    paper="Radford, Metz & Chintala, Unsupervised Representation Learning with Deep Convolutional GANs (ICLR 2016)",
    tasks=("gan",),
    test_overrides=_TEST,
    meta={"num_params": 6_342_272, "macs": 208_445_440, "source": "pytorch/examples dcgan/main.py (64×64)"},
)
def dcgan(**overrides) -> DCGAN:
    """DCGAN: strided (transposed) convolutions, batch norm, ReLU/tanh in G and LeakyReLU in D."""
    return DCGAN(DCGANConfig(**overrides))
