"""The noise-prediction networks ε_θ(x_t, t) of the diffusion models: the U-Net of Ho et al. and a
time-conditioned MLP for low-dimensional data.

Ho, Jain & Abbeel, NeurIPS 2020, arXiv:2006.11239, Appendix B: "a U-Net based on a Wide ResNet … We
replaced weight normalization with group normalization … two convolutional residual blocks per
resolution level and self-attention blocks at the 16×16 resolution between the convolutional blocks.
Diffusion time t is specified by adding the Transformer sinusoidal position embedding into each
residual block." (The U-Net follows PixelCNN++, Salimans et al. 2017; the blocks are those of the
authors' released ``diffusion_tf/models/unet.py``, written here from that description.)

Letters: B batch, C channels, H×W a feature map, N = H·W positions, D the time-embedding width,
t ∈ {0, …, T − 1} the step index (step t + 1 of the paper), e(t) its embedding.

Equations:
    e(t)_i = sin(t · 10000^(−i/(d/2 − 1))),  e(t)_{d/2+i} = cos(…)       i < d/2 (Transformer sinusoid)
    temb = W₂ SiLU(W₁ e(t))                                              (B, D), D = 4C
    ResBlock:  h = conv(SiLU(GN(x)));  h += W_t SiLU(temb);  h = conv(dropout(SiLU(GN(h))));  x' = skip(x) + h
    Attention: q, k, v = 1×1 convs of GN(x);  x' = x + W_o (v · softmax(qᵀk / √C))    (over the N positions)
    down:      conv 3×3 stride 2        up: nearest ×2 then conv 3×3
    MLP ε-network (2-D points): h_0 = W_in x;  h_l = SiLU(W_l h_{l−1} + U_l temb);  ε̂ = W_out h_L

The last convolution of each residual block, the attention output and the U-Net's output convolution
start at zero (as in the released code), so each block starts as the identity and ε̂ starts at 0.
Other weights keep PyTorch's default initialisation (the released code uses Xavier-uniform).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """The sinusoidal embedding of integer steps (Vaswani et al. 2017 §3.5, in the layout of Ho et al.'s
    ``get_timestep_embedding``: all sines, then all cosines): (B,) → (B, dim) float32; an odd ``dim``
    gets a zero last column. Raises ValueError for dim < 2."""
    if dim < 2:
        raise ValueError(f"the time embedding needs dim ≥ 2, got {dim}")
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / max(half - 1, 1)
    )
    args = t.float()[:, None] * freqs[None]  # (B, half)
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)  # (B, 2·half)
    return F.pad(emb, (0, dim % 2))


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """Wide-ResNet block with GroupNorm and the time embedding added after the first convolution.

    Shapes: x (B, C_in, H, W), temb (B, D) → (B, C_out, H, W)."""

    def __init__(self, c_in: int, c_out: int, temb_dim: int, groups: int, dropout: float = 0.0):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.temb_proj = nn.Linear(temb_dim, c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()  # Ho's "nin" shortcut

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]  # (B, C_out, 1, 1): the same shift at every pixel
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Single-head self-attention over the H·W positions of a feature map, residual.

    Shapes: (B, C, H, W) → (B, C, H, W)."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).unbind(1)  # each (B, C, N)
        w = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(C), dim=-1)  # (B, N, N): query i over keys j
        h = (v @ w.transpose(1, 2)).reshape(B, C, H, W)  # (B, C, N) → (B, C, H, W)
        return x + self.proj(h)


class Downsample(nn.Module):
    """3×3 convolution with stride 2: (B, C, H, W) → (B, C, ⌈H/2⌉, ⌈W/2⌉)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour ×2, then a 3×3 convolution: (B, C, H, W) → (B, C, 2H, 2W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class TimeEmbedding(nn.Module):
    """e(t) → W₂ SiLU(W₁ e(t)): (B,) integer steps → (B, out_dim)."""

    def __init__(self, sinusoid_dim: int, out_dim: int):
        super().__init__()
        self.sinusoid_dim = sinusoid_dim
        self.mlp = nn.Sequential(nn.Linear(sinusoid_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.sinusoid_dim))


class UNet(nn.Module):
    """ε_θ(x_t, t) for images (Ho et al. 2020, App. B).

    Args:
        in_channels: C of the images.
        channels: base width; level i has ``channels · channel_mult[i]`` channels.
        channel_mult: one multiplier per resolution level; every level but the last halves H and W.
        num_res_blocks: residual blocks per level on the way down (one more on the way up, as in Ho et al.).
        attention_levels: the levels (0 = full resolution) with self-attention after each block; the
            middle block always has one.
        dropout: in each residual block (Ho et al.: 0.1 on CIFAR-10).
        groups: GroupNorm groups (must divide every level's width).

    Shapes: x (B, C, H, W), t (B,) int64 → ε̂ (B, C, H, W); H and W multiples of 2^(levels − 1).
    """

    def __init__(
        self,
        in_channels: int,
        channels: int,
        channel_mult: tuple[int, ...],
        num_res_blocks: int,
        attention_levels: tuple[int, ...],
        dropout: float,
        groups: int,
    ):
        super().__init__()
        widths = [channels * m for m in channel_mult]
        bad = [w for w in [channels, *widths] if w % groups]
        if bad:
            raise ValueError(f"norm_groups={groups} must divide every level's width {[channels, *widths]}")
        if any(i >= len(widths) for i in attention_levels):
            raise ValueError(f"attention_levels {attention_levels} name a level ≥ the {len(widths)} of channel_mult")
        temb = 4 * channels
        self.levels = len(widths)
        self.time_embed = TimeEmbedding(channels, temb)
        self.conv_in = nn.Conv2d(in_channels, channels, 3, padding=1)
        self.down = nn.ModuleList()
        skips, c = [channels], channels
        for i, w in enumerate(widths):
            for _ in range(num_res_blocks):
                self.down.append(ResBlock(c, w, temb, groups, dropout))
                c = w
                if i in attention_levels:
                    self.down.append(AttentionBlock(c, groups))
                skips.append(c)
            if i != self.levels - 1:
                self.down.append(Downsample(c))
                skips.append(c)
        self.mid = nn.ModuleList(
            [ResBlock(c, c, temb, groups, dropout), AttentionBlock(c, groups), ResBlock(c, c, temb, groups, dropout)]
        )
        self.up = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            for _ in range(num_res_blocks + 1):
                self.up.append(ResBlock(c + skips.pop(), w, temb, groups, dropout))
                c = w
                if i in attention_levels:
                    self.up.append(AttentionBlock(c, groups))
            if i != 0:
                self.up.append(Upsample(c))
        self.norm_out = nn.GroupNorm(groups, c)
        self.conv_out = _zero(nn.Conv2d(c, in_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_embed(t)  # (B, 4C)
        h = self.conv_in(x)
        hs = [h]
        for block in self.down:
            if isinstance(block, AttentionBlock):
                h = hs[-1] = block(h)  # the attended map is the skip of its residual block
                continue
            h = block(h, temb) if isinstance(block, ResBlock) else block(h)
            hs.append(h)
        for block in self.mid:
            h = block(h, temb) if isinstance(block, ResBlock) else block(h)
        for block in self.up:
            if isinstance(block, ResBlock):
                h = block(torch.cat([h, hs.pop()], dim=1), temb)  # (B, c + c_skip, H, W) → (B, w, H, W)
            else:
                h = block(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class MLPDenoiser(nn.Module):
    """ε_θ(x_t, t) for vectors (2-D points): an MLP whose every hidden layer adds a projection of the
    time embedding (the U-Net's per-block conditioning, without convolutions).

    Shapes: x (B, *in_shape) flattened to (B, d), t (B,) → ε̂ (B, *in_shape)."""

    def __init__(self, in_features: int, width: int, depth: int):
        super().__init__()
        self.time_embed = TimeEmbedding(width, width)
        self.inp = nn.Linear(in_features, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.temb_proj = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
        self.out = nn.Linear(width, in_features)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = F.silu(self.time_embed(t))  # (B, width)
        h = self.inp(x.flatten(1))  # (B, width)
        for layer, proj in zip(self.hidden, self.temb_proj, strict=True):
            h = F.silu(layer(h) + proj(temb))
        return self.out(h).view_as(x)
