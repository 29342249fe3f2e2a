"""SNGAN (``sngan``): the "standard CNN" generator and discriminator of Miyato et al., with every
layer of the discriminator spectrally normalised.

Miyato, Kataoka, Koyama & Yoshida, *Spectral Normalization for Generative Adversarial Networks*,
ICLR 2018, arXiv:1802.05957: Table 3 (the standard CNN models for CIFAR-10 and STL-10, M = 32 and
48, M_g = 4 and 6), Eq. 8 (W̄_SN = W / σ(W)) with σ(W) estimated by one step of power iteration per
forward pass (Algorithm 1), here ``torch.nn.utils.parametrizations.spectral_norm`` (the weight of a
convolution reshaped to (C_out, C_in·k·k), as in the paper); the hinge loss (Eq. 16–17) lives in
the GAN task.

Letters: B batch, K latent_dim (128 in Table 3), C channels, w G's width (512), v D's width (64),
s₀ G's base side (M_g = 4 at 32×32), n the number of ×2 stages.

Equations (Table 3, w = 512, v = 64, 3×32×32):
    G: z → dense → (B, w, s₀, s₀) → BN → ReLU
       → [deconv 4×4 stride 2 → BN → ReLU] × n, channels halving: 256, 128, 64
       → conv 3×3 stride 1 → C → tanh
    D: x → conv 3×3/1 v → lReLU → conv 4×4/2 v → lReLU → conv 3×3/1 2v → lReLU → conv 4×4/2 2v → lReLU
       → conv 3×3/1 4v → lReLU → conv 4×4/2 4v → lReLU → conv 3×3/1 8v → lReLU → dense → 1
       (lReLU slope 0.1; every conv and the dense layer W / σ(W))
The side stages follow :func:`archlab.models.gan.dcgan.stages`: 32 = 4·2³ as in Table 3, 28 = 7·2²
(Fashion-MNIST: two ×2 stages, channels w → w/2 → w/4); D always has its three stride-2 convolutions
(28 → 14 → 7 → 3).

Parameter arithmetic (the default, 3×32×32, K = 128): G dense 128·8192+8192, BN 2·512, deconvs
512·256·16+256 + 2·256, 256·128·16+128 + 2·128, 128·64·16+64 + 2·64, conv 64·3·9+3: 3,813,379;
D 3·64·9+64 + 64·64·16+64 + 64·128·9+128 + 128·128·16+128 + 128·256·9+256 + 256·256·16+256 +
256·512·9+512 + 512·4·4+1 = 2,935,873; total 6,749,252. (Miyato et al. publish no parameter count.)
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from archlab.models.gan.base import GANBase, GANConfig, square_stages
from archlab.registry import register_model
from archlab.registry.config import ImageShape, PositiveInt


@dataclass
class SNGANConfig(GANConfig):
    """Table 3's standard CNN at 32×32 (CIFAR-10) by default."""

    in_shape: ImageShape = (3, 32, 32)  # (C, H, W), H = W
    latent_dim: PositiveInt = 128  # z ∈ R¹²⁸ ~ N(0, I)
    width: PositiveInt = 512  # w: channels of G's first map (halving at each stage)
    d_width: PositiveInt = 64  # v: D's first channels (64, 128, 256, 512 in Table 3)


class SNGAN(GANBase):
    """Shapes: z (B, K) → G → (B, C, H, W) in [−1, 1]; (B, C, H, W) → D → (B, 1)."""

    def __init__(self, config: SNGANConfig):
        super().__init__()
        self._init_common(config)
        c, h, _ = config.in_shape
        n, s0 = square_stages(config.in_shape, "SNGAN", "28, 32, 48")
        w = config.width
        if w >> n < 1:
            raise ValueError(f"width: {w} halves {n} times in G; use a width of at least {1 << n}")
        g: list[nn.Module] = [
            nn.Linear(config.latent_dim, w * s0 * s0),
            nn.Unflatten(1, (w, s0, s0)),  # (B, w, s₀, s₀)
            nn.BatchNorm2d(w),
            nn.ReLU(),
        ]
        for i in range(n):
            c_in, c_out = w >> i, w >> (i + 1)
            g += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.BatchNorm2d(c_out), nn.ReLU()]
        g += [nn.Conv2d(w >> n, c, 3, 1, 1), nn.Tanh()]
        self.generator = nn.Sequential(*g)

        v = config.d_width
        d: list[nn.Module] = []
        c_in, side = c, h
        for c_out in (v, 2 * v, 4 * v):
            d += [spectral_norm(nn.Conv2d(c_in, c_out, 3, 1, 1)), nn.LeakyReLU(0.1)]
            d += [spectral_norm(nn.Conv2d(c_out, c_out, 4, 2, 1)), nn.LeakyReLU(0.1)]
            c_in, side = c_out, side // 2  # (side + 2 − 4) // 2 + 1 = ⌊side/2⌋ (≥ 1: square_stages gives h ≥ 8)
        d += [spectral_norm(nn.Conv2d(c_in, 8 * v, 3, 1, 1)), nn.LeakyReLU(0.1), nn.Flatten()]
        d.append(spectral_norm(nn.Linear(8 * v * side * side, 1)))
        self.discriminator = nn.Sequential(*d)


_TEST = {"in_shape": (1, 8, 8), "width": 8, "d_width": 2, "latent_dim": 3}


@register_model(
    family="gan",
    config=SNGANConfig,
    paper="Miyato et al., Spectral Normalization for Generative Adversarial Networks (ICLR 2018)",
    tasks=("gan",),
    test_overrides=_TEST,
    meta={"num_params": 6_749_252, "macs": 212_213_760, "source": "Miyato et al. 2018 Table 3 (arithmetic)"},
)
def sngan(**overrides) -> SNGAN:
    """SNGAN: Table 3's standard CNN, spectral normalisation on every layer of D (hinge loss in the task)."""
    return SNGAN(SNGANConfig(**overrides))
