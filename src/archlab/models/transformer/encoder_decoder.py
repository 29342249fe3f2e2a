"""The Transformer encoder–decoder of Vaswani et al. 2017, *Attention Is All You Need* (arXiv:1706.03762).

An encoder of N self-attention blocks reads the source; a decoder of N blocks — masked
self-attention, attention over the encoder's output (the memory), FFN — writes the target one
token at a time. Post-LN blocks (§3.1), ReLU FFN (Eq. 2), sinusoidal positions (§3.5), embeddings
scaled by √d_model (§3.4), residual and embedding dropout (§5.4). The core is tested equal to
``torch.nn.Transformer`` with its random weights copied in (tests/test_transformer_models.py);
like torch's, each stack ends in a LayerNorm (``final_norm``; the paper's post-LN stacks have none).

Variants:
    transformer_base    the paper's base model (Table 3): N = 6, d_model 512, 8 heads, d_ff 2048,
                        dropout 0.1; vocabularies from the data (the paper's 37k shared BPE is not
                        ours, so the count differs from the paper's 65M).
    transformer_small   a small configuration for the bundled seq2seq sets: N = 3, d_model 128,
                        4 heads, d_ff 512, dropout 0.1.

Tokens and training follow archlab's seq2seq data and task exactly as the RNN encoder–decoder
(models/rnn/seq2seq.py): ids 0..3 = <pad>, <unk>, <sos>, <eos>; ``model(src, src_lengths, tgt_in)``
→ logits for ``y[:, 1:]``; ``greedy_decode`` / ``beam_search`` / ``sample`` run the shared decoders of
:mod:`archlab.layers.decoding` over :meth:`TransformerSeq2Seq.step`, which feeds one token through
the decoder with a KV cache (self-attention K, V of the tokens so far; the memory's K, V projected
once at the first step). The decoding methods, ``example_inputs`` and the input checks are the
seq2seq interface both encoder–decoders share (:class:`archlab.models.seq2seq_base.Seq2SeqBase`);
nothing is traced, so they return (tokens, None) — attention maps come from
:func:`archlab.layers.attention.record_attention`.

Letter legend: B batch, S source positions, T target positions, D d_model, H heads, F d_ff,
N layers, V target vocabulary (``num_classes``), PE the sinusoidal table.

Equations:
    e_x = Dropout(√D · E_x[x_j] + PE(j)),   e_y = Dropout(√D · E_y[y_t] + PE(t))          (§3.4, §3.5, §5.4)
    encoder block:  a = LN(h + Dropout(MultiHead(h, h, h))),  h′ = LN(a + Dropout(FFN(a)))  (§3.1)
    decoder block:  a = LN(g + Dropout(MultiHead(g, g, g; causal))),
                    c = LN(a + Dropout(MultiHead(a, m, m))),  g′ = LN(c + Dropout(FFN(c)))
    m = LN_enc(encoder^N(e_x)),   z = LN_dec(decoder^N(e_y, m))
    MultiHead(Q, K, V) = Concat(head_1..head_H) W^O,  head_i = softmax(Q W_i^Q (K W_i^K)ᵀ / √(D/H)) V W_i^V   (Eq. 1)
    FFN(x) = max(0, x W_1 + b_1) W_2 + b_2                                               (Eq. 2)
    p(y_t | y_<t, x) = softmax(z_t E_yᵀ)        (tie_embeddings, §3.4; else a separate W_o, b_o)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from archlab.layers.positional import SinusoidalPositionalEncoding
from archlab.layers.transformer import BlockCache, FFNActivation, TransformerStack, cache_length
from archlab.models.seq2seq_base import Seq2SeqBase, check_vocab_sizes, scheduled_input, start_tokens
from archlab.registry import register_model
from archlab.registry.config import LayerCount, ModelConfig, PositiveFloat, PositiveInt, Probability
from archlab.utils.errors import ShapeError
from archlab.utils.tokens import PAD_ID

__all__ = [
    "EncDecState",
    "TransformerSeq2Seq",
    "TransformerSeq2SeqConfig",
    "torch_transformer_key_map",
    "transformer_base",
    "transformer_small",
]


@dataclass
class TransformerSeq2SeqConfig(ModelConfig):
    """The paper's base model (Table 3) by default; vocabularies from the data."""

    in_shape: tuple[PositiveInt] = (20,)  # (S,) padded source length of the data; any S ≤ max_len is accepted
    src_vocab_size: PositiveInt = 32  # source vocabulary incl. the 4 specials (num2words_fr_en: 32)
    num_classes: PositiveInt = 37  # V, target vocabulary incl. the 4 specials
    d_model: PositiveInt = 512  # D
    num_heads: PositiveInt = 8  # H; D divisible by H
    num_encoder_layers: LayerCount = 6  # N (encoder)
    num_decoder_layers: LayerCount = 6  # N (decoder)
    d_ff: PositiveInt = 2048  # F
    dropout: Probability = 0.1  # P_drop: residual, embedding and attention dropout (§5.4)
    activation: FFNActivation = "relu"  # the FFN's nonlinearity (Eq. 2: ReLU)
    norm_first: bool = False  # pre-LN instead of the paper's post-LN
    final_norm: bool = True  # a LayerNorm after each stack, as torch.nn.Transformer
    layer_norm_eps: PositiveFloat = 1e-5
    tie_embeddings: bool = True  # output layer = target embedding (§3.4)
    max_len: PositiveInt = 256  # positions of the sinusoidal table (source and target)
    max_decode_len: PositiveInt = 64  # default cap on decoded tokens


class EncDecState(NamedTuple):
    """The state :meth:`TransformerSeq2Seq.step` carries between tokens (every tensor batch first)."""

    memory: Tensor  # m (B, S, D)
    memory_mask: Tensor  # (B, S) bool, True at valid source positions
    cache: list[BlockCache] | None  # per decoder layer; None before the first token


class TransformerSeq2Seq(Seq2SeqBase):
    """Shapes: src (B, S) ids, src_lengths (B,), tgt_in (B, T) ids → logits (B, T, V)."""

    def __init__(self, config: TransformerSeq2SeqConfig):
        super().__init__()
        c = self.config = config
        check_vocab_sizes(c)
        self.input_shape = tuple(c.in_shape)
        self.max_positions = c.max_len  # source and target positions of the sinusoidal table
        self.input_spec = ("S",)
        d = c.d_model
        block = dict(
            d_model=d,
            num_heads=c.num_heads,
            d_ff=c.d_ff,
            norm_first=c.norm_first,
            activation=c.activation,
            dropout=c.dropout,
            layer_norm_eps=c.layer_norm_eps,
        )
        self.src_embed = nn.Embedding(c.src_vocab_size, d, padding_idx=PAD_ID)  # E_x
        self.tgt_embed = nn.Embedding(c.num_classes, d, padding_idx=PAD_ID)  # E_y
        self.pos = SinusoidalPositionalEncoding(d, c.max_len)  # PE
        self.drop = nn.Dropout(c.dropout)
        self.encoder = TransformerStack(c.num_encoder_layers, final_norm=c.final_norm, **block)
        self.decoder = TransformerStack(c.num_decoder_layers, final_norm=c.final_norm, cross_attention=True, **block)
        self.out = nn.Linear(d, c.num_classes, bias=not c.tie_embeddings)  # W_o
        self._reset_parameters()
        if c.tie_embeddings:
            self.out.weight = self.tgt_embed.weight

    def _reset_parameters(self) -> None:
        """Xavier-uniform matrices (torch.nn.Transformer, tensor2tensor); embeddings N(0, D^−½) so that
        √D · E has unit variance (tensor2tensor / fairseq); the <pad> row 0."""
        for name, p in self.named_parameters():
            if p.dim() > 1 and "embed" not in name:
                nn.init.xavier_uniform_(p)
        for emb in (self.src_embed, self.tgt_embed):
            nn.init.normal_(emb.weight, std=self.config.d_model**-0.5)
            with torch.no_grad():
                emb.weight[PAD_ID].zero_()

    def _embed(self, emb: nn.Embedding, ids: Tensor, offset: int = 0) -> Tensor:
        return self.drop(emb(ids) * math.sqrt(self.config.d_model) + self.pos(ids.shape[1], offset))  # (B, ·, D)

    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor]:
        """m = encoder(e_x): src (B, S), src_lengths (B,) → (memory (B, S, D), mask (B, S) True at valid)."""
        self._check_src(src, src_lengths)
        return self._encode(src, src_lengths)

    def _encode(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, Tensor]:
        mask = torch.arange(src.shape[1], device=src.device)[None, :] < src_lengths.to(src.device)[:, None]
        memory, _ = self.encoder(self._embed(self.src_embed, src), key_padding_mask=mask)
        return memory, mask

    def decode(
        self, tgt_in: Tensor, memory: Tensor, memory_mask: Tensor, past: list[BlockCache] | None = None, use_cache=False
    ) -> tuple[Tensor, list[BlockCache] | None]:
        """Logits (B, T, V) of the tokens after ``tgt_in`` (B, T), positions offset by the cache."""
        offset = cache_length(past)
        z, cache = self.decoder(
            self._embed(self.tgt_embed, tgt_in, offset),
            memory,
            is_causal=True,
            memory_key_padding_mask=memory_mask,
            past=past,
            use_cache=use_cache,
        )
        return self.out(z), cache

    def forward(
        self,
        src: Tensor,
        src_lengths: Tensor,
        tgt_in: Tensor,
        teacher_forcing: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Decoder logits for the target prefix ``tgt_in`` (B, T) = <sos> y_1 … y_{T−1}: (B, T, V).

        ``teacher_forcing`` p < 1 (scheduled sampling) decodes token by token through the cache, each
        input the gold token with probability p, else the previous step's argmax (drawn with
        ``generator``); p = 1 runs all T positions in parallel under the causal mask."""
        self._check_inputs(src, src_lengths, tgt_in, teacher_forcing)
        memory, mask = self._encode(src, src_lengths)
        if teacher_forcing >= 1.0:
            return self.decode(tgt_in, memory, mask)[0]
        logits_all, cache, y = [], None, tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            if t > 0:
                y = scheduled_input(tgt_in[:, t], logits_all[-1], teacher_forcing, generator)
            logits, cache = self.decode(y[:, None], memory, mask, past=cache, use_cache=True)
            logits_all.append(logits[:, 0])
        return torch.stack(logits_all, dim=1)

    # -- decoding (archlab.layers.decoding) -------------------------------------------------
    def start_decoding(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, EncDecState]:
        """The first decoder input (<sos>, (B,)) and the :class:`EncDecState` for :meth:`step`."""
        memory, mask = self.encode(src, src_lengths)
        return start_tokens(src), EncDecState(memory, mask, None)

    def step(self, tokens: Tensor, state: EncDecState) -> tuple[Tensor, EncDecState]:
        """The decoding protocol: y_{t−1} (B,) → (logits (B, V), state), one token through the KV cache."""
        if cache_length(state.cache) >= self.config.max_len:
            raise ShapeError(f"decoding past max_len={self.config.max_len} target positions; raise model.max_len")
        logits, cache = self.decode(tokens[:, None], state.memory, state.memory_mask, state.cache, use_cache=True)
        return logits[:, 0], EncDecState(state.memory, state.memory_mask, cache)


def torch_transformer_key_map(num_encoder_layers: int, num_decoder_layers: int) -> dict[str, str]:
    """Our parameter name → ``torch.nn.Transformer`` name (torch's in_proj = [W^Q; W^K; W^V] stacked;
    our cross-attention splits it as q_proj = rows [0, D), kv_proj = rows [D, 3D))."""
    keys: dict[str, str] = {}
    for stack, n, cross in (("encoder", num_encoder_layers, False), ("decoder", num_decoder_layers, True)):
        for i in range(n):
            o, t = f"{stack}.layers.{i}.", f"{stack}.layers.{i}."
            pairs = [
                ("self_attn.qkv_proj.weight", "self_attn.in_proj_weight"),
                ("self_attn.qkv_proj.bias", "self_attn.in_proj_bias"),
                ("self_attn.out_proj.weight", "self_attn.out_proj.weight"),
                ("self_attn.out_proj.bias", "self_attn.out_proj.bias"),
                ("self_attn_norm.weight", "norm1.weight"),
                ("self_attn_norm.bias", "norm1.bias"),
                ("ffn.linear1.weight", "linear1.weight"),
                ("ffn.linear1.bias", "linear1.bias"),
                ("ffn.linear2.weight", "linear2.weight"),
                ("ffn.linear2.bias", "linear2.bias"),
                ("ffn_norm.weight", f"norm{3 if cross else 2}.weight"),
                ("ffn_norm.bias", f"norm{3 if cross else 2}.bias"),
            ]
            if cross:
                pairs += [
                    ("cross_attn.q_proj.weight", "multihead_attn.in_proj_weight[:D]"),
                    ("cross_attn.q_proj.bias", "multihead_attn.in_proj_bias[:D]"),
                    ("cross_attn.kv_proj.weight", "multihead_attn.in_proj_weight[D:]"),
                    ("cross_attn.kv_proj.bias", "multihead_attn.in_proj_bias[D:]"),
                    ("cross_attn.out_proj.weight", "multihead_attn.out_proj.weight"),
                    ("cross_attn.out_proj.bias", "multihead_attn.out_proj.bias"),
                    ("cross_attn_norm.weight", "norm2.weight"),
                    ("cross_attn_norm.bias", "norm2.bias"),
                ]
            keys.update({o + a: t + b for a, b in pairs})
        keys[f"{stack}.norm.weight"] = f"{stack}.norm.weight"
        keys[f"{stack}.norm.bias"] = f"{stack}.norm.bias"
    return keys


_VASWANI = "Vaswani et al., Attention Is All You Need (NeurIPS 2017)"
_TEST = {
    "d_model": 16,
    "num_heads": 2,
    "num_encoder_layers": 1,
    "num_decoder_layers": 1,
    "d_ff": 32,
    "max_decode_len": 8,
}
_SMALL: dict = {"d_model": 128, "num_heads": 4, "num_encoder_layers": 3, "num_decoder_layers": 3, "d_ff": 512}


@register_model(
    family="transformer",
    config=TransformerSeq2SeqConfig,
    paper=_VASWANI,
    tasks=("seq2seq",),
    test_overrides=_TEST,
    meta={"num_params": 44_175_872, "macs": 888_555_520},
)
def transformer_base(**overrides) -> TransformerSeq2Seq:
    """The Transformer (base): 6 + 6 post-LN layers, d_model 512, 8 heads, d_ff 2048, dropout 0.1."""
    return TransformerSeq2Seq(TransformerSeq2SeqConfig(**overrides))


@register_model(
    family="transformer",
    config=TransformerSeq2SeqConfig,
    paper=_VASWANI,
    tasks=("seq2seq",),
    defaults=_SMALL,
    test_overrides=_TEST,
    meta={"num_params": 1_397_888, "macs": 28_541_440},
)
def transformer_small(**overrides) -> TransformerSeq2Seq:
    """A small Transformer encoder–decoder for the bundled seq2seq sets: 3 + 3 layers, d_model 128, 4 heads."""
    return TransformerSeq2Seq(TransformerSeq2SeqConfig(**{**_SMALL, **overrides}))
