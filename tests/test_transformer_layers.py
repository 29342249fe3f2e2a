"""Transformer layers: scaled dot-product / multi-head attention, positional encodings, blocks.

The oracles: Eq. 1 written out in float64 by hand; the fused (torch SDPA) path against the reference
path in values and gradients under every mask; torch.nn's MultiheadAttention and Transformer
encoder/decoder layers with our weights copied in; incremental decoding through the KV cache against
the whole sequence at once; RoPE's relative-position property.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from archlab.layers.attention import (
    MultiHeadAttention,
    attention_weights,
    causal_mask,
    record_attention,
    scaled_dot_product_attention,
)
from archlab.layers.positional import (
    LearnedPositionalEmbedding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    sinusoidal_table,
)
from archlab.layers.transformer import TransformerBlock, TransformerStack, cache_length
from archlab.utils.errors import ConfigError, ShapeError

B, H, T, S, DH = 3, 2, 5, 7, 4


def qkv(t=T, s=S, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, n, DH, generator=g, dtype=dtype) for n in (t, s, s))


def padding(s=S, dead_row=True) -> torch.Tensor:
    """(B, S) True at valid keys: a full row, a short row, and (optionally) a row with no valid key."""
    lengths = torch.tensor([s, 3, 0 if dead_row else 1])
    return torch.arange(s)[None, :] < lengths[:, None]


def naive(q, k, v, allowed):
    """Eq. 1 by hand, row by row, in float64: softmax over the allowed keys; a row with none → 0."""
    q, k, v = q.double(), k.double(), v.double()
    out = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=torch.float64)
    for b in range(q.shape[0]):
        for h in range(q.shape[1]):
            for i in range(q.shape[2]):
                idx = [j for j in range(k.shape[2]) if allowed(b, h, i, j)]
                if not idx:
                    continue
                e = torch.stack([q[b, h, i] @ k[b, h, j] / math.sqrt(q.shape[-1]) for j in idx])
                a = torch.exp(e - e.max()) / torch.exp(e - e.max()).sum()
                out[b, h, i] = sum(a[n] * v[b, h, j] for n, j in enumerate(idx))
    return out


CASES = {  # name: (T, S, kwargs builder, allowed(b, h, i, j) with the kwargs)
    "none": (T, S, lambda: {}, lambda kw: lambda b, h, i, j: True),
    "causal": (S, S, lambda: {"is_causal": True}, lambda kw: lambda b, h, i, j: j <= i),
    "causal-cache": (2, S, lambda: {"is_causal": True}, lambda kw: lambda b, h, i, j: j <= i + S - 2),
    "padding-cross": (
        T,
        S,
        lambda: {"key_padding_mask": padding()},
        lambda kw: lambda b, h, i, j: bool(kw["key_padding_mask"][b, j]),
    ),
    "causal+padding": (
        S,
        S,
        lambda: {"is_causal": True, "key_padding_mask": padding()},
        lambda kw: lambda b, h, i, j: j <= i and bool(kw["key_padding_mask"][b, j]),
    ),
    "bool-mask+padding": (
        T,
        S,
        lambda: {
            "attn_mask": torch.rand(1, H, T, S, generator=torch.Generator().manual_seed(3)) > 0.4,
            "key_padding_mask": padding(dead_row=False),
        },
        lambda kw: lambda b, h, i, j: bool(kw["attn_mask"][0, h, i, j]) and bool(kw["key_padding_mask"][b, j]),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_sdpa_paths_equal_eq1_and_each_other(case):
    t, s, make_kw, allowed = CASES[case]
    kw = make_kw()
    q, k, v = qkv(t, s)
    expected = naive(q, k, v, allowed(kw))
    outs, grads = [], []
    for impl in ("reference", "fused"):
        qi, ki, vi = (z.clone().requires_grad_(True) for z in (q, k, v))
        out = scaled_dot_product_attention(qi, ki, vi, impl=impl, **kw)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        assert torch.isfinite(out).all() and all(torch.isfinite(z.grad).all() for z in (qi, ki, vi))
        torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
        outs.append(out)
        grads.append([z.grad for z in (qi, ki, vi)])
    torch.testing.assert_close(outs[0], outs[1], atol=1e-5, rtol=1e-5)
    for g_ref, g_fused in zip(*grads):
        torch.testing.assert_close(g_ref, g_fused, atol=1e-5, rtol=1e-5)


def test_fully_masked_row_is_zero_with_zero_gradient_on_both_paths():
    q, k, v = qkv()
    kp = padding()  # row 2 has no valid key
    for impl in ("reference", "fused"):
        qi, ki, vi = (z.clone().requires_grad_(True) for z in (q, k, v))
        out = scaled_dot_product_attention(qi, ki, vi, key_padding_mask=kp, impl=impl)
        out.sum().backward()
        assert torch.equal(out[2], torch.zeros_like(out[2]))
        assert torch.equal(qi.grad[2], torch.zeros_like(qi.grad[2]))
        assert torch.isfinite(ki.grad).all() and torch.isfinite(vi.grad).all()
        assert torch.equal(vi.grad[1, :, 3:], torch.zeros_like(vi.grad[1, :, 3:]))  # padded keys: no gradient


def test_float_bias_and_bool_mask_combine_on_both_paths():
    q, k, v = qkv()
    bias = torch.randn(1, H, T, S, generator=torch.Generator().manual_seed(5))
    kp = padding(dead_row=False)
    ref = scaled_dot_product_attention(q, k, v, attn_mask=bias, key_padding_mask=kp, impl="reference")
    fused = scaled_dot_product_attention(q, k, v, attn_mask=bias, key_padding_mask=kp, impl="fused")
    torch.testing.assert_close(ref, fused, atol=1e-5, rtol=1e-5)
    w = attention_weights(q, k, attn_mask=bias, key_padding_mask=kp)
    torch.testing.assert_close(w.sum(-1), torch.ones(B, H, T))
    assert (w[1, :, :, 3:] == 0).all()  # padded keys get exactly 0


def test_causal_mask_is_bottom_right_aligned():
    assert causal_mask(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]
    assert torch.equal(causal_mask(3, 3), torch.ones(3, 3, dtype=torch.bool).tril())


def test_sdpa_rejects_mismatched_shapes():
    q, k, v = qkv()
    with pytest.raises(ShapeError, match="d_h"):
        scaled_dot_product_attention(q, k[..., :3], v)
    with pytest.raises(ShapeError, match="key_padding_mask"):
        scaled_dot_product_attention(q, k, v, key_padding_mask=torch.ones(B, S + 1, dtype=torch.bool))


# -- multi-head attention --------------------------------------------------------------------------
D, NH = 8, 2


def torch_mha_from(ours: MultiHeadAttention) -> nn.MultiheadAttention:
    """torch's MultiheadAttention with our weights: in_proj = [W^Q; W^K; W^V] (fused or q + kv)."""
    ref = nn.MultiheadAttention(D, NH, batch_first=True)
    with torch.no_grad():
        if ours.cross:
            ref.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.kv_proj.weight]))
            ref.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.kv_proj.bias]))
        else:
            ref.in_proj_weight.copy_(ours.qkv_proj.weight)
            ref.in_proj_bias.copy_(ours.qkv_proj.bias)
        ref.out_proj.load_state_dict(ours.out_proj.state_dict())
    return ref.eval()


@pytest.mark.parametrize("cross", [False, True])
def test_mha_equals_torch_multihead_attention(cross):
    torch.manual_seed(0)
    mha = MultiHeadAttention(D, NH, cross=cross).eval()
    ref = torch_mha_from(mha)
    x = torch.randn(B, T, D)
    mem = torch.randn(B, S, D) if cross else x
    kp = padding(mem.shape[1], dead_row=False)
    ours, _ = mha(x, mem if cross else None, key_padding_mask=kp)
    theirs, _ = ref(x, mem, mem, key_padding_mask=~kp, need_weights=False)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    if not cross:
        causal = torch.nn.Transformer.generate_square_subsequent_mask(T)
        ours, _ = mha(x, is_causal=True)
        theirs, _ = ref(x, x, x, attn_mask=causal, need_weights=False)
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


def test_mha_kv_cache_gives_the_same_outputs_as_the_whole_sequence():
    torch.manual_seed(1)
    mha = MultiHeadAttention(D, NH, rope=RotaryEmbedding(D // NH)).eval()
    x = torch.randn(B, 6, D)
    full, _ = mha(x, is_causal=True)
    # prefill 3 tokens, then one at a time, then 2 at once
    y0, cache = mha(x[:, :3], is_causal=True, use_cache=True)
    y1, cache = mha(x[:, 3:4], is_causal=True, past=cache, use_cache=True)
    y2, cache = mha(x[:, 4:], is_causal=True, past=cache, use_cache=True)
    torch.testing.assert_close(torch.cat([y0, y1, y2], dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.k.shape == (B, NH, 6, D // NH)


def test_record_attention_returns_every_head_and_keeps_outputs():
    torch.manual_seed(2)
    stack = TransformerStack(2, d_model=D, num_heads=NH, d_ff=16, norm_first=True, dropout=0.0).eval()
    x = torch.randn(B, T, D)
    plain, _ = stack(x, is_causal=True)
    with record_attention(stack) as maps:
        recorded, _ = stack(x, is_causal=True)
    torch.testing.assert_close(recorded, plain, atol=1e-5, rtol=1e-5)
    assert sorted(maps) == ["layers.0.self_attn", "layers.1.self_attn"]
    w = maps["layers.1.self_attn"][0]
    assert w.shape == (B, NH, T, T)
    torch.testing.assert_close(w.sum(-1), torch.ones(B, NH, T))
    assert (w.triu(1) == 0).all()  # causal: nothing above the diagonal
    assert all(m.record is None for m in stack.modules() if isinstance(m, MultiHeadAttention))


def test_bad_head_split_is_one_line_config_error():
    with pytest.raises(ConfigError) as e:
        MultiHeadAttention(384, 5)
    msg = str(e.value)
    assert "384" in msg and "num_heads=5" in msg and "\n" not in msg


# -- positional encodings ----------------------------------------------------------------------------
def test_sinusoidal_table_is_section_3_5():
    d = 6
    pe = sinusoidal_table(50, d)
    for pos in (0, 1, 17, 49):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            assert pe[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    enc = SinusoidalPositionalEncoding(d, max_len=50)
    torch.testing.assert_close(enc(4, offset=10), pe[10:14])
    assert sum(p.numel() for p in enc.parameters()) == 0 and "pe" not in enc.state_dict()


def test_learned_positions_refuse_positions_past_the_context():
    emb = LearnedPositionalEmbedding(8, 4)
    assert emb(3, offset=5).shape == (3, 4)
    with pytest.raises(ShapeError, match="at most 8 tokens"):
        emb(4, offset=5)


def test_rotary_keeps_norms_and_scores_depend_on_relative_position_only():
    rope = RotaryEmbedding(8, max_len=4)  # tables grow on demand past max_len
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 8, generator=g), torch.randn(1, 1, 1, 8, generator=g)
    torch.testing.assert_close(rope(q, 37).norm(), q.norm())
    s1 = (rope(q, 3) * rope(k, 1)).sum()
    s2 = (rope(q, 12) * rope(k, 10)).sum()
    torch.testing.assert_close(s1, s2, atol=1e-5, rtol=1e-5)
    # Eq. 34 on the first pair by hand at position m = 2
    m, x = 2, q[0, 0, 0]
    expected0 = x[0] * math.cos(m) - x[1] * math.sin(m)  # θ_0 = 1
    assert rope(q, m)[0, 0, 0, 0].item() == pytest.approx(expected0.item(), abs=1e-5)


# -- blocks against torch.nn -------------------------------------------------------------------------
def copy_mha(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    if ours.cross:
        ours.q_proj.weight.copy_(theirs.in_proj_weight[:D])
        ours.q_proj.bias.copy_(theirs.in_proj_bias[:D])
        ours.kv_proj.weight.copy_(theirs.in_proj_weight[D:])
        ours.kv_proj.bias.copy_(theirs.in_proj_bias[D:])
    else:
        ours.qkv_proj.weight.copy_(theirs.in_proj_weight)
        ours.qkv_proj.bias.copy_(theirs.in_proj_bias)
    ours.out_proj.load_state_dict(theirs.out_proj.state_dict())


@torch.no_grad()
def copy_layer(ours: TransformerBlock, theirs: nn.Module) -> None:
    copy_mha(ours.self_attn, theirs.self_attn)
    ours.ffn.linear1.load_state_dict(theirs.linear1.state_dict())
    ours.ffn.linear2.load_state_dict(theirs.linear2.state_dict())
    ours.self_attn_norm.load_state_dict(theirs.norm1.state_dict())
    if ours.cross_attn is not None:
        copy_mha(ours.cross_attn, theirs.multihead_attn)
        ours.cross_attn_norm.load_state_dict(theirs.norm2.state_dict())
        ours.ffn_norm.load_state_dict(theirs.norm3.state_dict())
    else:
        ours.ffn_norm.load_state_dict(theirs.norm2.state_dict())


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_block_equals_torch_encoder_layer(norm_first, activation):
    torch.manual_seed(3)
    ref = nn.TransformerEncoderLayer(D, NH, 16, 0.0, activation, batch_first=True, norm_first=norm_first).eval()
    ours = TransformerBlock(D, NH, 16, norm_first=norm_first, activation=activation, dropout=0.0).eval()
    copy_layer(ours, ref)
    x = torch.randn(B, T, D)
    kp = padding(T, dead_row=False)
    torch.testing.assert_close(ours(x, key_padding_mask=kp)[0], ref(x, src_key_padding_mask=~kp), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_block_equals_torch_decoder_layer_and_its_cache(norm_first):
    torch.manual_seed(4)
    ref = nn.TransformerDecoderLayer(D, NH, 16, 0.0, batch_first=True, norm_first=norm_first).eval()
    ours = TransformerBlock(D, NH, 16, norm_first=norm_first, cross_attention=True, dropout=0.0).eval()
    copy_layer(ours, ref)
    x, mem = torch.randn(B, T, D), torch.randn(B, S, D)
    mkp = padding(S, dead_row=False)
    causal = nn.Transformer.generate_square_subsequent_mask(T)
    expected = ref(x, mem, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=~mkp)
    full, _ = ours(x, mem, is_causal=True, memory_key_padding_mask=mkp)
    torch.testing.assert_close(full, expected, atol=1e-5, rtol=1e-5)
    steps, cache = [], None
    for t in range(T):  # one token at a time through the cache (memory projected once)
        y, cache = ours(x[:, t : t + 1], mem, is_causal=True, memory_key_padding_mask=mkp, past=cache, use_cache=True)
        steps.append(y)
    torch.testing.assert_close(torch.cat(steps, 1), expected, atol=1e-5, rtol=1e-5)
    assert cache.self_attn.k.shape[2] == T and cache.cross_attn.k.shape[2] == S


def test_stack_cache_and_final_norm():
    torch.manual_seed(5)
    stack = TransformerStack(
        2, d_model=D, num_heads=NH, d_ff=16, norm_first=True, activation="gelu_tanh", final_norm=True, dropout=0.0
    ).eval()
    x = torch.randn(B, T, D)
    full, none = stack(x, is_causal=True)
    assert none is None and isinstance(stack.norm, nn.LayerNorm)
    a, past = stack(x[:, :2], is_causal=True, use_cache=True)
    assert cache_length(past) == 2 and cache_length(None) == 0
    b, past = stack(x[:, 2:], is_causal=True, past=past, use_cache=True)
    torch.testing.assert_close(torch.cat([a, b], 1), full, atol=1e-5, rtol=1e-5)


def test_dropout_only_in_training():
    torch.manual_seed(6)
    block = TransformerBlock(D, NH, 16, dropout=0.5)
    x = torch.randn(B, T, D)
    assert not torch.allclose(block(x)[0], block(x)[0])  # residual + attention dropout draw anew
    block.eval()
    torch.testing.assert_close(block(x)[0], block(x)[0])
