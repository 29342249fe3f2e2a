"""Transformer blocks (Vaswani et al. 2017, arXiv:1706.03762, §3.1–3.3): one block for every family.

How the families use it (:class:`TransformerBlock` options; :class:`TransformerStack` = N blocks and an
optional final LayerNorm):

    family            norm_first  activation   cross_attention  is_causal  final_norm   LN ε
    encoder–decoder   False       "relu"       decoder: True    decoder    True (torch) 1e-5
    BERT              False       "gelu"       False            False      False        1e-12
    GPT-2             True        "gelu_tanh"  False            True       True (ln_f)  1e-5
    ViT               True        "gelu"       False            False      True         1e-6

* Post-LN (the paper, BERT): each sub-layer is LayerNorm(x + Dropout(Sublayer(x)))  (§3.1, §5.4).
* Pre-LN (GPT-2 §2.3, ViT Eq. 2–3; Xiong et al. 2020, arXiv:2002.04745): x + Dropout(Sublayer(LN(x))),
  and the stack ends in a LayerNorm (``final_norm``).
* The sub-layers, in order: masked self-attention; cross-attention over the encoder's memory
  (decoder only); the position-wise feed-forward network FFN(x) = act(x W_1 + b_1) W_2 + b_2 (Eq. 2).
* Dropout where the papers put it: residual dropout on each sub-layer's output before the residual
  sum (§5.4, ``dropout``), attention dropout on α (``attention_dropout``, tensor2tensor / GPT-2 /
  BERT), and optional dropout on the FFN's hidden activation (``activation_dropout``, torch.nn's
  encoder layer puts ``dropout`` there too). Embedding dropout belongs to the models.
* Incremental decoding: ``forward(..., past=…, use_cache=True)`` returns a :class:`BlockCache` per
  block (self-attention K, V of every token so far; cross-attention K, V of the memory, projected
  once); the stack returns a list of them (batch first: :func:`layers.decoding.select_rows` reorders it).

Parameter names follow the sub-layers: ``self_attn`` / ``self_attn_norm``, ``cross_attn`` /
``cross_attn_norm``, ``ffn`` (``linear1``, ``linear2``) / ``ffn_norm``.

Letter legend: B batch, T target (query) positions, S memory positions, D d_model, F d_ff.
Shapes: x (B, T, D), memory (B, S, D) → (B, T, D).
"""

from __future__ import annotations

from typing import Literal, NamedTuple, get_args

from torch import Tensor, nn

from archlab.layers.attention import KVCache, MultiHeadAttention

__all__ = ["BlockCache", "FeedForward", "FFNActivation", "TransformerBlock", "TransformerStack", "cache_length"]

FFNActivation = Literal["relu", "gelu", "gelu_tanh"]
FFN_ACTIVATIONS: tuple[str, ...] = get_args(FFNActivation)


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()  # max(0, x): the paper's FFN (Eq. 2)
    if name == "gelu":
        return nn.GELU()  # x Φ(x) (Hendrycks & Gimpel 2016): BERT, ViT
    if name == "gelu_tanh":
        return nn.GELU(approximate="tanh")  # 0.5x(1 + tanh(√(2/π)(x + 0.044715x³))): GPT-2
    raise ValueError(f"activation must be one of {', '.join(FFN_ACTIVATIONS)}; got {name!r}")


class FeedForward(nn.Module):
    """Position-wise feed-forward network, FFN(x) = act(x W_1 + b_1) W_2 + b_2 (Vaswani et al. 2017, Eq. 2).

    Args: d_model D, d_ff F (the paper: 2048 for D = 512), activation "relu" | "gelu" | "gelu_tanh",
    activation_dropout on the hidden (F-wide) activation (0 in the papers).
    Shapes: (B, T, D) → (B, T, D).
    """

    def __init__(
        self,
        d_model: int,
        d_ff: int,
        activation: FFNActivation = "relu",
        activation_dropout: float = 0.0,
        bias: bool = True,
    ):
        super().__init__()
        self.linear1 = nn.Linear(d_model, d_ff, bias=bias)  # W_1: (D → F)
        self.act = _activation(activation)
        self.dropout = nn.Dropout(activation_dropout)
        self.linear2 = nn.Linear(d_ff, d_model, bias=bias)  # W_2: (F → D)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(self.act(self.linear1(x))))


class BlockCache(NamedTuple):
    """One block's decoding state: its self-attention K, V so far and (decoder) the memory's K, V."""

    self_attn: KVCache
    cross_attn: KVCache | None


class TransformerBlock(nn.Module):
    """A Transformer layer: self-attention, optional cross-attention, FFN — each wrapped post- or pre-LN.

        post-LN:  x ← LN(x + Dropout(Sublayer(x)))          (Vaswani et al. 2017 §3.1, §5.4; BERT)
        pre-LN:   x ← x + Dropout(Sublayer(LN(x)))          (GPT-2 §2.3; ViT Eq. 2–3)

    Args:
        d_model: D. num_heads: H (D divisible by H, else ConfigError). d_ff: F.
        norm_first: pre-LN (True) or post-LN (False).
        activation: the FFN's nonlinearity: "relu" | "gelu" | "gelu_tanh".
        dropout: residual dropout on each sub-layer's output. attention_dropout: dropout on α
            (default ``dropout``). activation_dropout: on the FFN's hidden layer (default 0).
        cross_attention: add the decoder's attention over an encoder memory (width ``memory_dim``,
            default D) between self-attention and the FFN.
        layer_norm_eps: LayerNorm ε (1e-5 torch and GPT-2, 1e-12 BERT, 1e-6 ViT).
        bias: biases on every projection. rope: a RotaryEmbedding of width D/H for self-attention.
    Shapes: x (B, T, D), memory (B, S, D) → (B, T, D). Returns (x, cache): the block's
    :class:`BlockCache` when ``use_cache``, else None. ``key_padding_mask`` (B, T_total) and
    ``memory_key_padding_mask`` (B, S) are True at valid positions.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        d_ff: int,
        *,
        norm_first: bool = False,
        activation: FFNActivation = "relu",
        dropout: float = 0.1,
        attention_dropout: float | None = None,
        activation_dropout: float = 0.0,
        cross_attention: bool = False,
        memory_dim: int | None = None,
        layer_norm_eps: float = 1e-5,
        bias: bool = True,
        rope: nn.Module | None = None,
    ):
        super().__init__()
        p_attn = dropout if attention_dropout is None else attention_dropout
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, num_heads, p_attn, bias=bias, rope=rope)
        self.self_attn_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.cross_attn: MultiHeadAttention | None = None
        if cross_attention:
            self.cross_attn = MultiHeadAttention(d_model, num_heads, p_attn, bias=bias, cross=True, kv_dim=memory_dim)
            self.cross_attn_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.ffn = FeedForward(d_model, d_ff, activation, activation_dropout, bias=bias)
        self.ffn_norm = nn.LayerNorm(d_model, eps=layer_norm_eps)
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        memory_key_padding_mask: Tensor | None = None,
        past: BlockCache | None = None,
        use_cache: bool = False,
    ) -> tuple[Tensor, BlockCache | None]:
        pre = self.norm_first
        # sub-layer 1: (masked) self-attention
        h = self.self_attn_norm(x) if pre else x
        a, self_cache = self.self_attn(
            h,
            key_padding_mask=key_padding_mask,
            attn_mask=attn_mask,
            is_causal=is_causal,
            past=None if past is None else past.self_attn,
            use_cache=use_cache,
        )
        x = x + self.dropout(a) if pre else self.self_attn_norm(x + self.dropout(a))
        # sub-layer 2 (decoder): attention over the encoder's memory
        cross_cache = None
        if self.cross_attn is not None:
            h = self.cross_attn_norm(x) if pre else x
            a, cross_cache = self.cross_attn(
                h,
                memory,
                key_padding_mask=memory_key_padding_mask,
                past=None if past is None else past.cross_attn,
                use_cache=use_cache,
            )
            x = x + self.dropout(a) if pre else self.cross_attn_norm(x + self.dropout(a))
        # sub-layer 3: position-wise FFN (Eq. 2)
        if pre:
            x = x + self.dropout(self.ffn(self.ffn_norm(x)))
        else:
            x = self.ffn_norm(x + self.dropout(self.ffn(x)))
        return x, (BlockCache(self_cache, cross_cache) if use_cache else None)


class TransformerStack(nn.Module):
    """N identical :class:`TransformerBlock` s and an optional final LayerNorm (pre-LN stacks need it).

    Args: num_layers N, final_norm (a LayerNorm of width D after the last block), and every
    :class:`TransformerBlock` argument (``d_model``, ``num_heads``, ``d_ff``, ``norm_first`` …).
    Shapes: x (B, T, D), memory (B, S, D) → (B, T, D). Returns (x, caches): a list of N
    :class:`BlockCache` when ``use_cache``, else None; ``past`` is such a list.
    """

    def __init__(self, num_layers: int, *, final_norm: bool = False, **block_args):
        super().__init__()
        self.layers = nn.ModuleList(TransformerBlock(**block_args) for _ in range(num_layers))
        eps = block_args.get("layer_norm_eps", 1e-5)
        self.norm = nn.LayerNorm(block_args["d_model"], eps=eps) if final_norm else None

    def forward(
        self,
        x: Tensor,
        memory: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        is_causal: bool = False,
        memory_key_padding_mask: Tensor | None = None,
        past: list[BlockCache] | None = None,
        use_cache: bool = False,
    ) -> tuple[Tensor, list[BlockCache] | None]:
        caches: list[BlockCache] = []
        for i, layer in enumerate(self.layers):
            x, cache = layer(
                x,
                memory,
                key_padding_mask=key_padding_mask,
                attn_mask=attn_mask,
                is_causal=is_causal,
                memory_key_padding_mask=memory_key_padding_mask,
                past=None if past is None else past[i],
                use_cache=use_cache,
            )
            if use_cache:
                caches.append(cache)
        if self.norm is not None:
            x = self.norm(x)
        return x, (caches if use_cache else None)


def cache_length(past: list[BlockCache] | None) -> int:
    """Tokens already in a stack's cache (0 for None)."""
    return 0 if not past else int(past[0].self_attn.k.shape[2])
