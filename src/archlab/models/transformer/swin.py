"""Swin Transformer: self-attention inside local windows that shift between consecutive blocks.

Liu, Lin, Cao, Hu, Wei, Zhang, Lin & Guo, *Swin Transformer: Hierarchical Vision Transformer using
Shifted Windows* (ICCV 2021), arXiv:2103.14030. Patch partition (4×4 patches, a linear embedding of
C channels: one 4×4 convolution of stride 4, then LayerNorm), four stages of Swin blocks separated
by patch merging (each 2×2 group of neighbouring tokens concatenated, 4C, LayerNorm, then a linear
reduction to 2C), then LayerNorm, global average pooling and a linear classifier. A block is a
pre-LN Transformer block whose multi-head self-attention (MSA) runs inside non-overlapping M×M
windows (W-MSA); every second block shifts the windows by ⌊M/2⌋ (SW-MSA, §3.2), computed as a
cyclic shift of the feature map and an attention mask so that the batch keeps the same number of
windows (Fig. 4). Attention adds a learned relative position bias B ∈ R^{M²×M²}, read from a table
B̂ ∈ R^{(2M−1)×(2M−1)} per head (Eq. 4).

Variants (§3.3): Swin-T C = 96, depths (2, 2, 6, 2), heads (3, 6, 12, 24), window M = 7, stochastic
depth 0.2 — 28,288,354 parameters (torchvision's count), 4.49 GFLOPs published (torchvision). The
small configuration ``swin_atto`` (ours) is a size that trains on Fashion-MNIST in minutes.

Layout as torchvision's ``swin_t`` (token maps channels-last (B, H, W, C) between blocks; a map not
divisible by M is zero-padded on the bottom/right for the attention and cropped after it, an odd map
before patch merging likewise; a window at least as large as the map is not shifted). So any input
of at least one patch per side runs, whatever its size.

Letters: B batch, H×W the token map, C channels of the stage, M window side, N = M² tokens per window,
h heads, d = C/h per head, s = ⌊M/2⌋ the shift, K classes, LN LayerNorm, z^l the tokens after block l.

Equations:
    patch partition:  z^0 = LN(W_e ⋆ x)               4×4 conv, stride 4: (B, H/4, W/4, C)
    block l (odd l shifted):
        ẑ^l = W-MSA(LN(z^{l−1})) + z^{l−1}          (Eq. 3; SW-MSA for the shifted blocks)
        z^l = MLP(LN(ẑ^l)) + ẑ^l                    MLP: C → 4C → C, GELU
    attention in a window:
        Attention(Q, K, V) = SoftMax(QKᵀ/√d + B + M_shift) V          (Eq. 4)
        B_{ij} = B̂[Δy_{ij} + M − 1, Δx_{ij} + M − 1]                  Δ = position_i − position_j
        M_shift,ij = 0 if tokens i and j were neighbours before the cyclic shift, else −∞
    patch merging:    z ← W_r · LN([z_{2i,2j}, z_{2i+1,2j}, z_{2i,2j+1}, z_{2i+1,2j+1}])   4C → 2C, no bias
    logits = W_h · GAP(LN(z^L)) + b_h                                                    (B, K)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from archlab.layers.conv import DropPath
from archlab.registry import register_model
from archlab.registry.config import ImageShape, ModelConfig, PositiveFloat, PositiveInt, Probability, Shape, StageDepths
from archlab.utils.shapes import AtLeast, check_shape

PAPER = (
    "Liu et al., Swin Transformer: Hierarchical Vision Transformer using Shifted Windows (ICCV 2021), arXiv:2103.14030"
)
TEST_OVERRIDES = {
    "in_shape": (3, 32, 32),
    "num_classes": 10,
    "embed_dim": 12,
    "depths": (2, 2),
    "num_heads": (2, 4),
    "window_size": 4,
}


def relative_position_index(window: int) -> torch.Tensor:
    """Index into the flattened (2M−1)×(2M−1) bias table for each pair of tokens of an M×M window (Eq. 4).

    Token i at (y_i, x_i) and token j at (y_j, x_j), row-major in the window: index =
    (y_i − y_j + M − 1)·(2M − 1) + (x_i − x_j + M − 1). Shapes: → (M², M²), int64.
    """
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)  # (2, N)
    rel = coords[:, :, None] - coords[:, None, :] + (window - 1)  # (2, N, N), each in [0, 2M−2]
    return rel[0] * (2 * window - 1) + rel[1]


def shifted_window_mask(height: int, width: int, window: int, shift: tuple[int, int]) -> torch.Tensor:
    """The SW-MSA mask of Fig. 4: True where two tokens of a window may attend to each other.

    After the cyclic shift by ``shift`` = (s_y, s_x) (up and left), a window at the bottom or right
    edge holds tokens from up to four regions that were not neighbours in the feature map; a token
    attends only to tokens of its own region. Regions per axis, as in the paper's code: [0, H−M),
    [H−M, H−s), [H−s, H) — one region [0, H) where that axis is not shifted (s = 0). ``height`` and
    ``width`` are multiples of ``window``. Shapes: → (nW, N, N) bool, nW = (H/M)·(W/M) windows in
    row-major order, N = M².
    """

    def regions(side: int, s: int) -> tuple[tuple[int, int], ...]:
        return ((0, side),) if s == 0 else ((0, side - window), (side - window, side - s), (side - s, side))

    region = torch.zeros(height, width, dtype=torch.long)
    label = 0
    for h0, h1 in regions(height, shift[0]):
        for w0, w1 in regions(width, shift[1]):
            region[h0:h1, w0:w1] = label
            label += 1
    windows = window_partition(region[None, :, :, None], window).squeeze(-1)  # (nW, N)
    return windows[:, :, None] == windows[:, None, :]


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """Split a token map into non-overlapping M×M windows, row-major.
    Shapes: (B, H, W, C) → (B·nW, M², C), H and W multiples of M."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)  # (B, H/M, M, W/M, M, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)  # (B·nW, N, C)


def window_reverse(windows: torch.Tensor, window: int, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`. Shapes: (B·nW, M², C) → (B, H, W, C)."""
    c = windows.shape[-1]
    x = windows.view(-1, height // window, width // window, window, window, c)  # (B, H/M, W/M, M, M, C)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, c)


class WindowAttention(nn.Module):
    """(S)W-MSA: multi-head self-attention inside M×M windows with a relative position bias (§3.2, Eq. 4).

    Args:
        dim: C. num_heads: h (C divisible by h). window_size: M. shift_size: s (0 for W-MSA, ⌊M/2⌋ for SW-MSA).
        attention_dropout: dropout on the attention weights. dropout: dropout after the output projection.

    Raises ValueError if C is not divisible by h or s ∉ [0, M).
    Shapes: (B, H, W, C) → (B, H, W, C), any H, W (padded to multiples of M inside).
    """

    def __init__(
        self, dim: int, num_heads: int, window_size: int, shift_size: int = 0, attention_dropout=0.0, dropout=0.0
    ):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"width {dim} is not divisible by {num_heads} heads; pick heads that divide it")
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift {shift_size} must be in [0, window {window_size})")
        self.num_heads, self.window_size, self.shift_size = num_heads, window_size, shift_size
        self.head_dim = dim // num_heads
        self.attention_dropout, self.dropout = attention_dropout, dropout
        self.qkv = nn.Linear(dim, 3 * dim)  # fused W_Q, W_K, W_V
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))  # B̂
        self.register_buffer("relative_position_index", relative_position_index(window_size), persistent=False)
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def relative_position_bias(self) -> torch.Tensor:
        """B of Eq. 4 for every head. Shapes: → (h, N, N)."""
        n = self.window_size**2
        bias = self.relative_position_bias_table[self.relative_position_index.flatten()]  # (N·N, h)
        return bias.view(n, n, -1).permute(2, 0, 1)  # (h, N, N)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, height, width, c = x.shape
        m = self.window_size
        pad_b, pad_r = (-height) % m, (-width) % m
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))  # zero rows/columns to multiples of M
        hp, wp = height + pad_b, width + pad_r
        shift = (self.shift_size if m < hp else 0, self.shift_size if m < wp else 0)  # one window: nothing to shift
        if any(shift):
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))  # cyclic shift up-left (Fig. 4)
        windows = window_partition(x, m)  # (B·nW, N, C)
        bw, n, _ = windows.shape
        qkv = self.qkv(windows).view(bw, n, 3, self.num_heads, self.head_dim)  # (B·nW, N, 3, h, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B·nW, h, N, d)
        logits = (q * self.head_dim**-0.5) @ k.transpose(-2, -1)  # QKᵀ/√d: (B·nW, h, N, N)
        logits = logits + self.relative_position_bias()  # + B
        if any(shift):
            allowed = shifted_window_mask(hp, wp, m, shift).to(x.device)  # (nW, N, N)
            logits = logits.view(b, -1, self.num_heads, n, n).masked_fill(~allowed[None, :, None], float("-inf"))
            logits = logits.view(bw, self.num_heads, n, n)  # every row keeps its own token: never all −∞
        attn = F.dropout(logits.softmax(-1), self.attention_dropout, self.training)
        out = (attn @ v).transpose(1, 2).reshape(bw, n, c)  # (B·nW, N, C)
        out = F.dropout(self.proj(out), self.dropout, self.training)
        x = window_reverse(out, m, hp, wp)  # (B, Hp, Wp, C)
        if any(shift):
            x = torch.roll(x, shifts=shift, dims=(1, 2))  # undo the cyclic shift
        return x[:, :height, :width].contiguous()


class SwinBlock(nn.Module):
    """z ← z + DropPath((S)W-MSA(LN(z))); z ← z + DropPath(MLP(LN(z))) (Eq. 3).

    Shapes: (B, H, W, C) → (B, H, W, C).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        shift_size: int,
        mlp_ratio: float,
        dropout: float,
        attention_dropout: float,
        drop_path: float,
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window_size, shift_size, attention_dropout, dropout)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """Concatenate each 2×2 group of tokens (4C), LayerNorm, linear 4C → 2C without bias (§3.1).
    An odd H or W is zero-padded first. Shapes: (B, H, W, C) → (B, ⌈H/2⌉, ⌈W/2⌉, 2C)."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 0, 0, x.shape[2] % 2, 0, x.shape[1] % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)  # (B, H/2, W/2, 4C)
        return self.reduction(self.norm(x))


@dataclass
class SwinConfig(ModelConfig):
    """Swin Transformer (Liu et al. 2021); defaults are Swin-T (§3.3)."""

    in_shape: ImageShape = (3, 224, 224)  # (C, H, W): ImageNet 224×224
    num_classes: PositiveInt = 1000  # K
    patch_size: PositiveInt = 4  # side of a patch (§3.1: 4×4)
    embed_dim: PositiveInt = 96  # C of stage 1 (T/S: 96, B: 128, L: 192)
    depths: StageDepths = (2, 2, 6, 2)  # blocks per stage (T: 2-2-6-2, S/B/L: 2-2-18-2)
    num_heads: Shape = (3, 6, 12, 24)  # heads per stage: one per 32 channels
    window_size: PositiveInt = 7  # M (§3.2)
    mlp_ratio: PositiveFloat = 4.0  # MLP hidden width / C
    dropout: Probability = 0.0  # after the attention projection and in the MLP
    attention_dropout: Probability = 0.0  # on the attention weights
    drop_path_rate: Probability = 0.2  # stochastic depth of the last block (T 0.2, S 0.3, B 0.5; §A2.1)


class SwinTransformer(nn.Module):
    """Shapes: x (B, C, H, W) → (B, K); features (B, C·2^(stages−1))."""

    def __init__(self, config: SwinConfig):
        super().__init__()
        self.config = config
        self.input_shape = tuple(config.in_shape)
        depths, heads = tuple(config.depths), tuple(config.num_heads)
        if len(depths) != len(heads) or not depths:
            raise ValueError(f"depths and num_heads must have the same non-zero length, got {depths} and {heads}")
        c_in, h, w = config.in_shape
        p = config.patch_size
        if min(h, w) < p:
            raise ValueError(f"input {h}×{w} is smaller than one {p}×{p} patch; lower model.patch_size")
        # any size of at least one patch runs: windows pad, patch merging pads odd maps
        self.input_spec = (c_in, AtLeast("H", p), AtLeast("W", p))
        dims = [config.embed_dim * 2**i for i in range(len(depths))]
        for dim, nh in zip(dims, heads):
            if dim % nh:
                raise ValueError(f"stage width {dim} is not divisible by {nh} heads; pick heads that divide it")

        self.patch_embed = nn.Conv2d(c_in, dims[0], kernel_size=p, stride=p)  # linear embedding of 4×4 patches
        self.patch_norm = nn.LayerNorm(dims[0])
        n_blocks, i = sum(depths), 0
        self.stages = nn.ModuleList()
        self.merges = nn.ModuleList()  # after stages 1 … L−1
        for s, (depth, dim, nh) in enumerate(zip(depths, dims, heads)):
            blocks = []
            for j in range(depth):
                rate = config.drop_path_rate * i / max(n_blocks - 1, 1)  # 0 … drop_path_rate (torchvision)
                shift = 0 if j % 2 == 0 else config.window_size // 2  # W-MSA, SW-MSA alternate
                blocks.append(
                    SwinBlock(
                        dim,
                        nh,
                        config.window_size,
                        shift,
                        config.mlp_ratio,
                        config.dropout,
                        config.attention_dropout,
                        rate,
                    )
                )
                i += 1
            self.stages.append(nn.Sequential(*blocks))
            if s < len(depths) - 1:
                self.merges.append(PatchMerging(dim))
        self.num_features = dims[-1]
        self.norm = nn.LayerNorm(dims[-1])
        self.head = nn.Linear(dims[-1], config.num_classes)
        self._init_weights()

    def _init_weights(self) -> None:
        """Linear weights truncated normal σ 0.02, biases 0 (official code, torchvision); LN 1/0."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        check_shape(x, (None, *self.input_spec))
        x = self.patch_norm(self.patch_embed(x).permute(0, 2, 3, 1))  # (B, H/4, W/4, C)
        for s, stage in enumerate(self.stages):
            x = stage(x)  # (B, H/2^(s+2), W/2^(s+2), 2^s·C)
            if s < len(self.merges):
                x = self.merges[s](x)
        return self.norm(x).mean((1, 2))  # LN then GAP: (B, C_last)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h)  # (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


# -- builders ----------------------------------------------------------------------------------
@register_model(
    family="transformer",
    config=SwinConfig,
    paper=PAPER,
    test_overrides=TEST_OVERRIDES,
    meta={"num_params": 28_288_354, "macs": 4.49e9, "source": "torchvision"},
)
def swin_t(**overrides) -> SwinTransformer:
    """Swin-T: C = 96, depths 2-2-6-2, heads 3-6-12-24, 7×7 windows."""
    return SwinTransformer(SwinConfig(**overrides))
