"""What every encoder–decoder shares: the seq2seq interface of the RNN encoder–decoder
(models/rnn/seq2seq.py) and the Transformer (models/transformer/encoder_decoder.py).

Tokens follow archlab's seq2seq data on both sides: ids 0..3 = <pad>, <unk>, <sos>, <eos>
(archlab.utils.tokens); src (B, S) = tokens, <eos>, then <pad>; ``src_lengths`` (B,) counts the tokens
plus <eos>; the decoder starts from <sos> and stops at <eos>. Training (teacher forcing):
``logits = model(src, src_lengths, y[:, :-1])`` (B, T, V) against ``y[:, 1:]``.

A subclass of :class:`Seq2SeqBase` writes the architecture — ``forward``, and the decoding protocol of
:mod:`archlab.layers.decoding`: ``start_decoding(src, src_lengths) → (start (B,), state)`` and
``step(tokens, state) → (logits (B, V), state)`` — and gets from here:

* ``greedy_decode`` / ``sample`` / ``beam_search`` over the shared decoders, returning
  (tokens (B, L), trace (B, L, *) or None[, scores (B,)]): tokens without <sos>, <pad> after each
  row's <eos>; the trace is what the class's ``decoding_trace`` reads from the state after each step (the RNN's
  attention weights), None without one;
* ``example_inputs`` (FLOP counting, ``archlab info``, the generic model tests);
* the input checks, one message each for both families (:meth:`Seq2SeqBase._check_inputs`);
* :func:`scheduled_input`, the next decoder input under scheduled sampling (Bengio et al. 2015,
  arXiv:1506.03099).

Letter legend: B batch, S source positions, T target positions (teacher forcing), L decoded steps,
V target vocabulary (``num_classes``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from archlab.layers import decoding
from archlab.layers.decoding import TraceFn
from archlab.utils.errors import ShapeError
from archlab.utils.tokens import EOS_ID, PAD_ID, SOS_ID, UNK_ID

__all__ = ["Seq2SeqBase", "check_vocab_sizes", "scheduled_input", "start_tokens"]


def check_vocab_sizes(config: Any) -> None:
    """Both vocabularies (``src_vocab_size``, ``num_classes``) must hold the 4 specials. Raises ValueError."""
    for name in ("src_vocab_size", "num_classes"):
        if getattr(config, name) <= EOS_ID:
            raise ValueError(
                f"{name} must be > {EOS_ID} (ids 0..3 are <pad>, <unk>, <sos>, <eos>); got {getattr(config, name)}"
            )


def start_tokens(src: Tensor) -> Tensor:
    """The first decoder input of every row: <sos> (B,) long, on ``src``'s device."""
    return torch.full((src.shape[0],), SOS_ID, dtype=torch.long, device=src.device)


def scheduled_input(gold: Tensor, logits: Tensor, teacher_forcing: float, generator: torch.Generator | None) -> Tensor:
    """The decoder input y_t (B,) after a step with ``logits`` (B, V) under scheduled sampling
    (Bengio et al. 2015): the gold token ``gold`` (B,) with probability p = ``teacher_forcing``, else
    the model's own previous argmax, one coin per row drawn with ``generator`` (on its device). p ≥ 1
    is plain teacher forcing and p ≤ 0 always feeds the argmax; neither draws a coin."""
    if teacher_forcing >= 1.0:
        return gold
    pred = logits.argmax(-1)  # the model's own previous output
    if teacher_forcing <= 0.0:
        return pred
    dev = generator.device if generator is not None else gold.device
    coin = torch.rand(gold.shape[0], generator=generator, device=dev) < teacher_forcing
    return torch.where(coin.to(gold.device), gold, pred)


class Seq2SeqBase(nn.Module):
    """The seq2seq interface (module docstring). A subclass sets ``self.config`` (with
    ``src_vocab_size``, ``num_classes``, ``max_decode_len``) and ``self.input_shape`` = (S,), and
    implements ``start_decoding`` and ``step``.

    Class attributes: ``decoding_trace`` — a function of the decoding state after a step whose value the
    decoders record (None: nothing traced); ``max_positions`` — the most source or target positions
    a forward pass takes (the Transformer's ``model.max_len``; None: any)."""

    decoding_trace: ClassVar[TraceFn | None] = None
    max_positions: int | None = None

    def start_decoding(self, src: Tensor, src_lengths: Tensor) -> tuple[Tensor, Any]:
        """The first decoder input (<sos>, (B,)) and the decoding state for :meth:`step`."""
        raise NotImplementedError

    def step(self, tokens: Tensor, state: Any) -> tuple[Tensor, Any]:
        """The decoding protocol of :mod:`archlab.layers.decoding`: y_{t−1} (B,) → (logits (B, V), state)."""
        raise NotImplementedError

    def beam_hooks(self, src: Tensor) -> dict[str, Any]:
        """``reorder`` / ``expand`` for :func:`archlab.layers.decoding.beam_search` when the state is not
        batch-first throughout; {} uses the defaults (``select_rows`` along dim 0)."""
        return {}

    # -- decoding (archlab.layers.decoding) -------------------------------------------------
    @torch.no_grad()
    def greedy_decode(
        self, src: Tensor, src_lengths: Tensor, max_len: int | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Greedy decoding: y_t = argmax p(y | y_<t, x). Returns (tokens (B, L), trace (B, L, *) or None).

        Tokens exclude <sos>; each row ends at its <eos> (or runs to ``max_len``, default
        ``config.max_decode_len``), then <pad> (0); the trace is 0 after a row's <eos>. Stops as soon
        as every row has emitted <eos>. Put the model in eval mode first (dropout).
        :func:`archlab.layers.decoding.greedy` over :meth:`step`. Raises ValueError for max_len < 1.
        """
        max_len = self._max_len(max_len)
        start, state = self.start_decoding(src, src_lengths)
        out = decoding.greedy(self.step, state, start, max_len, eos_id=EOS_ID, pad_id=PAD_ID, trace=self.decoding_trace)
        return out.tokens, out.trace

    @torch.no_grad()
    def sample(
        self,
        src: Tensor,
        src_lengths: Tensor,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        generator: torch.Generator | None = None,
        max_len: int | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Sampled outputs y_t ~ p(y | y_<t, x) with temperature / top-k / top-p
        (:func:`archlab.layers.decoding.sample`), laid out as :meth:`greedy_decode`."""
        max_len = self._max_len(max_len)
        start, state = self.start_decoding(src, src_lengths)
        out = decoding.sample(
            self.step, state, start, max_len, temperature=temperature, top_k=top_k, top_p=top_p,
            generator=generator, eos_id=EOS_ID, pad_id=PAD_ID, trace=self.decoding_trace,
        )  # fmt: skip
        return out.tokens, out.trace

    @torch.no_grad()
    def beam_search(
        self,
        src: Tensor,
        src_lengths: Tensor,
        beam_size: int = 5,
        length_penalty: float = 0.6,
        max_len: int | None = None,
        return_scores: bool = False,
    ) -> tuple[Tensor, Tensor | None] | tuple[Tensor, Tensor | None, Tensor]:
        """Beam search (:func:`archlab.layers.decoding.beam_search` over :meth:`step`). Returns
        (tokens (B, L), trace (B, L, *) or None[, scores (B,)]) laid out as :meth:`greedy_decode`; the
        score is log p(Y|X) / lp(Y), lp(Y) = ((5 + |Y|)/6)^α (GNMT, Wu et al. 2016, arXiv:1609.08144),
        |Y| counting <eos>. ``beam_size=1`` is greedy decoding exactly; ``length_penalty=0`` ranks by
        raw log-prob. Put the model in eval mode first. Raises ValueError for beam_size < 1,
        length_penalty < 0 or max_len < 1.
        """
        if beam_size < 1:
            raise ValueError(f"beam_size must be ≥ 1, got {beam_size}")
        if length_penalty < 0:
            raise ValueError(f"length_penalty (α) must be ≥ 0, got {length_penalty}")
        max_len = self._max_len(max_len)
        start, state = self.start_decoding(src, src_lengths)
        out = decoding.beam_search(
            self.step, state, start, max_len, beam_size=beam_size, length_penalty=length_penalty,
            eos_id=EOS_ID, pad_id=PAD_ID, trace=self.decoding_trace, **self.beam_hooks(src),
        )  # fmt: skip
        if return_scores:
            return out.tokens, out.trace, out.scores
        return out.tokens, out.trace

    def example_inputs(self, batch_size: int = 1, device: torch.device | str | None = None) -> tuple[Tensor, ...]:
        """(src (B, S), src_lengths (B,), tgt_in (B, S)) of valid ids at the configured S, e.g. for
        ``count_flops(model, model.example_inputs())``."""
        (s,) = self.input_shape
        src = torch.full((batch_size, s), UNK_ID, dtype=torch.long, device=device)
        src[:, -1] = EOS_ID
        tgt = torch.full((batch_size, s), UNK_ID, dtype=torch.long, device=device)
        tgt[:, 0] = SOS_ID
        return src, torch.full((batch_size,), s, dtype=torch.long, device=device), tgt

    # -- input checks ----------------------------------------------------------------------
    def _max_len(self, max_len: int | None) -> int:
        max_len = self.config.max_decode_len if max_len is None else max_len
        if max_len < 1:
            raise ValueError(f"max_len must be ≥ 1, got {max_len}")
        return max_len

    def _check_inputs(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, teacher_forcing: float) -> None:
        """The checks of ``forward(src, src_lengths, tgt_in, teacher_forcing)``: ShapeError for a wrong
        type, shape or length, ValueError for a value out of range."""
        self._check_src(src, src_lengths)
        self._check_tgt(tgt_in, src.shape[0])
        if not 0.0 <= float(teacher_forcing) <= 1.0:
            raise ValueError(f"teacher_forcing must lie in [0, 1], got {teacher_forcing}")

    def _check_src(self, src: Tensor, src_lengths: Tensor | None) -> None:
        if not isinstance(src, Tensor) or src.dim() != 2 or not _is_int(src):
            got = f"{src.dtype} {tuple(src.shape)}" if isinstance(src, Tensor) else type(src).__name__
            raise ShapeError(f"src: expected integer token ids of shape (B, S), got {got}")
        b, s = src.shape
        if src_lengths is None:
            raise ValueError("src_lengths: required, (B,) source lengths counting <eos>")
        if not isinstance(src_lengths, Tensor) or src_lengths.shape != (b,) or not _is_int(src_lengths):
            got = f"{src_lengths.dtype} {tuple(src_lengths.shape)}" if isinstance(src_lengths, Tensor) else src_lengths
            raise ShapeError(f"src_lengths: expected integer lengths of shape ({b},), got {got}")
        self._check_positions(s, "src")
        if src.device.type == "meta" or not b:  # shapes only (archlab info counts FLOPs on the meta device)
            return
        if int(src_lengths.min()) < 1 or int(src_lengths.max()) > s:
            raise ValueError(
                f"src_lengths must lie in [1, S={s}], got min {int(src_lengths.min())}, max {int(src_lengths.max())}"
            )
        _check_ids(src, self.config.src_vocab_size, "src", "src_vocab_size")

    def _check_tgt(self, tgt_in: Tensor, batch: int) -> None:
        if not isinstance(tgt_in, Tensor) or tgt_in.dim() != 2 or not _is_int(tgt_in) or tgt_in.shape[1] < 1:
            got = f"{tgt_in.dtype} {tuple(tgt_in.shape)}" if isinstance(tgt_in, Tensor) else type(tgt_in).__name__
            raise ShapeError(f"tgt_in: expected integer token ids of shape (B, T) with T ≥ 1, got {got}")
        if tgt_in.shape[0] != batch:
            raise ShapeError(f"tgt_in: expected shape ({batch}, T) (the batch of src), got {tuple(tgt_in.shape)}")
        self._check_positions(tgt_in.shape[1], "tgt_in")
        _check_ids(tgt_in, self.config.num_classes, "tgt_in", "num_classes")

    def _check_positions(self, n: int, what: str) -> None:
        if self.max_positions is not None and n > self.max_positions:
            raise ShapeError(f"{what}: {n} positions exceed model.max_len={self.max_positions}; raise model.max_len")


def _is_int(t: Tensor) -> bool:
    return not t.dtype.is_floating_point and not t.dtype.is_complex and t.dtype != torch.bool


def _check_ids(ids: Tensor, vocab: int, what: str, field: str) -> None:
    if ids.numel() and ids.device.type != "meta":
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= vocab:
            raise ValueError(f"{what}: token ids must lie in [0, {vocab - 1}] ({field}={vocab}), got [{lo}, {hi}]")
