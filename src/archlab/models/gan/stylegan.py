"""StyleGAN at 32×32: a mapping network to an intermediate latent space W, styles injected at every
convolution, per-pixel noise, style mixing regularisation and the truncation trick.

Karras, Laine & Aila, *A Style-Based Generator Architecture for Generative Adversarial Networks*,
CVPR 2019, arXiv:1812.04948 — §2 and Fig. 1 (the mapping network f: Z → W, 8 fully connected
layers; a learned constant 4×4 input), §3.1 (style mixing regularisation, 90 % of the training
images), §3.2 (per-pixel noise with learned per-channel scaling), Appendix B (truncation in W),
Appendix C (the mapping network's learning rate λ' = 0.01·λ).

The style operator (``style_block``) is by default the modulated and demodulated convolution of
StyleGAN2 (Karras, Laine, Aittala, Hellsten, Lehtinen & Aila, *Analyzing and Improving the Image Quality
of StyleGAN*, CVPR 2020, arXiv:1912.04958, §2.2 Eq. 1–3), or with ``style_block="adain"`` the 2019
paper's AdaIN (below). AdaIN normalises each feature map by its own mean and deviation, which the
StyleGAN2 paper traces to the "droplet" artefacts (§2); demodulation normalises by the *expected*
statistics instead, so the style still scales every input map while no map's magnitude is erased, and
it costs one convolution per layer (the input scaled by s, the output by 1/σ — algebraically the
per-example weights of Eq. 1–3). Without AdaIN's normalisation progressive growing is not needed
(StyleGAN2 §4.1); the modulated generator is StyleGAN2's
"skip" generator (Fig. 7b: the RGB outputs of every resolution upsampled and summed) trained at 32×32
from the start, with bilinear upsampling (StyleGAN §2.1). The discriminator is the progressive GAN's
(Karras et al. 2018, Table 2, minibatch stddev included) at full resolution: StyleGAN changes the
generator and takes the rest from its ProGAN baseline (2019 §2.1), whose discriminator this is.

The AdaIN variant is the 2019 synthesis network (§2, Fig. 1b) in the order of the released code
(github.com/NVlabs/stylegan, ``training/networks_stylegan.py``, ``G_synthesis`` with ``layer_epilogue``
and ``structure="fixed"``): a learned constant 4×4 input initialised to 1, then per layer [upsample →]
3×3 conv → + noise → + bias → leaky ReLU → AdaIN, the 4×4 constant itself taking the first such
epilogue without a convolution (two styles per resolution, L = 2·log2(R) − 2 as for the modulated
generator), and one plain 1×1 toRGB at the full resolution (no style, no skip outputs). The released
code grows it progressively; here it trains at R from the start like the modulated generator.
Upsampling is the same as the modulated path's: torch's bilinear ×2, or with ``blur`` nearest-neighbour
then the [1, 2, 1] filter (the released code filters after the conv that follows the upsampling; the two
orders differ only at the borders, where the conv's zero padding meets the filter's).

With ``blur`` (either style block) the resampling is the 2019 paper's own "bilinear" (§2.1, after Zhang
2019): G upsamples by nearest-neighbour ×2 followed by the [1, 2, 1] binomial filter (skip outputs too),
and the discriminator filters its features before each 2×2 average pooling.

Letters: B batch, K latent_dim (z), D w_dim, L the number of styles (two per resolution: 2·log2(R) − 2,
8 at R = 32), C image channels, N_in / N_out feature maps, s ∈ R^{N_in} a style, ψ the truncation.

Equations:
    mapping        w = f(z) = FC_8(… FC_1(z / rms(z))),  leaky ReLU, lr ×0.01     (2019 §2, App. C)
    modulation     w'_{ijk} = s_i · w_{ijk},  s = A(w) (affine, bias 1)          (2020 Eq. 1)
    demodulation   w''_{ijk} = w'_{ijk} / √(Σ_{i,k} (w'_{ijk})² + ε),  ε = 1e-8   (2020 Eq. 2–3)
    AdaIN          AdaIN(x_i, y) = y_{s,i} (x_i − μ(x_i)) / σ(x_i) + y_{b,i},  (y_s, y_b) = (1 + A_s(w), A_b(w))
                   μ, σ² the mean and (biased) variance of map i of one example, + ε = 1e-8   (2019 Eq. 1)
    noise          h ← h + b_c · n,  n ~ N(0, 1) one value per pixel, b_c per channel (init 0)  (2019 §3.2)
    style mixing   with probability 0.9: w_l = f(z₁) for l < c, f(z₂) for l ≥ c, c ~ U{1 … L−1}  (2019 §3.1)
    truncation     w' = w̄ + ψ (w − w̄),  w̄ the moving average of f(z) in training  (2019 App. B)
    toRGB          y_r = up(y_{r/2}) + ModConv_1×1(h_r; no demodulation)          (2020 Fig. 7b)
                   AdaIN variant: y = Conv_1×1(h_R) at the full resolution only   (2019, the released code)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.gan.progressive import (
    LRELU_SLOPE,
    EqualizedConv2d,
    EqualizedLinear,
    PaddedImageGAN,
    PixelNorm,
    ProGANConfig,
    ProgressiveDiscriminator,
    blur,
    full_size_images,
)
from archlab.models.gan.progressive import upsample as nearest_upsample
from archlab.registry import register_model
from archlab.registry.config import ImageShape, ModelConfig, NonNegativeInt, PositiveFloat, PositiveInt, Probability
from archlab.utils.seed import randn_on

ACT_GAIN = math.sqrt(2.0)  # leaky ReLU followed by ×√2 keeps unit variance (StyleGAN2's bias_act gain)
StyleBlock = Literal["modulated", "adain"]


def upsample(x: torch.Tensor, filtered: bool = False) -> torch.Tensor:
    """×2 upsampling, "bilinear" (2019 §2.1): torch's bilinear interpolation, or with ``filtered``
    nearest-neighbour then the [1, 2, 1] low-pass filter (:func:`~archlab.models.gan.progressive.blur`),
    the paper's own construction, which equals bilinear away from the borders (zero padding at the
    border instead of torch's edge clamping). (B, N, H, W) → (B, N, 2H, 2W)."""
    if filtered:
        return blur(nearest_upsample(x))
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


def mix_styles(w1: torch.Tensor, w2: torch.Tensor, cutoff: int) -> torch.Tensor:
    """Style mixing (2019 §3.1): styles (B, L, D) taking w₁'s rows before the crossover layer
    ``cutoff`` and w₂'s from it on. ``w1``/``w2``: (B, D) or already broadcast (B, L, D)."""
    out = w1.clone()
    out[:, cutoff:] = w2[:, cutoff:]
    return out


class MappingNetwork(nn.Module):
    """f: Z → W (2019 §2, Fig. 1b): z normalised to unit RMS, then ``layers`` fully connected layers
    with leaky ReLU, each with the equalised learning rate times ``lr_multiplier`` (0.01, App. C).
    Keeps w̄, the moving average of its outputs in training (App. B), as the buffer ``w_avg``.
    Shapes: (B, K) → (B, D)."""

    def __init__(self, latent_dim: int, w_dim: int, layers: int, lr_multiplier: float, w_avg_beta: float):
        super().__init__()
        self.norm = PixelNorm()
        dims = [latent_dim] + [w_dim] * layers
        self.fcs = nn.ModuleList(EqualizedLinear(a, b, lr_multiplier=lr_multiplier) for a, b in zip(dims, dims[1:]))
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.w_avg_beta = w_avg_beta

    def forward(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        w = self.norm(z)
        for fc in self.fcs:
            w = F.leaky_relu(fc(w), LRELU_SLOPE)
        if self.training and torch.is_grad_enabled() and self.w_avg_beta < 1.0:
            # w̄ ← β w̄ + (1 − β) mean_b w  (the released code's w_avg_beta = 0.995)
            self.w_avg.copy_(torch.lerp(w.detach().mean(0), self.w_avg, self.w_avg_beta))
        if psi != 1.0:
            w = torch.lerp(self.w_avg, w, psi)  # w̄ + ψ (w − w̄)
        return w


class ModulatedConv2d(nn.Module):
    """The modulated convolution of StyleGAN2 (2020 §2.2, Eq. 1–3), 'same' padding.

    The style s = A(w) (an equalised affine layer, bias initialised to 1) scales the weight's input
    maps, w'_{ijk} = s_i w_{ijk}; with ``demodulate`` each output map is divided by
    σ_j = √(Σ_{i,k} w'²_{ijk} + ε). Computed without per-example weights: conv(x · s, ŵ) / σ, which
    equals conv(x, w'') because the convolution is linear (the released code's non-fused path).

    Shapes: x (B, N_in, H, W), w (B, D) → (B, N_out, H, W) (H, W doubled first when ``up``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        w_dim: int,
        demodulate: bool = True,
        up: bool = False,
        blur: bool = False,
    ):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)  # equalised lr, gain 1
        self.demodulate, self.up, self.padding = demodulate, up, kernel_size // 2
        self.blur = blur  # upsampling: nearest + [1, 2, 1] filter instead of torch's bilinear

    def styles(self, w: torch.Tensor) -> torch.Tensor:
        """s = A(w): (B, D) → (B, N_in)."""
        return self.affine(w)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = upsample(x, self.blur)
        s = self.styles(w)  # (B, N_in)
        weight = self.weight * self.scale  # (N_out, N_in, k, k)
        y = F.conv2d(x * s[:, :, None, None], weight, padding=self.padding)  # conv(x, w')
        if self.demodulate:
            # σ_j² = Σ_{i,k} (s_i w_ijk)² = Σ_i s_i² Σ_k w_ijk²  (Eq. 2)
            sigma_inv = torch.rsqrt(s.square() @ weight.square().sum(dim=(2, 3)).t() + 1e-8)  # (B, N_out)
            y = y * sigma_inv[:, :, None, None]  # conv(x, w'')  (Eq. 3)
        return y


class NoiseInput(nn.Module):
    """Per-pixel noise with a learned per-channel scale (2019 §3.2, Fig. 1b 'B'): h + b ⊙ n, one N(0, 1)
    value per pixel shared by the channels, b ∈ R^N initialised to 0. Shapes: (B, N, H, W) → same."""

    def __init__(self, channels: int):
        super().__init__()
        self.strength = nn.Parameter(torch.zeros(channels))

    def forward(self, h: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if noise is None:
            return h
        return h + self.strength.view(1, -1, 1, 1) * noise


class StyleLayer(nn.Module):
    """One synthesis layer: modulated 3×3 conv (upsampling first when ``up``) → + noise → + bias →
    leaky ReLU ×√2. Shapes: (B, N_in, H, W), w (B, D) → (B, N_out, H', W')."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, up: bool = False, blur: bool = False):
        super().__init__()
        self.up = up
        self.conv = ModulatedConv2d(in_channels, out_channels, 3, w_dim, demodulate=True, up=up, blur=blur)
        self.noise = NoiseInput(out_channels)
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(self, h: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        h = self.noise(self.conv(h, w), noise)
        return F.leaky_relu(h + self.bias.view(1, -1, 1, 1), LRELU_SLOPE) * ACT_GAIN


class AdaIN(nn.Module):
    """Adaptive instance normalisation (2019 §2, Eq. 1): each feature map of each example normalised to
    zero mean and unit deviation, then scaled and shifted by the style,
    AdaIN(x_i, y) = y_{s,i} (x_i − μ(x_i)) / σ(x_i) + y_{b,i}.

    The styles y = (y_s, y_b) come from the learned affine transform A (an equalised linear layer, gain 1,
    bias 0) of w, with y_s = 1 + A_s(w) as in the released code's ``style_mod`` (a new layer scales by
    about 1). μ and σ² = mean (x − μ)² are taken over the map's pixels in at least float32, σ = √(σ² + ε),
    ε = 1e-8 (the released code's ``instance_norm``).

    Shapes: x (B, N, H, W), w (B, D) → (B, N, H, W).
    """

    def __init__(self, channels: int, w_dim: int, eps: float = 1e-8):
        super().__init__()
        self.affine = EqualizedLinear(w_dim, 2 * channels, gain=1.0)
        self.eps = eps

    def styles(self, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(y_s, y_b) = (1 + A_s(w), A_b(w)): (B, D) → two (B, N)."""
        y_s, y_b = self.affine(w).chunk(2, dim=1)  # (B, N) each: the first N outputs scale, the last N shift
        return 1.0 + y_s, y_b

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        y_s, y_b = self.styles(w)
        h = x.to(torch.promote_types(x.dtype, torch.float32))  # at least float32 (the released code's cast)
        h = h - h.mean(dim=(2, 3), keepdim=True)  # x_i − μ(x_i)
        h = h * torch.rsqrt(h.square().mean(dim=(2, 3), keepdim=True) + self.eps)  # / σ(x_i)
        return y_s[:, :, None, None] * h.to(x.dtype) + y_b[:, :, None, None]


class AdaINStyleLayer(nn.Module):
    """One synthesis layer of the 2019 generator (Fig. 1b; the released code's ``layer_epilogue``):
    [bilinear ×2 upsampling when ``up`` →] 3×3 conv (equalised lr, gain √2; none when ``conv`` is False,
    the first layer, which takes the learned constant) → + noise → + bias → leaky ReLU → AdaIN.
    Shapes: (B, N_in, H, W), w (B, D) → (B, N_out, H', W')."""

    def __init__(
        self, in_channels: int, out_channels: int, w_dim: int, up: bool = False, conv: bool = True, blur: bool = False
    ):
        super().__init__()
        self.up, self.blur = up, blur
        if conv:
            self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
            self.scale = ACT_GAIN / math.sqrt(in_channels * 9)  # equalised lr, He's gain √2
        else:
            self.register_parameter("weight", None)
        self.noise = NoiseInput(out_channels)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.adain = AdaIN(out_channels, w_dim)

    def forward(self, h: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        if self.up:
            h = upsample(h, self.blur)
        if self.weight is not None:
            h = F.conv2d(h, self.weight * self.scale, padding=1)
        h = self.noise(h, noise)
        h = F.leaky_relu(h + self.bias.view(1, -1, 1, 1), LRELU_SLOPE)
        return self.adain(h, w)


class ToRGB(nn.Module):
    """Modulated 1×1 conv without demodulation, plus bias (2020 Fig. 7b). (B, N, H, W), w → (B, C, H, W)."""

    def __init__(self, in_channels: int, channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_channels, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(h, w) + self.bias.view(1, -1, 1, 1)


@dataclass
class StyleGANConfig(ModelConfig):
    """StyleGAN options; the defaults are the papers' (512-wide W, an 8-layer mapping network with
    lr ×0.01, mixing probability 0.9) at 32×32 for 28×28 greyscale data padded to 32×32; recipes use
    narrower widths to train on a CPU."""

    in_shape: ImageShape = (1, 28, 28)  # (C, H, W) of the data; padded to resolution × resolution
    resolution: PositiveInt = 32  # R, a power of 2 ≥ 8 and ≥ H, W
    latent_dim: PositiveInt = 512  # K, z ∈ R^K (2019 §2)
    w_dim: PositiveInt = 512  # D, w ∈ W = R^D (2019 §2)
    mapping_layers: PositiveInt = 8  # fully connected layers of f (2019 §2)
    mapping_lr_multiplier: PositiveFloat = 0.01  # λ'/λ of the mapping network (2019 App. C)
    channel_base: PositiveInt = 16384  # maps at resolution r: min(channel_base / r, channel_max) (StyleGAN2 code)
    channel_max: PositiveInt = 512
    style_mixing_prob: Probability = 0.9  # share of training batches with two latents (2019 §3.1)
    w_avg_beta: Probability = 0.995  # decay of the moving average w̄ (the released code)
    truncation_psi: float = 1.0  # ψ that sample()/generate() use unless given (1: no truncation)
    style_block: StyleBlock = "modulated"  # StyleGAN2's modulated conv (2020 Eq. 1–3) or AdaIN (2019 Eq. 1)
    blur: bool = False  # G: nearest + [1, 2, 1] filter for bilinear; D: the filter before each pooling (2019 §2.1)
    # discriminator: the progressive GAN's at full resolution (its nf(s) = min(fmap_base / 2^s, fmap_max))
    d_fmap_base: PositiveInt = 8192
    d_fmap_max: PositiveInt = 512
    mbstd_group_size: NonNegativeInt = 4  # minibatch stddev group (0: none)


class StyleGenerator(nn.Module):
    """The style-based generator: mapping network f and the synthesis network g — with modulated
    convolutions a learned constant 4×4 input, one style layer at 4×4 and two per later resolution,
    skip toRGB outputs (each reading a style); with AdaIN the 2019 network: the constant takes the first
    layer's noise, bias and AdaIN, then a conv layer at 4×4 and two per later resolution, one toRGB at R.

    ``forward(z)``: (B, K) → (B, C, R, R) in network units; in training mode it mixes styles (2019
    §3.1) and updates w̄. ``synthesis(ws)`` takes the per-layer styles (B, L, D) directly.
    """

    def __init__(self, config: StyleGANConfig):
        super().__init__()
        c = config
        self.num_stages = int(math.log2(c.resolution)) - 1
        self.num_ws = 2 * self.num_stages  # layer l reads w_l; toRGB at stage s reads w_{2s+1}
        self.style_mixing_prob, self.truncation_psi = c.style_mixing_prob, c.truncation_psi
        channels = [min(c.channel_base // (4 * 2**s), c.channel_max) for s in range(self.num_stages)]
        self.mapping = MappingNetwork(c.latent_dim, c.w_dim, c.mapping_layers, c.mapping_lr_multiplier, c.w_avg_beta)
        self.style_block, self.blur = c.style_block, c.blur
        if c.style_block == "adain":
            self._build_adain(c, channels)
            return
        self.const = nn.Parameter(torch.randn(channels[0], 4, 4))  # learned constant input (2019 §2)
        self.layers = nn.ModuleList([StyleLayer(channels[0], channels[0], c.w_dim)])
        self.to_rgb = nn.ModuleList([ToRGB(channels[0], c.in_shape[0], c.w_dim)])
        for s in range(1, self.num_stages):
            self.layers.append(StyleLayer(channels[s - 1], channels[s], c.w_dim, up=True, blur=c.blur))
            self.layers.append(StyleLayer(channels[s], channels[s], c.w_dim))
            self.to_rgb.append(ToRGB(channels[s], c.in_shape[0], c.w_dim))

    def _build_adain(self, c: StyleGANConfig, channels: list[int]) -> None:
        """The 2019 synthesis network (module docstring): L = 2S AdaIN layers, one toRGB at R."""
        self.const = nn.Parameter(torch.ones(channels[0], 4, 4))  # learned constant, initialised to 1 (released code)
        self.layers = nn.ModuleList(
            [
                AdaINStyleLayer(channels[0], channels[0], c.w_dim, conv=False),  # the constant's own epilogue
                AdaINStyleLayer(channels[0], channels[0], c.w_dim),
            ]
        )
        for s in range(1, self.num_stages):
            self.layers.append(AdaINStyleLayer(channels[s - 1], channels[s], c.w_dim, up=True, blur=c.blur))
            self.layers.append(AdaINStyleLayer(channels[s], channels[s], c.w_dim))
        self.to_rgb = nn.ModuleList([EqualizedConv2d(channels[-1], c.in_shape[0], 1, gain=1.0)])

    def synthesis(
        self, ws: torch.Tensor, noise: str = "random", generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """g: styles (B, L, D) → image (B, C, R, R). ``noise``: "random" (fresh N(0, 1) per pixel, drawn
        with ``generator`` on its own device when given, ``utils.seed.randn_on``) or "none" (no noise;
        the 'no noise' panel of Fig. 5)."""
        b = ws.shape[0]
        h = self.const.unsqueeze(0).repeat(b, 1, 1, 1)  # (B, N_0, 4, 4); a copy, not a view of the leaf
        img = None
        adain = self.style_block == "adain"
        for i, layer in enumerate(self.layers):
            size = h.shape[-1] * (2 if layer.up else 1)
            n = randn_on((b, 1, size, size), generator, ws.device) if noise == "random" else None
            h = layer(h, ws[:, i], n)
            if not adain and i % 2 == 0:  # the last layer of a stage: its toRGB reads the next style
                s = i // 2
                y = self.to_rgb[s](h, ws[:, i + 1])
                img = y if img is None else upsample(img, self.blur) + y
        if adain:
            img = self.to_rgb[0](h)  # (B, C, R, R)
        return img

    def styles(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        """The per-layer styles (B, L, D) of latents (B, K): w = f(z) broadcast to every layer, with
        ψ-truncation (App. B), and in training mode style mixing with probability ``style_mixing_prob``
        (a second latent from the global RNG; crossover c ~ U{1 … L − 1}, §3.1)."""
        w = self.mapping(z, psi)
        ws = w.unsqueeze(1).expand(-1, self.num_ws, -1)  # (B, L, D)
        if self.training and self.style_mixing_prob > 0:
            mix = torch.rand(()) < self.style_mixing_prob
            cutoff = int(torch.randint(1, self.num_ws, ()))
            if mix:
                w2 = self.mapping(torch.randn_like(z), psi).unsqueeze(1).expand(-1, self.num_ws, -1)
                ws = mix_styles(ws, w2, cutoff)
        return ws

    def forward(
        self, z: torch.Tensor, psi: float = 1.0, noise: str = "random", noise_generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """(B, K) → (B, C, R, R): ``synthesis(styles(z, psi), noise, noise_generator)``."""
        return self.synthesis(self.styles(z, psi), noise, noise_generator)


class StyleGAN(PaddedImageGAN):
    """StyleGAN at 32×32: :class:`StyleGenerator` and the progressive GAN's discriminator at full
    resolution (see the module docstring).

    ``generate(z, psi=None)`` (B, K) → (B, C, H, W) and ``sample(n, generator=None, psi=None)`` are in
    the data's units ([0, 1]), ψ defaulting to ``truncation_psi``; ``prepare_real(x)`` pads a real
    batch (B, C, H, W) to (B, C, R, R); ``forward(z)`` → (G(z) in data units, D's score on it).
    """

    def __init__(self, config: StyleGANConfig):
        super().__init__()
        d_config = ProGANConfig(
            in_shape=config.in_shape,
            resolution=config.resolution,
            latent_dim=config.latent_dim,
            fmap_base=config.d_fmap_base,
            fmap_max=config.d_fmap_max,
            mbstd_group_size=config.mbstd_group_size,
            progressive=False,
            blur=config.blur,
        )
        self.discriminator = ProgressiveDiscriminator(d_config)  # checks resolution and in_shape first
        self.pad = (config.resolution - config.in_shape[1]) // 2
        self._init_interface(config)
        self.generator = StyleGenerator(config)

    def generate(
        self,
        z: torch.Tensor,
        psi: float | None = None,
        noise: str = "random",
        noise_generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Latents (B, K) → images (B, C, H, W) in [0, 1], with truncation ψ (default
        ``truncation_psi``) and per-pixel noise (``noise="none"``: without) drawn with ``noise_generator``."""
        psi = self.config.truncation_psi if psi is None else psi
        return super().generate(z, psi=psi, noise=noise, noise_generator=noise_generator)

    @torch.no_grad()
    def generate_mixed(
        self,
        z1: torch.Tensor,
        z2: torch.Tensor,
        cutoff: int,
        psi: float | None = None,
        noise_generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Style mixing at inference (2019 §3.1, Fig. 3): images (B, C, H, W) in [0, 1] from f(z₁)'s styles
        before layer ``cutoff`` and f(z₂)'s from it on (cutoff 0: all z₂, L: all z₁; styles 0–2 act at
        4×4–8×8, the 'coarse' ones at this size), ψ as in :meth:`generate`, in the model's current mode
        (call ``eval()`` first: training mode would also mix at random). Raises ValueError for a cutoff
        outside [0, L]."""
        g = self.generator
        if not 0 <= cutoff <= g.num_ws:
            raise ValueError(f"cutoff {cutoff} must be in [0, {g.num_ws}] (the generator's {g.num_ws} styles)")
        psi = self.config.truncation_psi if psi is None else psi
        expand = lambda z: g.mapping(z, psi).unsqueeze(1).expand(-1, g.num_ws, -1)  # noqa: E731  (B, L, D)
        ws = mix_styles(expand(z1), expand(z2), cutoff)
        u = g.synthesis(ws, "random", noise_generator)
        return self.to_data(full_size_images(u, self.pad, self.config.resolution)).clamp(0.0, 1.0)

    @torch.no_grad()
    def generator_output(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """G(z) in [−1, 1], (B, C, R, R), ψ = 1, the per-pixel noise drawn with ``generator`` (the
        global RNG when None)."""
        return self._sampler(z.device)(z, noise_generator=generator)

    def sample(self, n: int, generator: torch.Generator | None = None, psi: float | None = None) -> torch.Tensor:
        """``n`` images (n, C, H, W) in [0, 1]: z ~ N(0, I) and the per-pixel noise both drawn on the CPU
        with ``generator``; eval mode (no style mixing), on the model's device; ψ as in :meth:`generate`."""
        return super().sample(n, generator, psi=psi, noise_generator=generator)


_PAPER = (
    "Karras, Laine & Aila, A Style-Based Generator Architecture for Generative Adversarial Networks (CVPR 2019, "
    "arXiv:1812.04948); modulated convolutions (the default; style_block=adain: the 2019 AdaIN): Karras et al., "
    "Analyzing and Improving the Image Quality of StyleGAN (CVPR 2020, arXiv:1912.04958)"
)


@register_model(
    family="gan",
    config=StyleGANConfig,
    paper=_PAPER,
    tasks=("gan",),
    test_overrides={
        "latent_dim": 16,
        "w_dim": 16,
        "mapping_layers": 2,
        "channel_base": 64,
        "channel_max": 16,
        "d_fmap_base": 32,
        "d_fmap_max": 16,
    },
    meta={"num_params": 42_242_565, "macs": 12_771_377_664},
)
def stylegan(**overrides) -> StyleGAN:
    """StyleGAN at 32×32 (Karras et al. 2019): mapping network, modulated convs or AdaIN, noise, mixing, truncation."""
    return StyleGAN(StyleGANConfig(**overrides))
