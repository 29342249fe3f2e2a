"""Progressive growing of GANs (ProGAN): 4×4 → 8×8 → … → the data's size, each new resolution faded in.

Karras, Aila, Laine & Lehtinen, *Progressive Growing of GANs for Improved Quality, Stability, and
Variation*, ICLR 2018, arXiv:1710.10196 — §2 and Fig. 2 (growing and fade-in), §3 (minibatch
standard deviation), §4.1 (equalised learning rate), §4.2 (pixelwise feature normalisation),
Appendix A.1 and Table 2 (the networks, WGAN-GP with the drift term, Adam(0.001, β = (0, 0.99))).
Layer widths, the gain of each layer and the minibatch-stddev group follow the authors' released
code (github.com/tkarras/progressive_growing_of_gans, ``networks.py``): ``nf(s) = min(fmap_base /
2^s, fmap_max)``, gain √2 everywhere except toRGB and D's output (1) and G's first dense layer (√2/4).

Letters: B batch, C image channels, R the network's full resolution (a power of 2 ≥ the data's
H, W; 32 for 28×28 Fashion-MNIST), S = log2(R) − 1 stages, stage s ∈ {0 … S−1} works at
r_s = 4·2^s pixels, K latent_dim, α ∈ [0, 1] the fade-in weight of the newest stage, up/down
nearest-neighbour ×2 upsampling / 2×2 average pooling, N_s nf(s + 1) feature maps at stage s.

Equations:
    equalised lr   ŵ = c · w,  w ~ N(0, 1),  c = g / √fan_in (g = √2: He et al. 2015)   (§4.1)
    pixel norm     b_{x,y} = a_{x,y} / √(1/N Σ_j (a^j_{x,y})² + ε),  ε = 1e-8            (§4.2, Eq. 1)
    mbstd          σ = mean_{c,x,y} √(Var_group(a_{c,x,y}) + 1e-8), appended as one feature map (§3)
    G at stage s   y = (1 − α) · up(toRGB_{s−1}(h_{s−1})) + α · toRGB_s(block_s(h_{s−1}))  (Fig. 2b)
    D at stage s   h = (1 − α) · fromRGB_{s−1}(down(x)) + α · block_s(fromRGB_s(x))       (Fig. 2b)
    real at stage s  x_s = (1 − α) · up(down(x_s)) + α · x_s,  x_s = x pooled to r_s      (Fig. 2 caption)
    blur (option)  x ← k ∗ x per channel, k = [1, 2, 1]ᵀ[1, 2, 1] / 16, zero padding: after G's upsampling of
                   features, before D's downsampling ("bilinear" resampling: StyleGAN 2019 §2.1, Zhang 2019)
    schedule       2S − 1 equal phases: stabilise 4×4, then (fade in, stabilise) per stage;
                   α rises linearly 0 → 1 over each fade-in phase                         (§2, App. A.1)
    loss (task)    L_D = D(x̃) − D(x) + λ (‖∇_x̂ D(x̂)‖₂ − 1)² + ε_drift D(x)²,  ε_drift = 0.001  (App. A.1)

Images: the data's [0, 1] pixels are mapped to [−1, 1] (the paper's range, App. A.1) and a smaller
image is padded to R×R with the background value (28 → 32 for Fashion-MNIST: 2 pixels each side,
no resampling, so every real pixel is kept); the generator's R×R output is cropped back, so
:meth:`ProGAN.sample` returns images of the data's own shape and units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from archlab.models.gan.base import GANBase, GANOutput
from archlab.registry import register_model
from archlab.registry.config import ImageShape, ModelConfig, NonNegativeInt, PositiveInt
from archlab.utils.errors import ConfigError
from archlab.utils.shapes import check_shape

LRELU_SLOPE = 0.2  # leaky ReLU everywhere (App. A.1)


# -- building blocks (shared with StyleGAN) ------------------------------------------------------
class EqualizedLinear(nn.Module):
    """A fully connected layer with the equalised learning rate (§4.1): the weight is stored as
    w ~ N(0, 1/λ²) and used as ŵ = c·λ·w with c = gain/√fan_in, the bias as λ·b (b = bias_init/λ).

    λ = ``lr_multiplier`` scales the effective learning rate of an Adam-type optimiser by λ (Adam's
    update of w is about lr whatever the gradient's scale, so ŵ moves by c·λ·lr): StyleGAN's mapping
    network uses λ = 0.01 (Karras et al. 2019, Appendix C).

    Shapes: (B, in_features) → (B, out_features).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        gain: float = math.sqrt(2.0),
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
    ):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / lr_multiplier))
        self.scale = gain / math.sqrt(in_features) * lr_multiplier  # c·λ
        self.lr_multiplier = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_multiplier)

    def extra_repr(self) -> str:
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, scale={self.scale:.4g}"


class EqualizedConv2d(nn.Module):
    """A stride-1 'same' convolution with the equalised learning rate (§4.1): w ~ N(0, 1),
    ŵ = c·w, c = gain/√(C_in·k²); bias initialised to 0.

    Shapes: (B, C_in, H, W) → (B, C_out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, gain: float = math.sqrt(2.0)):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)  # c
        self.padding = kernel_size // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)

    def extra_repr(self) -> str:
        c_out, c_in, k, _ = self.weight.shape
        return f"{c_in}, {c_out}, kernel_size={k}, scale={self.scale:.4g}"


class PixelNorm(nn.Module):
    """Pixelwise feature vector normalisation (§4.2, Eq. 1): each pixel's feature vector scaled to
    unit root mean square, b = a / √(mean_j a_j² + ε). Shapes: (B, N, ...) → same (dim 1 normalised)."""

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)


class MinibatchStdDev(nn.Module):
    """Minibatch standard deviation (§3): the standard deviation of each feature at each pixel over a
    group of G examples (the population formula, √(Var + 1e-8)), averaged over features and pixels
    into one value per group, appended to every example of the group as an extra constant feature map.
    G = min(group_size, B) as in the released code (the paper's own description is the whole minibatch,
    G = B); where the released code requires G to divide B, a batch it does not divide (the last one of
    an evaluation) uses the largest group size below G that does.

    Shapes: (B, N, H, W) → (B, N + 1, H, W).
    """

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, h, w = x.shape
        g = min(self.group_size, b)
        while b % g:
            g -= 1
        y = x.reshape(g, b // g, n, h, w)  # (G, M, N, H, W): example i is in group i mod M
        y = (y - y.mean(dim=0)).square().mean(dim=0)  # (M, N, H, W) variance over the group
        y = torch.sqrt(y + 1e-8).mean(dim=(1, 2, 3))  # (M,) mean stddev
        y = y.view(1, b // g, 1, 1, 1).expand(g, -1, 1, h, w).reshape(b, 1, h, w)  # (B, 1, H, W)
        return torch.cat([x, y], dim=1)


def upsample(x: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour ×2 (the paper's upsampling, Table 2). (B, C, H, W) → (B, C, 2H, 2W)."""
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def downsample(x: torch.Tensor) -> torch.Tensor:
    """2×2 average pooling (Table 2). (B, C, H, W) → (B, C, H/2, W/2)."""
    return F.avg_pool2d(x, 2)


def blur(x: torch.Tensor) -> torch.Tensor:
    """The separable 2nd-order binomial low-pass filter [1, 2, 1] ⊗ [1, 2, 1] / 16 (sums to 1), applied to
    each channel on its own with zero padding ('same' size, as the released StyleGAN code's ``blur2d``):
    StyleGAN's "bilinear" resampling is this filter after each upsampling and before each downsampling
    (Karras et al. 2019 §2.1, after Zhang 2019, *Making Convolutional Networks Shift-Invariant Again*).
    After nearest-neighbour ×2 upsampling it gives bilinear interpolation's weights (3/4, 1/4) away from the
    borders. Shapes: (B, C, H, W) → (B, C, H, W)."""
    c = x.shape[1]
    k = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype, device=x.device)
    kernel = (torch.outer(k, k) / 16).expand(c, 1, 3, 3)  # (C, 1, 3, 3): one filter per channel
    return F.conv2d(x, kernel, padding=1, groups=c)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LRELU_SLOPE)


def pad_images(x: torch.Tensor, pad: int) -> torch.Tensor:
    """(B, C, H, W) → (B, C, H + 2·pad, W + 2·pad), the border filled with 0 (the background of
    Fashion-MNIST/MNIST in data units, −1 in network units)."""
    return F.pad(x, (pad,) * 4, value=0.0) if pad else x


def full_size_images(u: torch.Tensor, pad: int, resolution: int) -> torch.Tensor:
    """A generator's output (B, C, r, r), r ≤ ``resolution`` → (B, C, H, W): upsampled to ``resolution``
    (nearest, as the released code shows a low-resolution stage) and ``pad`` pixels cropped per side."""
    while u.shape[-1] < resolution:
        u = upsample(u)
    return u[..., pad:-pad, pad:-pad] if pad else u


# -- config --------------------------------------------------------------------------------------
@dataclass
class ProGANConfig(ModelConfig):
    """ProGAN options; the defaults are the released code's networks at 32×32 (its CIFAR-10 size)
    for 28×28 greyscale data padded to 32×32; recipes use narrower widths to train on a CPU."""

    in_shape: ImageShape = (1, 28, 28)  # (C, H, W) of the data; padded to resolution × resolution
    resolution: PositiveInt = 32  # R: the full resolution, a power of 2 ≥ 8 and ≥ H, W
    latent_dim: PositiveInt = 512  # K = nf(0) in the released code
    fmap_base: PositiveInt = 8192  # nf(s) = min(fmap_base / 2^s, fmap_max) feature maps
    fmap_max: PositiveInt = 512
    mbstd_group_size: NonNegativeInt = 4  # G of the minibatch stddev (0: no such layer)
    progressive: bool = True  # grow 4×4 → R (False: train at R from the start, α = 1)
    blur: bool = False  # [1, 2, 1] low-pass after G's upsampling, before D's downsampling (StyleGAN 2019 §2.1)


def _check(config: ProGANConfig) -> tuple[int, int]:
    """(number of stages S, padding per side) for a config; ValueError for an impossible one."""
    c, h, w = config.in_shape
    r = config.resolution
    if r < 8 or r & (r - 1):
        raise ValueError(f"resolution {r} must be a power of 2, at least 8 (4×4 is the first stage)")
    if h != w or h > r or (r - h) % 2:
        raise ValueError(
            f"in_shape {h}×{w} must be square, at most resolution {r} and pad evenly to it "
            f"(28 → 32: 2 pixels each side)"
        )
    return int(math.log2(r)) - 1, (r - h) // 2


def nf(config: ProGANConfig, s: int) -> int:
    """Feature maps of the released code, nf(s) = min(⌊fmap_base / 2^s⌋, fmap_max); at least 1."""
    return max(1, min(config.fmap_base // 2**s, config.fmap_max))


# -- networks ------------------------------------------------------------------------------------
class _Staged(nn.Module):
    """What G and D share: S stages for a config (:func:`_check`), the current stage and fade-in α
    (fully grown when built: S − 1, α = 1), set together by :meth:`set_stage`."""

    def __init__(self, config: ProGANConfig):
        super().__init__()
        self.num_stages, _ = _check(config)
        self.stage, self.alpha = self.num_stages - 1, 1.0
        self.blur = config.blur

    def set_stage(self, stage: int, alpha: float) -> None:
        self.stage, self.alpha = stage, alpha


class ProgressiveGenerator(_Staged):
    """G of Table 2: z → pixel norm → dense to 4×4 → conv 3×3, then per stage up → conv 3×3 → conv 3×3,
    each conv followed by leaky ReLU and pixel norm; toRGB_s a linear 1×1 conv per stage. With ``blur`` the
    upsampled features are low-pass filtered (:func:`blur`) before the stage's first conv.

    ``forward(z)`` draws at the current stage and fade-in (:meth:`set_stage`): (B, K) → (B, C, r_s, r_s),
    in network units (about [−1, 1]; linear output, no tanh).
    """

    def __init__(self, config: ProGANConfig):
        super().__init__(config)
        channels = config.in_shape[0]
        n0 = nf(config, 1)
        self.pixel_norm = PixelNorm()
        # first dense layer: gain √2/4 (the released code, matching its Theano original)
        self.dense = EqualizedLinear(config.latent_dim, n0 * 16, gain=math.sqrt(2.0) / 4)
        self.blocks = nn.ModuleList()
        self.to_rgb = nn.ModuleList()
        for s in range(self.num_stages):
            n_in, n_out = nf(config, s), nf(config, s + 1)
            convs = (
                [EqualizedConv2d(n0, n0, 3)]
                if s == 0
                else [EqualizedConv2d(n_in, n_out, 3), EqualizedConv2d(n_out, n_out, 3)]
            )
            self.blocks.append(nn.ModuleList(convs))
            last = s == self.num_stages - 1  # without progressive growing only the last stage has a toRGB
            self.to_rgb.append(
                EqualizedConv2d(n_out, channels, 1, gain=1.0) if config.progressive or last else nn.Identity()
            )

    def block(self, s: int, h: torch.Tensor) -> torch.Tensor:
        """Stage s's block: (B, K) latents at s = 0, else (B, N_{s−1}, r/2, r/2) → (B, N_s, r_s, r_s)."""
        if s == 0:
            h = self.pixel_norm(h)  # normalise z (the released code's normalize_latents)
            h = self.dense(h).view(len(h), -1, 4, 4)  # (B, N_0, 4, 4)
            h = self.pixel_norm(_lrelu(h))
        else:
            h = upsample(h)  # (B, N_{s−1}, r_s, r_s)
            if self.blur:
                h = blur(h)
        for conv in self.blocks[s]:
            h = self.pixel_norm(_lrelu(conv(h)))
        return h

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h_prev, h = None, z
        for s in range(self.stage + 1):
            h_prev, h = h, self.block(s, h)
        y = self.to_rgb[self.stage](h)  # (B, C, r_s, r_s)
        if self.stage > 0 and self.alpha < 1.0:  # fade-in: (1 − α)·up(toRGB_{s−1}(h_{s−1})) + α·toRGB_s(h_s)
            y = torch.lerp(upsample(self.to_rgb[self.stage - 1](h_prev)), y, self.alpha)
        return y


class ProgressiveDiscriminator(_Staged):
    """D of Table 2, the mirror of G: fromRGB_s (1×1 conv, leaky ReLU), per stage conv 3×3 → conv 3×3
    → 2×2 average pool, and at 4×4 minibatch stddev → conv 3×3 → dense (conv 4×4 in the paper) → dense
    to one score (linear; a critic for the WGAN-GP loss). With ``blur`` each block's features are low-pass
    filtered (:func:`blur`) before the pooling.

    ``forward(x)``: (B, C, r_s, r_s) at the current stage → (B, 1) scores.
    """

    def __init__(self, config: ProGANConfig):
        super().__init__(config)
        channels = config.in_shape[0]
        self.from_rgb = nn.ModuleList(  # one per stage; only the last without progressive growing
            EqualizedConv2d(channels, nf(config, s + 1), 1)
            if config.progressive or s == self.num_stages - 1
            else nn.Identity()
            for s in range(self.num_stages)
        )
        self.blocks = nn.ModuleList(
            nn.ModuleList(
                [
                    EqualizedConv2d(nf(config, s + 1), nf(config, s + 1), 3),
                    EqualizedConv2d(nf(config, s + 1), nf(config, s), 3),
                ]
            )
            for s in range(1, self.num_stages)
        )  # blocks[s − 1] is stage s's: (B, N_s, r_s, r_s) → (B, N_{s−1}, r_s/2, r_s/2)
        n0 = nf(config, 1)
        self.mbstd = MinibatchStdDev(config.mbstd_group_size) if config.mbstd_group_size else None
        self.conv = EqualizedConv2d(n0 + (1 if self.mbstd else 0), n0, 3)
        self.dense0 = EqualizedLinear(n0 * 16, nf(config, 0))
        self.dense1 = EqualizedLinear(nf(config, 0), 1, gain=1.0)

    def block(self, s: int, h: torch.Tensor) -> torch.Tensor:
        """Stage s ≥ 1's block: (B, N_s, r_s, r_s) → (B, N_{s−1}, r_s/2, r_s/2)."""
        for conv in self.blocks[s - 1]:
            h = _lrelu(conv(h))
        return downsample(blur(h) if self.blur else h)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """The 4×4 stage: (B, N_0, 4, 4) → (B, 1)."""
        if self.mbstd is not None:
            h = self.mbstd(h)  # (B, N_0 + 1, 4, 4)
        h = _lrelu(self.conv(h))
        h = _lrelu(self.dense0(h.flatten(1)))  # (B, nf(0))
        return self.dense1(h)  # (B, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stage
        h = _lrelu(self.from_rgb[s](x))  # (B, N_s, r_s, r_s)
        if s > 0:
            h = self.block(s, h)
            if self.alpha < 1.0:  # fade-in: (1 − α)·fromRGB_{s−1}(down(x)) + α·block_s(fromRGB_s(x))
                h = torch.lerp(_lrelu(self.from_rgb[s - 1](downsample(x))), h, self.alpha)
            for t in range(s - 1, 0, -1):
                h = self.block(t, h)
        return self.head(h)


# -- the model -------------------------------------------------------------------------------------
def progress_to_stage(step: int, total_steps: int, num_stages: int) -> tuple[int, float]:
    """(stage, α) at ``step`` of ``total_steps`` (§2, App. A.1): 2S − 1 equal phases — stabilise 4×4,
    then for each later stage a fade-in (α rises linearly from 0 to 1) and a stabilisation (α = 1).

    >>> progress_to_stage(0, 70, 4), progress_to_stage(15, 70, 4), progress_to_stage(25, 70, 4)
    ((0, 1.0), (1, 0.5), (1, 1.0))
    """
    phases = 2 * num_stages - 1
    position = min(max(step, 0), total_steps) * phases / total_steps  # in phases, 0 … 2S − 1
    phase = min(int(position), phases - 1)
    if phase == 0:
        return 0, 1.0
    stage = (phase + 1) // 2
    alpha = position - phase if phase % 2 else 1.0  # odd phases fade in
    return stage, float(alpha)


class PaddedImageGAN(GANBase):
    """What ProGAN and StyleGAN share on top of the family's :class:`~archlab.models.gan.base.GANBase`:
    images in [0, 1] of the data's shape (B, C, H, W) outside, [−1, 1] at R×R inside (padded by ``pad``
    pixels per side); ``prepare_real`` pads a real batch, ``generate``/``forward`` crop G's output back,
    and ``generate``/``sample`` pass options (StyleGAN's ψ) on to the generator."""

    config: ProGANConfig
    pad: int

    def to_network(self, x: torch.Tensor) -> torch.Tensor:
        """Data units [0, 1] → network units [−1, 1] (ProGAN App. A.1), u = 2x − 1, element-wise."""
        return x * 2.0 - 1.0

    def to_data(self, u: torch.Tensor) -> torch.Tensor:
        """Network units → data units, x = (u + 1)/2, element-wise (not clamped: see :meth:`generate`)."""
        return (u + 1.0) * 0.5

    def prepare_real(self, x: torch.Tensor) -> torch.Tensor:
        """A real batch (B, C, H, W) → (B, C, R, R), padded with the background 0, still in data units
        (the task applies :meth:`to_network`)."""
        check_shape(x, (None, *self.input_spec), "real batch")
        return pad_images(x, self.pad)

    def generate(self, z: torch.Tensor, **kw) -> torch.Tensor:
        """Latents (B, K) → images (B, C, H, W) in data units, clamped to [0, 1] (a low-resolution stage
        upsampled to R before the padding is cropped); ``kw`` go to the generator."""
        check_shape(z, (None, self.latent_dim), "z")
        u = full_size_images(self._sampler(z.device)(z, **kw), self.pad, self.config.resolution)
        return self.to_data(u).clamp(0.0, 1.0)

    def discriminate(self, x: torch.Tensor) -> torch.Tensor:
        """D's scores (B, 1) of images in data units (B, C, H, W), at the current stage."""
        return self.discriminator(self.to_network(self.prepare_real(x)))

    def forward(self, z: torch.Tensor) -> GANOutput:
        """(G(z) in data units (B, C, H, W), D's score of it (B, 1)): one pass through both networks."""
        check_shape(z, (None, self.latent_dim), "z")
        u = self.generator(z)
        return GANOutput(self.to_data(full_size_images(u, self.pad, self.config.resolution)), self.discriminator(u))


class ProGAN(PaddedImageGAN):
    """Progressive GAN: ``generator`` and ``discriminator`` grown together (see the module docstring).

    ``set_progress(step, total_steps)`` sets both networks' stage and α (the GAN task calls it before
    every step; a freshly built or loaded model is fully grown, α = 1); ``prepare_real(x)`` turns a
    real batch (B, C, H, W) into what D sees at the current stage (B, C, r_s, r_s), and
    ``to_network``/``to_data`` map [0, 1] ↔ [−1, 1]; ``generate(z)`` (B, K) → (B, C, H, W) and
    ``sample(n)`` are in the data's own shape and units. ``forward(z)`` → (G(z) in data units, D's score).
    """

    def __init__(self, config: ProGANConfig):
        super().__init__()
        self.num_stages, self.pad = _check(config)
        self._init_interface(config)
        self.generator = ProgressiveGenerator(config)
        self.discriminator = ProgressiveDiscriminator(config)
        self.stage, self.alpha = self.num_stages - 1, 1.0

    # -- progress ------------------------------------------------------------------------------
    def set_stage(self, stage: int, alpha: float) -> None:
        """Put both networks (and an attached averaged generator) at ``stage`` (0 … S − 1) with
        fade-in weight ``alpha``. Raises ValueError outside those ranges."""
        if not (0 <= stage < self.num_stages and 0.0 <= alpha <= 1.0):
            raise ValueError(f"stage {stage} must be in [0, {self.num_stages}) and alpha {alpha} in [0, 1]")
        self.stage, self.alpha = stage, float(alpha)
        for net in (self.generator, self.discriminator, self.__dict__.get("_sampling_generator")):
            if net is not None:
                net.set_stage(stage, self.alpha)

    def set_progress(self, step: int, total_steps: int | None) -> None:
        """Stage and α for ``step`` of ``total_steps`` (:func:`progress_to_stage`); fully grown when
        ``progressive`` is off. Raises ConfigError for a time budget (the schedule needs the steps)."""
        if not self.config.progressive:
            return
        if total_steps is None:
            raise ConfigError("budget: progressive growing schedules its stages over budget.steps; set budget.steps")
        self.set_stage(*progress_to_stage(step, total_steps, self.num_stages))

    @property
    def current_resolution(self) -> int:
        """r_s = 4·2^s, the side D reads and G writes at the current stage."""
        return 4 * 2**self.stage

    def attach_sampling_generator(self, module: nn.Module | None) -> None:
        super().attach_sampling_generator(module)
        if module is not None:
            module.set_stage(self.stage, self.alpha)  # it follows set_stage from now on

    def prepare_real(self, x: torch.Tensor) -> torch.Tensor:
        """A real batch (B, C, H, W) → what D sees at the current stage, (B, C, r_s, r_s), still in data
        units (the task applies :meth:`to_network`): padded to R, average-pooled to r_s, and during a
        fade-in blended with its own lower resolution, x_s ← (1 − α)·up(down(x_s)) + α·x_s (Fig. 2)."""
        y = super().prepare_real(x)
        while y.shape[-1] > self.current_resolution:
            y = downsample(y)
        if self.stage > 0 and self.alpha < 1.0:
            y = torch.lerp(upsample(downsample(y)), y, self.alpha)
        return y

    def inactive_parameters(self) -> set[str]:
        """Names of the parameters the current stage and α do not use (the toRGB/fromRGB layers of
        other stages, the blocks of stages not yet grown): they get no gradient."""
        s, faded = self.stage, self.stage > 0 and self.alpha < 1.0
        used_rgb = {s, s - 1} if faded else {s}
        out = set()
        for name, _ in self.named_parameters():
            parts = name.split(".")
            if parts[1] in ("to_rgb", "from_rgb") and int(parts[2]) not in used_rgb:
                out.add(name)
            elif parts[1] == "blocks":
                stage = int(parts[2]) + (1 if parts[0] == "discriminator" else 0)
                if stage > s:
                    out.add(name)
        return out


_PAPER = (
    "Karras, Aila, Laine & Lehtinen, Progressive Growing of GANs for Improved Quality, Stability, and "
    "Variation (ICLR 2018, arXiv:1710.10196)"
)


@register_model(
    family="gan",
    config=ProGANConfig,
    paper=_PAPER,
    tasks=("gan",),
    test_overrides={"latent_dim": 16, "fmap_base": 32, "fmap_max": 16},
    meta={"num_params": 41_445_893, "macs": 12_768_584_192},
)
def progan(**overrides) -> ProGAN:
    """Progressive GAN (Karras et al. 2018): 4×4 → 32×32 with fade-in, equalised lr, pixel norm, mbstd."""
    return ProGAN(ProGANConfig(**overrides))
