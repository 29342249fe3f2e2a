"""Vision Transformer (ViT): an image as a sequence of patches, read by a pre-LN Transformer encoder.

Dosovitskiy, Beyer, Kolesnikov, Weissenborn, Zhai, Unterthiner, Dehghani, Minderer, Heigold, Gelly,
Uszkoreit & Houlsby, *An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale*
(ICLR 2021), arXiv:2010.11929, §3.1, Eq. 1–4. The image is cut into N = HW/P² non-overlapping P×P
patches, each flattened and projected to D (one P×P convolution of stride P: the same linear map E),
a learned class token is prepended, learned 1-D position embeddings are added, and L pre-LN encoder
blocks (:class:`~archlab.layers.transformer.TransformerStack`, GELU MLP, final LayerNorm) follow;
the classifier reads the class token. That recipe is :class:`ViTBase`, whatever the patch: the signal
Transformer (signal.py) is the same class on 1-D segments of a signal.

Variants (Table 1; counts torchvision's, 224×224 input, 1000 classes): ViT-B/16 (D 768, L 12, 12
heads, MLP 3072) — 86,567,656 parameters, 17.56 GMACs (torchvision publishes 17.56 "GFLOPS"); ViT-B/32
the same encoder on 7×7 patches of 32 — 88,224,232. Small configurations (ours) for 28×28 images:
``vit_mini_p7`` (7×7 patches: 16 tokens + class) and ``vit_mini_p4`` (4×4: 49 + class), D 64, L 4,
4 heads, MLP 128 — 139,018 parameters each (P7: a 49·64 projection and 17 positions; P4: 16·64 and
50 positions; the same sum), 2.43 M and 7.88 M MACs.

Input size: the position table holds one vector per patch of the configured H×W grid, so the model
takes exactly the configured H×W (another size is refused with a one-line ShapeError that names the
expected shape; positions are not interpolated), and H, W must be multiples of P (a ConfigError at
construction otherwise).

Letters: B batch, C channels, H×W image, P patch side, N = HW/P² patches, D model width, L blocks,
K classes, E the patch projection, x_class the class token, E_pos the position table ((N+1) × D),
MSA multi-head self-attention, LN LayerNorm.

Equations:
    z_0  = [x_class; x_p^1 E; …; x_p^N E] + E_pos            (Eq. 1)   (B, N+1, D)
    z'_l = MSA(LN(z_{l−1})) + z_{l−1}                         (Eq. 2)   l = 1 … L
    z_l  = MLP(LN(z'_l)) + z'_l                               (Eq. 3)   MLP: D → D_mlp → D, GELU
    y    = LN(z_L^0)                                          (Eq. 4)   the class token's output
    logits = W_head y + b_head                                          (B, K)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from archlab.layers.transformer import TransformerStack
from archlab.registry import register_model
from archlab.registry.config import ImageShape, LayerCount, ModelConfig, PositiveInt, Probability
from archlab.utils.shapes import check_shape

PAPER = (
    "Dosovitskiy et al., An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale "
    "(ICLR 2021), arXiv:2010.11929"
)
TEST_OVERRIDES = {
    "in_shape": (3, 32, 32),
    "num_classes": 10,
    "patch_size": 8,
    "hidden_dim": 16,
    "num_layers": 2,
    "num_heads": 2,
    "mlp_dim": 32,
}
LN_EPS = 1e-6  # every LayerNorm (the paper's code, torchvision)


@dataclass
class ViTConfig(ModelConfig):
    """Vision Transformer (Dosovitskiy et al. 2021); defaults are ViT-B/16 (Table 1)."""

    in_shape: ImageShape = (3, 224, 224)  # (C, H, W): H and W multiples of patch_size
    num_classes: PositiveInt = 1000  # K
    patch_size: PositiveInt = 16  # P (B/16: 16, B/32: 32)
    hidden_dim: PositiveInt = 768  # D (Base 768, Large 1024, Huge 1280)
    num_layers: LayerCount = 12  # L (Base 12, Large 24, Huge 32)
    num_heads: PositiveInt = 12  # heads; D must be divisible by it (Base 12, Large 16, Huge 16)
    mlp_dim: PositiveInt = 3072  # the MLP's hidden width (4D in Table 1)
    dropout: Probability = 0.0  # after the embeddings and on each sub-layer's output (§B.1: 0.1 on ImageNet)
    attention_dropout: Probability = 0.0  # on the attention weights


class ViTBase(nn.Module):
    """The ViT recipe whatever the patch (Eq. 1–4): a patch embedding E, a learned class token, learned
    positions, a pre-LN encoder with a final LayerNorm, and a linear head on the class token.

    :class:`VisionTransformer` plugs in 2-D patches of an image, the signal Transformer
    (:mod:`.signal`) 1-D segments of a signal; each subclass sets ``input_spec`` (the exact input
    shape, checked in :meth:`embed`) and may override :meth:`patchify` (the signal's zero padding).

    Args:
        patch_embed: E, a convolution of kernel and stride P (``nn.Conv2d`` for images, ``nn.Conv1d``
            for signals); its ``out_channels`` is D.
        num_tokens: N, the patches per input (the position table has N + 1 rows).
        num_classes: K. num_layers: L. num_heads: heads (D divisible by it, else ConfigError).
        d_ff: the MLP's hidden width. dropout: after the embeddings and on each sub-layer's output.
        attention_dropout: on the attention weights. layer_norm_eps: every LayerNorm's ε.
        init_positions: draw E_pos ~ N(0, 0.02²) here, before the encoder's weights are drawn (the
            signal Transformer's order); False leaves E_pos to the subclass (ViT draws it after the
            encoder, in :meth:`VisionTransformer._init_weights`, as torchvision does).
    Shapes: x (B, *input_spec) → (B, K); features (B, D) (the class token after the final LayerNorm).
    """

    input_spec: tuple[int, ...]

    def __init__(
        self,
        patch_embed: nn.Conv1d | nn.Conv2d,
        num_tokens: int,
        num_classes: int,
        *,
        num_layers: int,
        num_heads: int,
        d_ff: int,
        dropout: float,
        attention_dropout: float,
        layer_norm_eps: float = 1e-5,
        init_positions: bool = False,
    ):
        super().__init__()
        d = patch_embed.out_channels
        self.patch_embed = patch_embed  # E, applied to every patch
        self.class_token = nn.Parameter(torch.zeros(1, 1, d))  # x_class
        self.pos_embedding = nn.Parameter(torch.empty(1, num_tokens + 1, d))  # E_pos
        if init_positions:
            nn.init.normal_(self.pos_embedding, std=0.02)
        self.dropout = nn.Dropout(dropout)
        self.encoder = TransformerStack(
            num_layers,
            final_norm=True,
            d_model=d,
            num_heads=num_heads,
            d_ff=d_ff,
            norm_first=True,
            activation="gelu",
            dropout=dropout,
            attention_dropout=attention_dropout,
            layer_norm_eps=layer_norm_eps,
        )
        self.num_features = d
        self.head = nn.Linear(d, num_classes)

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """x_p^i E for every patch, in order. Shapes: (B, C, *spatial) → (B, N, D)."""
        return self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, D, N) → (B, N, D): row-major patches

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """z_0 of Eq. 1. Shapes: (B, *input_spec) → (B, N+1, D)."""
        check_shape(x, (None, *self.input_spec))
        patches = self.patchify(x)  # (B, N, D)
        cls = self.class_token.expand(x.shape[0], -1, -1)  # (B, 1, D)
        return self.dropout(torch.cat([cls, patches], dim=1) + self.pos_embedding)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        z, _ = self.encoder(self.embed(x))  # (B, N+1, D), final LN included
        return z[:, 0]  # y = LN(z_L^0): (B, D)

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(h)  # (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


class VisionTransformer(ViTBase):
    """Shapes: x (B, C, H, W) → (B, K); features (B, D) (the class token after the final LayerNorm)."""

    def __init__(self, config: ViTConfig):
        c, h, w = config.in_shape
        p, d = config.patch_size, config.hidden_dim
        if h % p or w % p:
            raise ValueError(
                f"input {h}×{w} is not divisible into {p}×{p} patches; pick model.patch_size dividing both "
                f"(or resize the images)"
            )
        num_patches = (h // p) * (w // p)  # N
        super().__init__(
            nn.Conv2d(c, d, kernel_size=p, stride=p),  # E, applied to every P×P patch
            num_patches,
            config.num_classes,
            num_layers=config.num_layers,
            num_heads=config.num_heads,
            d_ff=config.mlp_dim,
            dropout=config.dropout,
            attention_dropout=config.attention_dropout,
            layer_norm_eps=LN_EPS,
        )
        self.config = config
        self.input_shape = tuple(config.in_shape)
        # the position table fixes the grid: exactly the configured H×W (no interpolation)
        self.input_spec = (c, h, w)
        self.num_patches = num_patches
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's (after the paper's code): E truncated normal σ = √(1/fan-in), E_pos N(0, 0.02²),
        class token 0, MLP weights Xavier-uniform with biases N(0, 1e-6²), head 0 (§3.2 zero-initialises
        the head; it trains from scratch the same way)."""
        fan_in = self.patch_embed.weight[0].numel()
        nn.init.trunc_normal_(self.patch_embed.weight, std=math.sqrt(1 / fan_in))
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.normal_(self.pos_embedding, std=0.02)
        for block in self.encoder.layers:
            for lin in (block.ffn.linear1, block.ffn.linear2):
                nn.init.xavier_uniform_(lin.weight)
                nn.init.normal_(lin.bias, std=1e-6)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)


# -- builders ----------------------------------------------------------------------------------
@register_model(
    family="transformer",
    config=ViTConfig,
    paper=PAPER,
    test_overrides=TEST_OVERRIDES,
    meta={"num_params": 86_567_656, "macs": 17.56e9, "source": "torchvision"},
)
def vit_b_16(**overrides) -> VisionTransformer:
    """ViT-B/16: D 768, 12 blocks, 12 heads, MLP 3072, 16×16 patches."""
    return VisionTransformer(ViTConfig(**overrides))


@register_model(
    family="transformer",
    config=ViTConfig,
    paper=PAPER,
    defaults={"patch_size": 32},
    test_overrides=TEST_OVERRIDES,
    meta={"num_params": 88_224_232, "macs": 4.41e9, "source": "torchvision"},
)
def vit_b_32(**overrides) -> VisionTransformer:
    """ViT-B/32: the ViT-B encoder on 32×32 patches (49 tokens + class)."""
    return VisionTransformer(ViTConfig(**overrides))


_MINI = {"in_shape": (1, 28, 28), "num_classes": 10, "hidden_dim": 64, "num_layers": 4, "num_heads": 4, "mlp_dim": 128}


@register_model(
    family="transformer",
    config=ViTConfig,
    paper=PAPER,
    defaults={**_MINI, "patch_size": 7},
    meta={"num_params": 139_018, "macs": 2_427_008},
)
def vit_mini_p7(**overrides) -> VisionTransformer:
    """A small ViT for 28×28 images: 7×7 patches (16 + class tokens), D 64, 4 blocks, 4 heads."""
    return VisionTransformer(ViTConfig(**overrides))


@register_model(
    family="transformer",
    config=ViTConfig,
    paper=PAPER,
    defaults={**_MINI, "patch_size": 4},
    meta={"num_params": 139_018, "macs": 7_884_416},
)
def vit_mini_p4(**overrides) -> VisionTransformer:
    """A small ViT for 28×28 images: 4×4 patches (49 + class tokens), D 64, 4 blocks, 4 heads."""
    return VisionTransformer(ViTConfig(**overrides))
