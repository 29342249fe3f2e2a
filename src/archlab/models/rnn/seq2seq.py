"""RNN encoder–decoder for sequence-to-sequence learning, with or without attention.

An encoder RNN reads the source, a decoder RNN writes the target one token at a time. Three ways
for the decoder to read the source (``attention``):

* ``"none"`` — the context-vector bottleneck of Cho et al. 2014 (arXiv:1406.1078) and Sutskever,
  Vinyals & Le 2014 (arXiv:1409.3215): the whole source is squeezed into one vector c, the
  encoder's final state. We follow **Cho et al.**: c initialises the decoder (through the bridge)
  *and* is fed to every decoder step and to the read-out, so the baseline differs from
  ``"bahdanau"`` only in c_t = c instead of an attention read (this is the RNNencdec baseline of
  Bahdanau et al.). Sutskever et al. use c only as the initial state; their reversed source and
  4-layer LSTM are not reproduced here.
* ``"bahdanau"`` — Bahdanau, Cho & Bengio 2015 (arXiv:1409.0473): additive attention queried by
  the previous decoder state s_{t−1}; the context c_t joins the input embedding.
* ``"luong"`` — Luong, Pham & Manning 2015 (arXiv:1508.04025), global attention: the current top
  state h_t queries (score "dot", "general" or "concat"); the attentional vector
  h̃_t = tanh(W_c [c_t; h_t]) feeds the softmax and, with ``input_feeding``, the next step's input.

Bridge (``bridge="tanh"``, all kinds): decoder layer l starts at tanh(W_b [h→_l; h←_l] + b_b), the
encoder layer l's final states of both directions concatenated (Bahdanau et al. App. A.2.2 use the
backward state only; Cho et al. tanh(V c)); one W_b for h and, for the LSTM, another for c, shared by
the layers. ``bridge="zeros"`` starts the decoder at 0.

Tokens follow archlab's seq2seq data: ids 0..3 = <pad>, <unk>, <sos>, <eos> (archlab.utils.tokens) on
both sides; src (B, S) = tokens, <eos>, then <pad>; ``src_lengths`` counts the tokens plus <eos>; the
decoder starts from <sos> and stops at <eos>. Training (teacher forcing): ``logits = model(x, lengths, y[:, :-1])``,
cross-entropy against ``y[:, 1:]`` with ``ignore_index=0``. Decoding: :meth:`Seq2Seq.greedy_decode`,
:meth:`Seq2Seq.beam_search` (GNMT length penalty, Wu et al. 2016, arXiv:1609.08144) and
:meth:`Seq2Seq.sample` run the shared decoders of :mod:`archlab.layers.decoding` over
:meth:`Seq2Seq.step`, the ``step(tokens, state) → (logits, state)`` protocol. Scheduled
sampling (Bengio et al. 2015, arXiv:1506.03099): ``teacher_forcing=p < 1`` feeds the gold token with
probability p, else the model's own previous argmax.

Letter legend: B batch, S source steps, T target steps (teacher forcing), L decoded steps, k beam
size, E embedding size, H hidden units, D = directions·H encoder features, A attention size,
V target vocabulary (``num_classes``), n layers.

Equations:
    h_j = BiRNN(E_x x_j)  (B, S, D);   s_0 = tanh(W_b [h→_final; h←_first] + b_b)
    none:      c_t = c = [h→_final; h←_first]
    bahdanau:  e_tj = vᵀ tanh(W s_{t−1} + U h_j),  α_t = softmax_j(e_t),  c_t = Σ_j α_tj h_j
    none, bahdanau:
               s_t = RNN([E_y y_{t−1}; c_t], s_{t−1})
               p(y_t | y_<t, x) = softmax(W_o [s_t; c_t; E_y y_{t−1}] + b_o)
    luong:     h_t = RNN([E_y y_{t−1}; h̃_{t−1}], h_{t−1})        (h̃_{t−1} only with input feeding; h̃_0 = 0)
               e_tj = h_tᵀ h_j | h_tᵀ W_a h_j | vᵀ tanh(W_a [h_t; h_j]),  α_t = softmax_j(e_t),  c_t = Σ_j α_tj h_j
               h̃_t = tanh(W_c [c_t; h_t]),   p(y_t | y_<t, x) = softmax(W_s h̃_t + b_s)
    beam score: log p(Y | X) / lp(Y),   lp(Y) = ((5 + |Y|) / 6)^α
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal, NamedTuple, get_args

import torch
from torch import Tensor, nn

from archlab.layers.attention import LUONG_SCORES, AdditiveAttention, MultiplicativeAttention
from archlab.layers.decoding import gnmt_length_penalty, select_rows
from archlab.layers.recurrent import RECURRENT_LAYERS, RecurrentBase, last_state
from archlab.models.seq2seq_base import Seq2SeqBase, check_vocab_sizes, scheduled_input, start_tokens
from archlab.registry import register_model
from archlab.registry.config import LayerCount, ModelConfig, NonNegativeInt, PositiveInt, Probability
from archlab.utils.tokens import EOS_ID, PAD_ID, SOS_ID, UNK_ID  # both vocabularies

__all__ = [
    "EOS_ID",
    "PAD_ID",
    "SOS_ID",
    "UNK_ID",
    "DecoderState",
    "Encoded",
    "Memory",
    "Seq2Seq",
    "Seq2SeqConfig",
    "StepState",
    "gnmt_length_penalty",
    "seq2seq",
    "seq2seq_bahdanau",
    "seq2seq_context",
    "seq2seq_luong",
]


Cell = Literal["rnn", "lstm", "gru"]
AttentionKind = Literal["none", "bahdanau", "luong"]
CELLS: tuple[str, ...] = get_args(Cell)
ATTENTIONS: tuple[str, ...] = get_args(AttentionKind)
HiddenState = Tensor | tuple[Tensor, Tensor]  # h (n, B, H); LSTM (h, c)


@dataclass
class Seq2SeqConfig(ModelConfig):
    in_shape: tuple[PositiveInt] = (20,)  # (S,) padded source length of the data; informational, any S is accepted
    src_vocab_size: PositiveInt = 32  # source vocabulary incl. the 4 specials (num2words_fr_en: 32)
    num_classes: PositiveInt = 37  # V, target vocabulary incl. the 4 specials: the decoder's classes
    cell: Cell = "gru"  # encoder and decoder cell (Cho et al. 2014 / Bahdanau et al. 2015: GRU)
    embed_dim: PositiveInt = 64  # E (RNNsearch: 620; scaled to the bundled sets)
    hidden_size: PositiveInt = 128  # H, per direction in the encoder and in the decoder (RNNsearch: 1000)
    num_layers: LayerCount = 1  # n, in the encoder and in the decoder
    bidirectional: bool = True  # bidirectional encoder (RNNsearch); D = 2H
    bridge: Literal["tanh", "zeros"] = "tanh"  # decoder initial state: tanh(W_b [h→; h←] + b_b), or 0
    dropout: Probability = 0.0  # on embeddings, between stacked layers and before the output layer
    attention: AttentionKind = "bahdanau"  # none (fixed context c), bahdanau (additive), luong (global)
    luong_score: Literal["dot", "general", "concat"] = "general"  # Luong's score; dot needs D = H
    attention_size: NonNegativeInt = 0  # A of the additive/concat scoring network; 0 → H
    input_feeding: bool = True  # Luong: feed h̃_{t−1} with the next input (Luong et al. §3.3)
    impl: Literal["fused", "cells"] = "fused"  # torch's fused kernels, or our equation-level loop
    max_decode_len: PositiveInt = 64  # default cap on decoded tokens (greedy_decode / beam_search)

    @property
    def tgt_vocab_size(self) -> int:
        return self.num_classes


class Encoded(NamedTuple):
    """What :meth:`Seq2Seq.encode` returns."""

    outputs: Tensor  # h_j (B, S, D), 0 at padded steps
    state: HiddenState  # final states (n·dirs, B, H); LSTM (h_n, c_n)
    mask: Tensor  # (B, S) bool, True at the valid source steps


class Memory(NamedTuple):
    """What every decoder step reads from the source (computed once per batch)."""

    outputs: Tensor  # h_j (B, S, D): attention keys and values
    mask: Tensor  # (B, S) bool
    keys: Tensor | None  # attention.prepare(outputs): U h_j / W_a h_j, or None without attention
    context: Tensor | None  # the fixed context c (B, D) for attention "none", else None


class DecoderState(NamedTuple):
    hidden: HiddenState  # s (n, B, H); LSTM (h, c)
    feed: Tensor | None  # Luong input feeding: h̃_{t−1} (B, H); None otherwise


class StepState(NamedTuple):
    """The state :meth:`Seq2Seq.step` carries between tokens (the protocol of archlab.layers.decoding)."""

    decoder: DecoderState
    memory: Memory  # the encoded source, read by every step
    attention: Tensor | None  # α_t (B, S) of the last step; None before the first and for attention "none"


class Seq2Seq(Seq2SeqBase):
    """RNN encoder–decoder (see the module docstring for the equations).

    Shapes: src (B, S) int ids, src_lengths (B,), tgt_in (B, T) int ids → logits (B, T, V);
    attention weights (B, T, S) (None for attention "none").
    """

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        c = self.config = config
        _check_config(c)
        self.input_shape = tuple(c.in_shape)  # (S,)
        e, h = c.embed_dim, c.hidden_size
        self.dirs = 2 if c.bidirectional else 1
        d = self.dirs * h
        self.src_embed = nn.Embedding(c.src_vocab_size, e, padding_idx=PAD_ID)  # E_x
        self.tgt_embed = nn.Embedding(c.num_classes, e, padding_idx=PAD_ID)  # E_y
        self.encoder = self._rnn(e, bidirectional=c.bidirectional)
        n_states = 2 if c.cell == "lstm" else 1
        self.bridge = nn.ModuleList([nn.Linear(d, h) for _ in range(n_states)]) if c.bridge == "tanh" else None  # W_b
        a = c.attention_size or h
        self.attention: AdditiveAttention | MultiplicativeAttention | None = None
        self.combine: nn.Linear | None = None
        if c.attention == "luong":
            self.attention = MultiplicativeAttention(h, d, c.luong_score, attn_dim=a)
            self.combine = nn.Linear(d + h, h, bias=False)  # W_c
            dec_in, out_in = e + (h if c.input_feeding else 0), h
        else:
            if c.attention == "bahdanau":
                self.attention = AdditiveAttention(h, d, attn_dim=a)
            dec_in, out_in = e + d, h + d + e
        self.decoder = self._rnn(dec_in, bidirectional=False)
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(out_in, c.num_classes)  # W_o (or W_s for Luong)

    def _rnn(self, in_features: int, bidirectional: bool) -> RecurrentBase:
        c = self.config
        return RECURRENT_LAYERS[c.cell](
            in_features,
            c.hidden_size,
            num_layers=c.num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=c.dropout if c.num_layers > 1 else 0.0,
            impl=c.impl,
        )

    @property
    def parallel_decoder(self) -> bool:
        """Teacher forcing can run the decoder RNN over all T steps at once (no step depends on an
        attention read of the previous state): attention "none", or Luong without input feeding."""
        c = self.config
        return c.attention == "none" or (c.attention == "luong" and not c.input_feeding)

    # -- encoder ---------------------------------------------------------------------------
    def encode(self, src: Tensor, src_lengths: Tensor) -> Encoded:
        """h_j = BiRNN(E_x x_j): src (B, S), src_lengths (B,) → Encoded(outputs (B, S, D), state, mask (B, S))."""
        self._check_src(src, src_lengths)
        return self._encode(src, src_lengths)

    def _encode(self, src: Tensor, src_lengths: Tensor) -> Encoded:
        x = self.drop(self.src_embed(src))  # (B, S, E)
        lengths = None if src.device.type == "meta" else src_lengths  # meta tensors cannot be packed
        outputs, state = self.encoder(x, lengths=lengths)  # (B, S, D); padded steps 0
        steps = torch.arange(src.shape[1], device=src.device)
        mask = steps[None, :] < src_lengths.to(src.device)[:, None]  # (B, S)
        return Encoded(outputs, state, mask)

    def init_decoder(self, encoded: Encoded) -> tuple[Memory, DecoderState]:
        """The decoder's memory of the source and its initial state s_0 (the bridge)."""
        c = self.config
        outputs, state, mask = encoded
        keys = self.attention.prepare(outputs) if self.attention is not None else None  # once per batch
        h_n = state[0] if isinstance(state, tuple) else state  # (n·dirs, B, H)
        context = last_state(h_n, c.bidirectional) if c.attention == "none" else None  # c (B, D)
        feed = (
            outputs.new_zeros(outputs.shape[0], c.hidden_size) if c.attention == "luong" and c.input_feeding else None
        )
        return Memory(outputs, mask, keys, context), DecoderState(self._bridge(state, outputs.shape[0]), feed)

    def _bridge(self, state: HiddenState, batch: int) -> HiddenState:
        c = self.config
        n, h = c.num_layers, c.hidden_size
        parts = state if isinstance(state, tuple) else (state,)  # each (n·dirs, B, H)
        if self.bridge is None:
            out = [p.new_zeros(n, batch, h) for p in parts]
        else:
            out = []
            for lin, p in zip(self.bridge, parts):
                per_layer = p.reshape(n, self.dirs, batch, h).permute(0, 2, 1, 3).reshape(n, batch, -1)  # (n, B, D)
                out.append(torch.tanh(lin(per_layer)))  # s_0 of every layer: (n, B, H)
        return (out[0], out[1]) if c.cell == "lstm" else out[0]

    # -- decoder ---------------------------------------------------------------------------
    def decode_step(
        self, y_prev: Tensor, state: DecoderState, memory: Memory
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One decoder step: y_{t−1} (B,) → (logits (B, V), the next state, α_t (B, S) or None)."""
        c = self.config
        emb = self.drop(self.tgt_embed(y_prev))  # E_y y_{t−1}: (B, E)
        if c.attention == "luong":
            x = emb if state.feed is None else torch.cat([emb, state.feed], dim=-1)  # [E_y y_{t−1}; h̃_{t−1}]
            out, hidden = self.decoder(x[:, None, :], state.hidden)  # (B, 1, H)
            h_t = out[:, 0]
            ctx, weights = self.attention(h_t, memory.outputs, memory.mask, prepared=memory.keys)  # c_t (B, D)
            h_tilde = torch.tanh(self.combine(torch.cat([ctx, h_t], dim=-1)))  # h̃_t = tanh(W_c [c_t; h_t])
            logits = self.out(self.drop(h_tilde))  # W_s h̃_t + b_s
            return logits, DecoderState(hidden, h_tilde if c.input_feeding else None), weights
        if c.attention == "bahdanau":
            s_prev = _top(state.hidden)  # s_{t−1}: the top layer's state (B, H)
            ctx, weights = self.attention(s_prev, memory.outputs, memory.mask, prepared=memory.keys)
        else:
            ctx, weights = memory.context, None  # c_t = c
        out, hidden = self.decoder(torch.cat([emb, ctx], dim=-1)[:, None, :], state.hidden)  # (B, 1, H)
        logits = self.out(self.drop(torch.cat([out[:, 0], ctx, emb], dim=-1)))  # W_o [s_t; c_t; E_y y_{t−1}] + b_o
        return logits, DecoderState(hidden, None), weights

    def _decode_parallel(self, tgt_in: Tensor, state: DecoderState, memory: Memory) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing in one call of the decoder RNN over all T steps (see :attr:`parallel_decoder`)."""
        b, t = tgt_in.shape
        emb = self.drop(self.tgt_embed(tgt_in))  # (B, T, E)
        if self.config.attention == "none":
            ctx = memory.context[:, None, :].expand(b, t, memory.context.shape[-1])  # (B, T, D)
            out, _ = self.decoder(torch.cat([emb, ctx], dim=-1), state.hidden)  # (B, T, H)
            return self.out(self.drop(torch.cat([out, ctx, emb], dim=-1))), None
        out, _ = self.decoder(emb, state.hidden)  # h_t for every t: (B, T, H)
        ctx, weights = self.attention(out, memory.outputs, memory.mask, prepared=memory.keys)  # (B, T, D), (B, T, S)
        h_tilde = torch.tanh(self.combine(torch.cat([ctx, out], dim=-1)))  # (B, T, H)
        return self.out(self.drop(h_tilde)), weights

    def _decode_loop(
        self,
        tgt_in: Tensor,
        state: DecoderState,
        memory: Memory,
        teacher_forcing: float,
        generator: torch.Generator | None,
    ) -> tuple[Tensor, Tensor | None]:
        logits_all: list[Tensor] = []
        attn_all: list[Tensor] = []
        y, logits = tgt_in[:, 0], None
        for t in range(tgt_in.shape[1]):
            if t > 0:
                y = scheduled_input(tgt_in[:, t], logits, teacher_forcing, generator)
            logits, state, weights = self.decode_step(y, state, memory)
            logits_all.append(logits)
            if weights is not None:
                attn_all.append(weights)
        attn = torch.stack(attn_all, dim=1) if attn_all else None  # (B, T, S)
        return torch.stack(logits_all, dim=1), attn  # (B, T, V)

    def forward(
        self,
        src: Tensor,
        src_lengths: Tensor,
        tgt_in: Tensor,
        teacher_forcing: float = 1.0,
        generator: torch.Generator | None = None,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor | None]:
        """Decoder logits for the target prefix ``tgt_in`` (B, T) = <sos> y_1 … y_{T−1}: (B, T, V).

        ``teacher_forcing`` p: each step after the first reads the gold token with probability p,
        else the previous step's argmax (drawn per token with ``generator``; p = 1 is plain teacher
        forcing, p = 0 feeds the model's own argmax throughout). ``return_attention=True`` returns
        (logits, α (B, T, S)), α None for attention "none".
        """
        self._check_inputs(src, src_lengths, tgt_in, teacher_forcing)
        memory, state = self.init_decoder(self._encode(src, src_lengths))
        if teacher_forcing >= 1.0 and self.parallel_decoder:
            logits, attn = self._decode_parallel(tgt_in, state, memory)
        else:
            logits, attn = self._decode_loop(tgt_in, state, memory, teacher_forcing, generator)
        return (logits, attn) if return_attention else logits

    def sequence_score(self, src: Tensor, src_lengths: Tensor, tokens: Tensor, length_penalty: float = 0.0) -> Tensor:
        """log p(Y | X) / lp(Y) of each row of ``tokens`` (B, L) (decoded, no <sos>): the sum runs to
        and including the first <eos> (the whole row if there is none), |Y| counts those tokens. (B,)
        Differentiable; in eval mode it is the score :meth:`beam_search` ranks by."""
        b = tokens.shape[0]
        tgt_in = torch.cat([tokens.new_full((b, 1), SOS_ID), tokens[:, :-1]], dim=1)  # (B, L)
        logp = self(src, src_lengths, tgt_in).float().log_softmax(-1)  # (B, L, V)
        logp = logp.gather(-1, tokens[..., None])[..., 0]  # (B, L)
        is_eos = (tokens == EOS_ID).long()
        valid = (is_eos.cumsum(1) - is_eos) == 0  # up to and including the first <eos>
        return (logp * valid).sum(1) / gnmt_length_penalty(valid.sum(1).float(), length_penalty)

    # -- decoding (archlab.layers.decoding) -------------------------------------------------
    def start_decoding(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, StepState]:
        """The first decoder input (<sos>, (B,)) and the :class:`StepState` for :meth:`step`."""
        memory, state = self.init_decoder(self.encode(src, src_lengths))
        return start_tokens(src), StepState(state, memory, None)

    def step(self, tokens: Tensor, state: StepState) -> tuple[Tensor, StepState]:
        """The decoding protocol of :mod:`archlab.layers.decoding`: y_{t−1} (B,) → (logits (B, V), state),
        the step's attention weights α_t (B, S) in ``state.attention``."""
        logits, decoder, weights = self.decode_step(tokens, state.decoder, state.memory)
        return logits, StepState(decoder, state.memory, weights)

    @staticmethod
    def reorder_state(state: StepState, rows: Tensor, *, within_sources: bool = False) -> StepState:
        """The state of batch rows ``rows`` (B′,): s is (n, B, H), everything else batch-first.

        ``within_sources=True`` (beam search's reordering, which never moves a hypothesis to another
        source's rows) leaves the memory in place: it is the same for all rows of a source."""
        hidden = select_rows(state.decoder.hidden, rows, dim=1)
        decoder = DecoderState(hidden, select_rows(state.decoder.feed, rows))
        memory = state.memory if within_sources else select_rows(state.memory, rows)
        return StepState(decoder, memory, select_rows(state.attention, rows))

    @staticmethod
    def decoding_trace(state: StepState) -> Tensor | None:
        """α_t (B, S) of the last step: what the decoders trace (the attention maps of greedy_decode…)."""
        return state.attention

    def beam_hooks(self, src: Tensor) -> dict:
        """s is (n, B, H): beam search reorders with :meth:`reorder_state`, within each source's rows."""
        b = src.shape[0]
        return {
            "reorder": functools.partial(self.reorder_state, within_sources=True),
            "expand": lambda s, k: self.reorder_state(s, torch.arange(b, device=src.device).repeat_interleave(k)),
        }


def _check_config(c: Seq2SeqConfig) -> None:
    if c.cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}; got {c.cell!r}")
    if c.attention not in ATTENTIONS:
        raise ValueError(f"attention must be one of {', '.join(ATTENTIONS)}; got {c.attention!r}")
    if c.luong_score not in LUONG_SCORES:
        raise ValueError(f"luong_score must be one of {', '.join(LUONG_SCORES)}; got {c.luong_score!r}")
    if c.bridge not in ("tanh", "zeros"):
        raise ValueError(f"bridge must be tanh or zeros; got {c.bridge!r}")
    check_vocab_sizes(c)
    for name in ("embed_dim", "hidden_size", "num_layers", "max_decode_len"):
        if getattr(c, name) < 1:
            raise ValueError(f"{name} must be ≥ 1, got {getattr(c, name)}")
    if c.attention_size < 0:
        raise ValueError(f"attention_size must be ≥ 0 (0: hidden_size), got {c.attention_size}")
    if not 0.0 <= c.dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {c.dropout}")
    if len(c.in_shape) != 1:
        raise ValueError(f"in_shape must be (S,), got {tuple(c.in_shape)}")
    if c.attention == "luong" and c.luong_score == "dot" and c.bidirectional:
        raise ValueError(
            f"luong_score='dot' needs encoder features D = decoder H, but the bidirectional encoder gives "
            f"D = 2H = {2 * c.hidden_size}; use luong_score='general' or 'concat', or bidirectional=False"
        )


def _top(hidden: HiddenState) -> Tensor:
    """The top layer's h (B, H) from a decoder state (n, B, H) or (h, c)."""
    return (hidden[0] if isinstance(hidden, tuple) else hidden)[-1]


# -- registered variants ------------------------------------------------------------------------
# The variants differ only in how the decoder reads the source, so `archlab compare` isolates the
# mechanism; the papers' other choices (Sutskever: 4-layer LSTM and reversed source; Luong: stacked
# unidirectional LSTMs) are overrides away (cell=lstm num_layers=4 bidirectional=false ...).
_SUTSKEVER = "Sutskever, Vinyals & Le, Sequence to Sequence Learning with Neural Networks (NeurIPS 2014)"
_CHO = "Cho et al., Learning Phrase Representations using RNN Encoder-Decoder (EMNLP 2014)"
_BAHDANAU = "Bahdanau, Cho & Bengio, Neural Machine Translation by Jointly Learning to Align and Translate (ICLR 2015)"
_LUONG = "Luong, Pham & Manning, Effective Approaches to Attention-based Neural Machine Translation (EMNLP 2015)"
_TEST = {"embed_dim": 8, "hidden_size": 8, "max_decode_len": 8}
_CONTEXT: dict = {"attention": "none"}
_BAHDANAU_CFG: dict = {"attention": "bahdanau"}
_LUONG_CFG: dict = {"attention": "luong", "luong_score": "general", "input_feeding": True}


@register_model(
    family="rnn",
    config=Seq2SeqConfig,
    paper=_BAHDANAU,
    tasks=("seq2seq",),
    defaults=_BAHDANAU_CFG,
    test_overrides=_TEST,
    meta={"num_params": 424_997, "macs": 7_890_688},
)
def seq2seq(**overrides) -> Seq2Seq:
    """RNN encoder–decoder with attention: bidirectional GRU encoder, GRU decoder, Bahdanau attention."""
    return Seq2Seq(Seq2SeqConfig(**{**_BAHDANAU_CFG, **overrides}))


@register_model(
    family="rnn",
    config=Seq2SeqConfig,
    paper=f"{_CHO}; {_SUTSKEVER}",
    tasks=("seq2seq",),
    defaults=_CONTEXT,
    test_overrides=_TEST,
    meta={"num_params": 375_717, "macs": 6_754_048},
)
def seq2seq_context(**overrides) -> Seq2Seq:
    """RNN encoder–decoder without attention: one fixed context vector (Cho et al. 2014), the bottleneck baseline."""
    return Seq2Seq(Seq2SeqConfig(**{**_CONTEXT, **overrides}))


@register_model(
    family="rnn",
    config=Seq2SeqConfig,
    paper=_BAHDANAU,
    tasks=("seq2seq",),
    defaults=_BAHDANAU_CFG,
    test_overrides=_TEST,
    meta={"num_params": 424_997, "macs": 7_890_688},
)
def seq2seq_bahdanau(**overrides) -> Seq2Seq:
    """RNNsearch: additive attention queried by the previous decoder state (Bahdanau et al. 2015)."""
    return Seq2Seq(Seq2SeqConfig(**{**_BAHDANAU_CFG, **overrides}))


@register_model(
    family="rnn",
    config=Seq2SeqConfig,
    paper=_LUONG,
    tasks=("seq2seq",),
    defaults=_LUONG_CFG,
    test_overrides=_TEST,
    meta={"num_params": 396_645, "macs": 7_326_208},
)
def seq2seq_luong(**overrides) -> Seq2Seq:
    """Global attention with the general score and input feeding (Luong et al. 2015)."""
    return Seq2Seq(Seq2SeqConfig(**{**_LUONG_CFG, **overrides}))
