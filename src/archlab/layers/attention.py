"""Encoder–decoder attention over a padded sequence of encoder states (keys = values).

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
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor, nn

from archlab.utils.errors import ShapeError

__all__ = ["AdditiveAttention", "MultiplicativeAttention", "LuongScore", "masked_softmax"]

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
