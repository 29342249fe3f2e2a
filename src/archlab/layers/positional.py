"""Positional information for attention, which is otherwise blind to order: three ways.

* :class:`SinusoidalPositionalEncoding` — Vaswani et al. 2017 (arXiv:1706.03762, §3.5), fixed:
      PE(pos, 2i) = sin(pos / 10000^{2i/D}),   PE(pos, 2i+1) = cos(pos / 10000^{2i/D})
  added to the token embeddings (the encoder–decoder scales those by √D first, §3.4).
* :class:`LearnedPositionalEmbedding` — one trained vector per position, added to the embeddings
  (GPT: Radford et al. 2018 §4.1; BERT: Devlin et al. 2019 §3; ViT: Dosovitskiy et al. 2021 Eq. 1).
* :class:`RotaryEmbedding` — RoFormer, Su et al. 2021 (arXiv:2104.09864, Eq. 34): rotate each pair
  (x_{2i}, x_{2i+1}) of a query or key at position m by the angle m·θ_i, θ_i = 10000^{−2i/d}:
      f(x, m)_{2i}   = x_{2i} cos mθ_i − x_{2i+1} sin mθ_i
      f(x, m)_{2i+1} = x_{2i+1} cos mθ_i + x_{2i} sin mθ_i
  so ⟨f(q, m), f(k, n)⟩ depends on q, k and m − n only (relative positions, Eq. 16); applied inside
  :class:`~archlab.layers.attention.MultiHeadAttention` to Q and K, not to the embeddings.

The additive encodings return the (T, D) block for positions offset … offset + T − 1 (``offset`` = the
tokens already in a KV cache) and raise :class:`ShapeError` past ``max_len``: a learned table has
no vector there, and the models that use these crop or refuse longer contexts themselves.

Letter legend: T positions, D model width, d rotated width (a head's d_h), m, n positions.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from archlab.utils.errors import ShapeError

__all__ = ["LearnedPositionalEmbedding", "RotaryEmbedding", "SinusoidalPositionalEncoding", "sinusoidal_table"]


def _check_range(offset: int, t: int, max_len: int) -> None:
    if offset < 0 or offset + t > max_len:
        raise ShapeError(
            f"positions {offset}…{offset + t - 1} exceed the {max_len} positions of the model's context: "
            f"use a sequence of at most {max_len} tokens (or a model with a longer context)"
        )


def sinusoidal_table(max_len: int, d_model: int) -> Tensor:
    """PE (max_len, D) of §3.5: PE(pos, 2i) = sin(pos·ω_i), PE(pos, 2i+1) = cos(pos·ω_i), ω_i = 10000^{−2i/D}.
    An odd D drops the last cosine column."""
    pos = torch.arange(max_len, dtype=torch.float64)[:, None]  # (T, 1)
    omega = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (⌈D/2⌉,)
    pe = torch.zeros(max_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * omega)
    pe[:, 1::2] = torch.cos(pos * omega)[:, : d_model // 2]
    return pe.float()


class SinusoidalPositionalEncoding(nn.Module):
    """The fixed encodings of Vaswani et al. 2017 §3.5 (no parameters; a non-persistent buffer).

    Shapes: ``forward(t, offset=0)`` → (T, D), the encodings of positions offset … offset + T − 1.
    Raises ShapeError past ``max_len``.
    """

    def __init__(self, d_model: int, max_len: int = 5000):
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        self.register_buffer("pe", sinusoidal_table(max_len, d_model), persistent=False)

    def forward(self, t: int, offset: int = 0) -> Tensor:
        _check_range(offset, t, self.max_len)
        return self.pe[offset : offset + t]

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}"


class LearnedPositionalEmbedding(nn.Module):
    """One trained vector per position (GPT's ``wpe``, BERT's position embeddings), N(0, 0.02²) init.

    Shapes: weight (max_len, D); ``forward(t, offset=0)`` → (T, D). Raises ShapeError past ``max_len``.
    """

    def __init__(self, max_len: int, d_model: int, init_std: float = 0.02):
        super().__init__()
        self.max_len, self.d_model = max_len, d_model
        self.weight = nn.Parameter(torch.empty(max_len, d_model))
        nn.init.normal_(self.weight, std=init_std)

    def forward(self, t: int, offset: int = 0) -> Tensor:
        _check_range(offset, t, self.max_len)
        pos = torch.arange(offset, offset + t, device=self.weight.device)  # (T,)
        return F.embedding(pos, self.weight)  # rows offset … offset + T − 1: (T, D)

    def extra_repr(self) -> str:
        return f"max_len={self.max_len}, d_model={self.d_model}"


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoFormer, Su et al. 2021, arXiv:2104.09864, Eq. 34), interleaved pairs.

    ``forward(x, offset)`` rotates x (B, H, T, d) at positions offset … offset + T − 1; d must be
    even. The cos/sin tables (max_len, d/2) are non-persistent buffers, extended on demand.
    """

    def __init__(self, dim: int, base: float = 10000.0, max_len: int = 2048):
        super().__init__()
        if dim % 2:
            raise ValueError(f"rotary embedding needs an even width, got {dim}")
        self.dim, self.base = dim, base
        self.register_buffer("theta", base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim), persistent=False)
        self._build(max_len)

    def _build(self, max_len: int) -> None:
        angle = torch.arange(max_len, dtype=torch.float64)[:, None] * self.theta.double().cpu()[None, :]  # mθ_i
        device = self.theta.device
        self.register_buffer("cos", angle.cos().float().to(device), persistent=False)  # (T, d/2)
        self.register_buffer("sin", angle.sin().float().to(device), persistent=False)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        t = x.shape[-2]
        if x.shape[-1] != self.dim:
            raise ShapeError(f"rotary input: expected last dimension {self.dim}, got {tuple(x.shape)}")
        if offset + t > self.cos.shape[0]:
            self._build(max(offset + t, 2 * self.cos.shape[0]))
        cos = self.cos[offset : offset + t].to(x.dtype)  # (T, d/2)
        sin = self.sin[offset : offset + t].to(x.dtype)
        x1, x2 = x[..., 0::2], x[..., 1::2]  # x_{2i}, x_{2i+1}: (B, H, T, d/2)
        out = torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)  # (B, H, T, d/2, 2)
        return out.flatten(-2)  # interleave back: (B, H, T, d)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, base={self.base}"
