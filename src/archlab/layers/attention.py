"""Attention: the RNN encoder–decoder scores (Bahdanau, Luong) and the Transformer's multi-head attention.

Part 1 — encoder–decoder attention over a padded sequence of encoder states (keys = values).
Two score families, both returning the context c = Σ_j α_j h_j and the weights α:

* :class:`AdditiveAttention` — Bahdanau, Cho & Bengio 2015 (arXiv:1409.0473, Eq. 6 and App. A.1.2):
  e_j = vᵀ tanh(W s + U h_j).
* :class:`MultiplicativeAttention` — Luong, Pham & Manning 2015 (arXiv:1508.04025, Eq. 8):
  "dot" e_j = sᵀ h_j, "general" e_j = sᵀ W_a h_j, "concat" e_j = vᵀ tanh(W_a [s; h_j]).

Padding: ``mask`` (B, S) is True at valid positions. Masked scores are set to −∞ before the softmax,
so a padded position gets weight exactly 0 and the weights of the valid positions sum to 1; a row
with no valid position at all gets all-zero weights and a zero context (never NaN).

Cost: the key-side half of every score (U h_j, W_a h_j) depends on the keys only, so a decoder
calls :meth:`prepare` once per source batch and passes the result as ``prepared=`` at every step:
each step is then O(S) (one (B, A) projection of the query plus the score of each position).

Letter legend: B batch, S key positions (source steps), T queries per row (decoder steps, optional),
Dq query features, Dk key/value features, A attention size (additive and concat scores).
Shapes: query (B, Dq) or (B, T, Dq), keys (B, S, Dk), mask (B, S) → context (B, Dk) or (B, T, Dk),
weights (B, S) or (B, T, S).

Part 2 — scaled dot-product and multi-head attention (Vaswani et al. 2017, arXiv:1706.03762, §3.2):

    Attention(Q, K, V) = softmax(QKᵀ / √d_k) V                                        (Eq. 1)
    MultiHead(Q, K, V) = Concat(head_1, …, head_h) W^O,
        head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)                                 (§3.2.2)

* :func:`scaled_dot_product_attention` has two paths, tested equal in values and gradients (1e-5,
  fp32) under every mask: ``impl="reference"`` writes Eq. 1 out (:func:`attention_weights` then
  α V); ``impl="fused"`` (default) calls ``torch.nn.functional.scaled_dot_product_attention``
  (flash / memory-efficient kernels; no (T, S) weight matrix is kept for the backward).
* Masks, all optional and combined by AND: ``is_causal`` (query i sees keys j ≤ i + S − T, i.e.
  aligned bottom-right, so T new queries over a KV cache of S − T earlier keys are causal too),
  ``key_padding_mask`` (B, S) True at valid keys (archlab's convention, as HF's attention_mask;
  torch.nn's key_padding_mask is the opposite), and ``attn_mask``: bool, True = may attend, or
  float, added to the scores (a relative position bias, Swin's −100 shift mask), broadcastable to
  (B, H, T, S). A query row with no key it may attend gets output 0 and gradient 0 on both paths
  (never NaN): the reference path zeroes its scores before the softmax and its weights after; the
  fused path lets it attend everything and zeroes the result.
* :class:`MultiHeadAttention` projects Q, K, V with one fused (D, 3D) matrix for self-attention
  (one matmul instead of three), or Q alone and a fused (D_kv, 2D) for K, V in cross-attention. It
  carries a :class:`KVCache` for incremental decoding. Attention weights are kept only on request
  (:func:`record_attention`), which switches the recorded modules to the reference path; otherwise
  the fused path runs and no (T, S) matrix is materialised.

Letter legend (part 2): B batch, H heads, T queries, S keys, D model width (d_model), d_h = D / H
(d_k = d_v of the paper), D_kv memory width for cross-attention, t tokens already in a KV cache.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Literal, NamedTuple, get_args

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from archlab.utils.errors import ConfigError, ShapeError

__all__ = [
    "AdditiveAttention",
    "MultiplicativeAttention",
    "LuongScore",
    "masked_softmax",
    "KVCache",
    "MultiHeadAttention",
    "attention_mask",
    "attention_weights",
    "causal_mask",
    "record_attention",
    "scaled_dot_product_attention",
]

LuongScore = Literal["dot", "general", "concat"]
LUONG_SCORES: tuple[str, ...] = get_args(LuongScore)


def masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    """softmax over the last dim of ``scores`` (B, [T,] S) restricted to ``mask`` (B, S) (True = valid).

        α_j = exp(e_j) / Σ_{k valid} exp(e_k) at valid j,   α_j = 0 at masked j

    A row with no valid position gets α = 0 everywhere (its scores are zeroed before the softmax
    and the result masked, so neither the value nor the gradient is NaN).
    """
    if mask is None:
        return scores.softmax(dim=-1)
    m = mask if scores.dim() == 2 else mask[:, None, :]  # (B, S) or (B, 1, S)
    scores = scores.masked_fill(~m, float("-inf"))
    scores = scores.masked_fill(~m.any(dim=-1, keepdim=True), 0.0)  # all-masked rows: no −∞ − (−∞)
    return scores.softmax(dim=-1).masked_fill(~m, 0.0)


class _Attention(nn.Module):
    """Shared forward: scores from :meth:`score` → masked softmax → weighted sum of the keys."""

    query_dim: int
    key_dim: int

    def prepare(self, keys: Tensor) -> Tensor:
        """The key-side part of every score, computed once per sequence: (B, S, Dk) → (B, S, ·)."""
        raise NotImplementedError

    def score(self, query: Tensor, prepared: Tensor) -> Tensor:
        """Scores e (B, [T,] S) of ``query`` (B, [T,] Dq) against the prepared keys."""
        raise NotImplementedError

    def forward(
        self, query: Tensor, keys: Tensor, mask: Tensor | None = None, prepared: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Returns (context (B, [T,] Dk), weights (B, [T,] S)); ``prepared`` = ``self.prepare(keys)``."""
        self._check(query, keys, mask)
        if prepared is None:
            prepared = self.prepare(keys)
        weights = masked_softmax(self.score(query, prepared), mask)  # (B, [T,] S)
        if query.dim() == 2:
            context = torch.bmm(weights[:, None, :], keys)[:, 0]  # (B, Dk)
        else:
            context = torch.bmm(weights, keys)  # (B, T, Dk)
        return context, weights

    def _check(self, query: Tensor, keys: Tensor, mask: Tensor | None) -> None:
        if keys.dim() != 3 or keys.shape[-1] != self.key_dim:
            raise ShapeError(f"keys: expected shape (B, S, {self.key_dim}), got {tuple(keys.shape)}")
        b, s = keys.shape[:2]
        if query.dim() not in (2, 3) or query.shape[0] != b or query.shape[-1] != self.query_dim:
            raise ShapeError(
                f"query: expected shape ({b}, {self.query_dim}) or ({b}, T, {self.query_dim}), got {tuple(query.shape)}"
            )
        if mask is not None and (mask.shape != (b, s) or mask.dtype != torch.bool):
            raise ShapeError(f"mask: expected a bool tensor of shape ({b}, {s}), got {mask.dtype} {tuple(mask.shape)}")

    def extra_repr(self) -> str:
        return f"query_dim={self.query_dim}, key_dim={self.key_dim}"


def _additive_score(query_proj: nn.Linear, v: nn.Linear, query: Tensor, prepared: Tensor) -> Tensor:
    """vᵀ tanh(W q + prepared_j) for query (B, [T,] Dq), prepared = U h (B, S, A) → (B, [T,] S)."""
    wq = query_proj(query)  # (B, [T,] A)
    if query.dim() == 2:
        return v(torch.tanh(wq[:, None, :] + prepared))[..., 0]  # (B, S, A) → (B, S)
    return v(torch.tanh(wq[:, :, None, :] + prepared[:, None, :, :]))[..., 0]  # (B, T, S, A) → (B, T, S)


class AdditiveAttention(_Attention):
    """Additive ("concat") attention of Bahdanau, Cho & Bengio 2015 (arXiv:1409.0473, Eq. 5–6).

        e_j = vᵀ tanh(W s + U h_j)            alignment score of query s and annotation h_j
        α_j = exp(e_j) / Σ_k exp(e_k)         over the valid positions
        c   = Σ_j α_j h_j                     context vector

    W (A, Dq), U (A, Dk) and v (A,) carry no bias, as in the paper. ``prepare(keys)`` returns
    U h_j (B, S, A), the part of the score that does not depend on the query.

    Args:
        query_dim: Dq (the decoder state s). key_dim: Dk (the annotations h_j).
        attn_dim: A, the hidden size of the scoring network (default Dq).
    Shapes: see the module docstring.
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int | None = None):
        super().__init__()
        a = attn_dim or query_dim
        self.query_dim, self.key_dim, self.attn_dim = query_dim, key_dim, a
        self.query_proj = nn.Linear(query_dim, a, bias=False)  # W
        self.key_proj = nn.Linear(key_dim, a, bias=False)  # U
        self.v = nn.Linear(a, 1, bias=False)  # v

    def prepare(self, keys: Tensor) -> Tensor:
        return self.key_proj(keys)  # U h_j: (B, S, A)

    def score(self, query: Tensor, prepared: Tensor) -> Tensor:
        return _additive_score(self.query_proj, self.v, query, prepared)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, attn_dim={self.attn_dim}"


class MultiplicativeAttention(_Attention):
    """Global attention of Luong, Pham & Manning 2015 (arXiv:1508.04025, Eq. 7–8), three scores:

        dot:      e_j = sᵀ h_j                        (needs Dq = Dk; no parameters)
        general:  e_j = sᵀ W_a h_j                    W_a (Dq, Dk)
        concat:   e_j = vᵀ tanh(W_a [s; h_j])         W_a = [W_s, W_h] (A, Dq + Dk), v (A,)
        α_j = exp(e_j) / Σ_k exp(e_k) over the valid positions,   c = Σ_j α_j h_j

    No biases, as in the paper. ``prepare(keys)`` returns the key-side factor once per sequence:
    h_j itself (dot), W_a h_j (B, S, Dq) (general), or W_h h_j (B, S, A) (concat).

    Args:
        query_dim: Dq (the decoder's top state h_t). key_dim: Dk (the encoder states h̄_s).
        score: "dot", "general" or "concat".
        attn_dim: A for the concat score (default Dq).
    Shapes: see the module docstring.
    """

    def __init__(self, query_dim: int, key_dim: int, score: LuongScore = "general", attn_dim: int | None = None):
        super().__init__()
        if score not in LUONG_SCORES:
            raise ValueError(f"score must be one of {', '.join(LUONG_SCORES)}; got {score!r}")
        if score == "dot" and query_dim != key_dim:
            raise ValueError(f"the dot score needs query_dim == key_dim; got {query_dim} and {key_dim}")
        self.query_dim, self.key_dim, self.kind = query_dim, key_dim, score
        self.attn_dim = (attn_dim or query_dim) if score == "concat" else 0
        if score == "general":
            self.key_proj = nn.Linear(key_dim, query_dim, bias=False)  # W_a
        elif score == "concat":
            self.query_proj = nn.Linear(query_dim, self.attn_dim, bias=False)  # W_s, the query half of W_a
            self.key_proj = nn.Linear(key_dim, self.attn_dim, bias=False)  # W_h, the key half of W_a
            self.v = nn.Linear(self.attn_dim, 1, bias=False)  # v_a

    def prepare(self, keys: Tensor) -> Tensor:
        return keys if self.kind == "dot" else self.key_proj(keys)

    def score(self, query: Tensor, prepared: Tensor) -> Tensor:
        if self.kind == "concat":
            return _additive_score(self.query_proj, self.v, query, prepared)
        if query.dim() == 2:
            return torch.bmm(prepared, query[:, :, None])[..., 0]  # (B, S, Dq) @ (B, Dq, 1) → (B, S)
        return torch.bmm(query, prepared.transpose(1, 2))  # (B, T, Dq) @ (B, Dq, S) → (B, T, S)

    def extra_repr(self) -> str:
        extra = f", attn_dim={self.attn_dim}" if self.kind == "concat" else ""
        return f"{super().extra_repr()}, score={self.kind!r}{extra}"


# -- part 2: scaled dot-product and multi-head attention (Vaswani et al. 2017) ------------------------
SDPAImpl = Literal["fused", "reference"]


def causal_mask(t: int, s: int, device: torch.device | str | None = None) -> Tensor:
    """(T, S) bool, True where query i may see key j: j ≤ i + S − T (bottom-right aligned, so the last
    query sees every key; T = S is the usual lower triangle)."""
    i = torch.arange(t, device=device)[:, None]
    j = torch.arange(s, device=device)[None, :]
    return j <= i + (s - t)


def attention_mask(
    t: int,
    s: int,
    attn_mask: Tensor | None = None,
    key_padding_mask: Tensor | None = None,
    is_causal: bool = False,
    device: torch.device | str | None = None,
) -> Tensor | None:
    """The bool masks combined by AND, broadcastable to (B, H, T, S), True = may attend; None if none.

    ``key_padding_mask`` (B, S) bool, True at valid keys; ``attn_mask`` bool broadcastable to
    (B, H, T, S) (a float ``attn_mask`` is a score bias, not a mask, and is ignored here).
    """
    mask = causal_mask(t, s, device) if is_causal else None
    if key_padding_mask is not None:
        if key_padding_mask.dtype != torch.bool or key_padding_mask.dim() != 2 or key_padding_mask.shape[1] != s:
            raise ShapeError(
                f"key_padding_mask: expected a bool tensor of shape (B, {s}) (True at valid keys), "
                f"got {key_padding_mask.dtype} {tuple(key_padding_mask.shape)}"
            )
        kp = key_padding_mask[:, None, None, :]  # (B, 1, 1, S)
        mask = kp if mask is None else mask & kp
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        mask = attn_mask if mask is None else mask & attn_mask
    return mask


def _check_qkv(q: Tensor, k: Tensor, v: Tensor) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ShapeError(
            f"q, k, v: expected (B, H, T, d_h), (B, H, S, d_h), (B, H, S, d_v); "
            f"got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if k.shape[-1] != q.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ShapeError(
            f"q, k, v: q and k need the same d_h and k and v the same S; "
            f"got {tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )


def attention_weights(
    q: Tensor,
    k: Tensor,
    attn_mask: Tensor | None = None,
    key_padding_mask: Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
) -> Tensor:
    """α = softmax(QKᵀ / √d_k + bias) over the keys each query may attend (Vaswani et al. 2017, Eq. 1).

    Masked keys get α = 0 exactly; a row with no key it may attend gets α = 0 everywhere (its scores
    are zeroed before the softmax, so neither the value nor the gradient is NaN).
    Shapes: q (B, H, T, d_h), k (B, H, S, d_h) → α (B, H, T, S). Masks: see the module docstring.
    """
    t, s = q.shape[-2], k.shape[-2]
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale  # QKᵀ/√d_k: (B, H, T, S)
    if attn_mask is not None and attn_mask.dtype != torch.bool:
        scores = scores + attn_mask  # additive bias (relative positions, shift mask)
    mask = attention_mask(t, s, attn_mask, key_padding_mask, is_causal, q.device)
    if mask is None:
        return scores.softmax(dim=-1)
    scores = scores.masked_fill(~mask, float("-inf"))
    scores = scores.masked_fill(~mask.any(dim=-1, keepdim=True), 0.0)  # rows with no key: no −∞ − (−∞)
    return scores.softmax(dim=-1).masked_fill(~mask, 0.0)


def scaled_dot_product_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    attn_mask: Tensor | None = None,
    key_padding_mask: Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
    scale: float | None = None,
    impl: SDPAImpl = "fused",
) -> Tensor:
    """softmax(QKᵀ / √d_k) V (Vaswani et al. 2017, arXiv:1706.03762, Eq. 1), with masks and dropout on α.

    ``impl="reference"``: :func:`attention_weights`, dropout, then α V, written out.
    ``impl="fused"``: ``torch.nn.functional.scaled_dot_product_attention``; a row with no valid key
    attends every key in the kernel and is zeroed afterwards, so both paths give 0 there (value and
    gradient). ``dropout_p`` applies as given (pass 0 in eval); the two paths draw different dropout
    masks, so they agree only at ``dropout_p=0``.

    Shapes: q (B, H, T, d_h), k (B, H, S, d_h), v (B, H, S, d_v) → (B, H, T, d_v); masks as in the
    module docstring. Raises ShapeError for q, k, v or masks of the wrong shape.
    """
    _check_qkv(q, k, v)
    if impl == "reference":
        w = attention_weights(q, k, attn_mask, key_padding_mask, is_causal, scale)
        if dropout_p > 0:
            w = F.dropout(w, dropout_p)
        return torch.matmul(w, v)  # α V: (B, H, T, d_v)
    if impl != "fused":
        raise ValueError(f"impl must be 'fused' or 'reference', got {impl!r}")
    t, s = q.shape[-2], k.shape[-2]
    bias = attn_mask if attn_mask is not None and attn_mask.dtype != torch.bool else None
    if is_causal and t == s and bias is None and key_padding_mask is None and attn_mask is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True, scale=scale)
    mask = attention_mask(t, s, attn_mask, key_padding_mask, is_causal and t > 1, q.device)
    dead = None
    if mask is not None and (key_padding_mask is not None or (attn_mask is not None and bias is None) or t > s):
        dead = ~mask.any(dim=-1, keepdim=True)  # rows with no key they may attend: (B|1, H|1, T, 1)
        mask = mask | dead
    if mask is not None and bias is not None:
        bias = torch.where(mask, bias, float("-inf"))
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=bias if bias is not None else mask, dropout_p=dropout_p, scale=scale
    )
    return out if dead is None else out.masked_fill(dead, 0.0)


class KVCache(NamedTuple):
    """The keys and values of every token so far in one attention layer, for incremental decoding.

    Shapes: k (B, H, t, d_h), v (B, H, t, d_h) — batch first, so :func:`layers.decoding.select_rows`
    reorders it for beam search. For cross-attention the cache holds the projected memory (S keys).
    """

    k: Tensor
    v: Tensor


class MultiHeadAttention(nn.Module):
    """Multi-head attention of Vaswani et al. 2017 (arXiv:1706.03762, §3.2.2), with a KV cache.

        [Q K V] = x W^{QKV} + b   (self-attention: one fused (D, 3D) projection)
        Q = x W^Q + b,  [K V] = m W^{KV} + b   (cross-attention over a memory m: ``cross=True``)
        head_i = Attention(Q_i, K_i, V_i)   (Eq. 1 on the i-th d_h-wide slice, :func:`scaled_dot_product_attention`)
        y = Concat(head_1, …, head_H) W^O + b

    Optional rotary positions (``rope``, Su et al. 2021) rotate Q and K of self-attention at their
    absolute positions (t + i with a cache of t tokens).

    Args:
        d_model: D. num_heads: H (D must be divisible by H; ConfigError otherwise).
        dropout: attention dropout on α (in training only).
        bias: biases on the projections (all four, as every model here uses).
        cross: cross-attention (separate Q and fused KV projections) instead of self-attention.
        kv_dim: D_kv, the memory's width for cross-attention (default D).
        rope: a :class:`~archlab.layers.positional.RotaryEmbedding` of width d_h, or None.
    Shapes: x (B, T, D), memory (B, S, D_kv) → (B, T, D). ``key_padding_mask`` (B, S_total) covers
    every key (cached ones included). Returns (y, cache): cache is the new :class:`KVCache` when
    ``use_cache`` (self-attention: past + new keys; cross-attention: the memory's), else None.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        cross: bool = False,
        kv_dim: int | None = None,
        rope: nn.Module | None = None,
    ):
        super().__init__()
        if num_heads < 1 or d_model % num_heads:
            raise ConfigError(
                f"model width d_model={d_model} is not divisible by num_heads={num_heads}: "
                f"choose a head count that divides it (d_h = d_model / num_heads)"
            )
        self.d_model, self.num_heads, self.head_dim = d_model, num_heads, d_model // num_heads
        self.dropout, self.cross = dropout, cross
        if cross:
            self.q_proj = nn.Linear(d_model, d_model, bias=bias)  # W^Q
            self.kv_proj = nn.Linear(kv_dim or d_model, 2 * d_model, bias=bias)  # [W^K W^V]
        else:
            self.qkv_proj = nn.Linear(d_model, 3 * d_model, bias=bias)  # [W^Q W^K W^V]
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)  # W^O
        self.rope = rope
        self.record: list[Tensor] | None = None  # set by record_attention: α of each call is appended

    def _heads(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, d_h)

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        past: KVCache | None = None,
        use_cache: bool = False,
    ) -> tuple[Tensor, KVCache | None]:
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ShapeError(f"x: expected shape (B, T, {self.d_model}), got {tuple(x.shape)}")
        b, t, d = x.shape
        if self.cross:
            q = self._heads(self.q_proj(x))  # (B, H, T, d_h)
            if past is not None:  # the memory's K, V were projected at the first step
                k, v = past
            else:
                if memory is None:
                    raise ShapeError("cross-attention needs memory (B, S, D_kv) or a cached past")
                k, v = (self._heads(z) for z in self.kv_proj(memory).split(d, dim=-1))  # (B, H, S, d_h) each
        else:
            q, k, v = (self._heads(z) for z in self.qkv_proj(x).split(d, dim=-1))  # (B, H, T, d_h) each
            offset = 0 if past is None else past.k.shape[2]
            if self.rope is not None:
                q, k = self.rope(q, offset), self.rope(k, offset)
            if past is not None:
                k = torch.cat([past.k, k], dim=2)  # (B, H, t + T, d_h)
                v = torch.cat([past.v, v], dim=2)
        cache = KVCache(k, v) if use_cache else None
        p = self.dropout if self.training else 0.0
        if self.record is not None:  # weights requested: the reference path, α kept
            w = attention_weights(q, k, attn_mask, key_padding_mask, is_causal)  # (B, H, T, S)
            self.record.append(w.detach())
            y = torch.matmul(F.dropout(w, p) if p > 0 else w, v)  # (B, H, T, d_h)
        else:
            _check_qkv(q, k, v)
            y = scaled_dot_product_attention(q, k, v, attn_mask, key_padding_mask, is_causal, p)
        y = y.transpose(1, 2).reshape(b, t, d)  # Concat(head_1 … head_H): (B, T, D)
        return self.out_proj(y), cache

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, num_heads={self.num_heads}, cross={self.cross}, dropout={self.dropout}"


@contextlib.contextmanager
def record_attention(module: nn.Module) -> Iterator[dict[str, list[Tensor]]]:
    """Record α of every :class:`MultiHeadAttention` inside ``module`` while the context is open.

    Yields {qualified module name: [α (B, H, T, S) of each forward call, in order]} (detached). The
    recorded modules run the reference path for the duration (same outputs, tested), so the default
    fused path never pays for weights nobody reads::

        with record_attention(gpt) as maps:
            gpt(ids)
        maps["blocks.3.attn"][0][:, 5]   # layer 3, head 5: (B, T, T)
    """
    maps: dict[str, list[Tensor]] = {}
    mods = [(name, m) for name, m in module.named_modules() if isinstance(m, MultiHeadAttention)]
    for name, m in mods:
        m.record = maps.setdefault(name, [])
    try:
        yield maps
    finally:
        for _, m in mods:
            m.record = None
