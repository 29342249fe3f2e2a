"""Decoding: turning a next-token model into output sequences — greedy, beam search and sampling.

Every generative sequence model (the recurrent LM, the RNN encoder–decoder, and the coming GPT and
Transformer encoder–decoder) plugs in through one function, the *step*:

    step(tokens, state) → (logits, state)

``tokens`` (B,) long is the newest token of each row, ``logits`` (B, V) scores the next one, and
``state`` is whatever the model carries from one token to the next — any nesting of tuples, lists,
dicts and NamedTuples of tensors (or ``None`` before the first token):

* recurrent LM: the RNN's h (L, B, H) or (h, c); ``step`` runs the RNN for one time step.
* RNN encoder–decoder: the decoder's s (and Luong's h̃), the encoder memory read by attention, and the
  last attention weights (so :func:`beam_search` can trace them with ``trace``).
* Transformer decoder with a KV cache: per layer the keys and values of every token so far, each
  (B, heads, t, d_head), and the position t. ``step`` embeds the token at position t, computes its
  q, k, v, appends k and v to the cache and attends from q over all t + 1 cached positions; the
  prompt is run once, in parallel, to fill the cache (the "prefill"). Without a cache the state is
  the prefix (B, t) and ``step`` re-runs it whole: the same logits, O(t) more work per token.

The decoders below never look inside the state; they only call ``step`` and, when hypotheses are
duplicated or reordered (beam search), ``reorder(state, rows)``, which must return the state of batch
rows ``rows`` (B′,). The default, :func:`select_rows`, takes rows along dim 0 of every tensor — keep
batch first in a state (a KV cache (B, heads, t, d) already is), or pass ``reorder``
(``functools.partial(select_rows, dim=1)`` for torch's RNN states (L, B, H)). Beam search reorders
only within each source's k rows, so what is constant per source (an encoder memory, a
cross-attention cache) may stay where it is after ``expand`` made the k copies.

Decoders start from ``start`` (B,) — <sos> for an encoder–decoder, the last prompt token for a
language model whose state holds the rest of the prompt — and return :class:`Decoded`: the tokens
(B, L) without ``start``; a row that emitted ``eos_id`` is ``pad_id`` after it, and decoding stops
once every row has (no stopping when ``eos_id`` is None). The decoders run without autograd.

Letter legend: B batch, V vocabulary, L decoded steps, k beam size, τ temperature, p nucleus mass.

Equations:
    greedy:   y_t = argmax_v z_t[v],                  z_t = logits of step t
    sample:   y_t ~ softmax(z′_t),  z′ = z/τ, then −∞ outside the k largest (top-k, Fan et al. 2018,
              arXiv:1805.04833), then −∞ outside the nucleus V⁽ᵖ⁾: the smallest set of most likely tokens
              with Σ_{v∈V⁽ᵖ⁾} softmax(z′)_v ≥ p (top-p, Holtzman et al. 2020, arXiv:1904.09751, Eq. 2)
    beam:     score(Y) = log p(Y | X) / lp(Y),   lp(Y) = ((5 + |Y|) / 6)^α   (GNMT, Wu et al. 2016,
              arXiv:1609.08144 §7; |Y| counts <eos>; α = 0 ranks by log-prob)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from archlab.utils.shapes import check_shape

__all__ = [
    "Decoded",
    "ReorderFn",
    "StepFn",
    "beam_search",
    "check_sampling",
    "choose_token",
    "continue_prompt",
    "gnmt_length_penalty",
    "greedy",
    "sample",
    "select_rows",
    "top_k_filter",
    "top_p_filter",
]

State = Any  # a model's decoding state: nested tuples / lists / dicts / NamedTuples of tensors, or None
StepFn = Callable[[Tensor, State], tuple[Tensor, State]]  # (tokens (B,), state) → (logits (B, V), state)
ReorderFn = Callable[[State, Tensor], State]  # (state, rows (B′,)) → the state of those rows
TraceFn = Callable[[State], Tensor | None]  # state after a step → a per-row value to record, (B, *)


class Decoded(NamedTuple):
    """What the decoders return."""

    tokens: Tensor  # (B, L) long, without the start token; pad_id after a row's eos_id
    trace: Tensor | None  # (B, L, *): ``trace(state)`` after each step (e.g. attention), 0 after eos; or None
    scores: Tensor | None  # (B,) beam search: log p(Y | X) / lp(Y) of the answer; None otherwise


def gnmt_length_penalty(length: Tensor | int, alpha: float) -> Tensor | float:
    """lp(Y) = ((5 + |Y|) / 6)^α of Wu et al. 2016 (GNMT, arXiv:1609.08144 §7); α = 0 gives 1 (raw log-prob)."""
    return ((5 + length) / 6) ** alpha


def select_rows(state: State, rows: Tensor, dim: int = 0) -> State:
    """The state of batch rows ``rows`` (B′,): ``index_select(dim, rows)`` on every tensor in a nest of
    tuples, lists, dicts and NamedTuples; anything else (None, ints) is kept as it is."""
    if isinstance(state, Tensor):
        return state.index_select(dim, rows)
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # NamedTuple
        return type(state)(*(select_rows(s, rows, dim) for s in state))
    if isinstance(state, tuple | list):
        return type(state)(select_rows(s, rows, dim) for s in state)
    if isinstance(state, dict):
        return {key: select_rows(s, rows, dim) for key, s in state.items()}
    return state


# -- choosing the next token -------------------------------------------------------------------
def check_sampling(temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None) -> None:
    """Raise ValueError (one line, naming the fix) unless τ ≥ 0 finite, k ≥ 1 and 0 < p ≤ 1."""
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be a finite number ≥ 0 (0 = greedy), got {temperature}")
    if top_k is not None and (isinstance(top_k, bool) or int(top_k) != top_k or top_k < 1):
        raise ValueError(f"top_k must be an integer ≥ 1 (or None: every token), got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must lie in (0, 1] (1 or None: every token), got {top_p}")


def top_k_filter(logits: Tensor, k: int | None) -> Tensor:
    """−∞ at every token scoring below the k-th largest of its row (Fan et al. 2018, arXiv:1805.04833).

    Tokens tied with the k-th largest are all kept (so a row may keep more than k); k ≥ V or None keeps
    every token. Shapes: logits (B, V) → (B, V)."""
    if k is None or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (B, 1): the k-th largest score
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float | None) -> Tensor:
    """Nucleus filtering (Holtzman et al. 2020, arXiv:1904.09751 §3.1, Eq. 2): −∞ outside the smallest
    set of most likely tokens whose probability sums to ≥ p.

    A token stays iff the tokens strictly ahead of it in the sorted order hold mass < p, so the most
    likely token always stays; equal probabilities are ordered by token id (a stable sort). p = 1 or
    None keeps every token. The probabilities are softmax(logits) in float32 (or the logits' wider
    dtype). Shapes: logits (B, V) → (B, V)."""
    if p is None or p >= 1.0:
        return logits
    probs = logits.float().softmax(-1) if logits.dtype != torch.float64 else logits.softmax(-1)
    sorted_p, order = probs.sort(dim=-1, descending=True, stable=True)  # (B, V)
    ahead = sorted_p.cumsum(-1) - sorted_p  # mass of the tokens ahead of each one
    drop_sorted = ahead >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def choose_token(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The next token of every row: argmax for τ = 0, else a draw from softmax of the logits divided by
    τ, cut to the top k, then to the nucleus p (the order of Holtzman et al. §5 and HF ``generate``).

    ``generator`` makes the draw reproducible (on the logits' device). Shapes: logits (B, V) → (B,) long.
    Raises ValueError for τ < 0, k < 1 or p outside (0, 1]."""
    check_sampling(temperature, top_k, top_p)
    if temperature == 0:
        return logits.argmax(-1)
    z = logits.float() / temperature  # z′ = z / τ
    z = top_p_filter(top_k_filter(z, top_k), top_p)
    return torch.multinomial(z.softmax(-1), 1, generator=generator)[:, 0]  # (B,)


# -- greedy and sampling -----------------------------------------------------------------------
@torch.no_grad()
def greedy(
    step: StepFn,
    state: State,
    start: Tensor,
    max_len: int,
    *,
    eos_id: int | None = None,
    pad_id: int = 0,
    trace: TraceFn | None = None,
) -> Decoded:
    """Greedy decoding, y_t = argmax_v p(v | y_<t): up to ``max_len`` tokens from ``start`` (B,).

    Returns :class:`Decoded` (tokens (B, L), trace (B, L, *) or None, scores None); see the module
    docstring for the protocol and the layout."""
    return _decode(step, state, start, max_len, lambda z: z.argmax(-1), eos_id, pad_id, trace)


@torch.no_grad()
def sample(
    step: StepFn,
    state: State,
    start: Tensor,
    max_len: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
    eos_id: int | None = None,
    pad_id: int = 0,
    trace: TraceFn | None = None,
) -> Decoded:
    """Ancestral sampling, y_t ~ p(· | y_<t) reshaped by temperature, top-k and top-p (see
    :func:`choose_token`); τ = 0 is :func:`greedy`. The same ``generator`` seed gives the same tokens.

    Returns :class:`Decoded` as :func:`greedy`. Raises ValueError for τ < 0, k < 1 or p outside (0, 1]."""
    check_sampling(temperature, top_k, top_p)

    def choose(z: Tensor) -> Tensor:
        return choose_token(z, temperature, top_k, top_p, generator)

    return _decode(step, state, start, max_len, choose, eos_id, pad_id, trace)


@torch.no_grad()
def continue_prompt(
    model: nn.Module,
    idx: Tensor,
    max_new_tokens: int,
    start: Callable[[Tensor], tuple[Tensor, State]],
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A language model's ``generate``: each row of ``idx`` (B, T0) continued by ``max_new_tokens``
    tokens from :func:`sample` over ``model.step`` → (B, T0 + n). ``start(idx)`` reads the prompt
    (the "prefill") and returns (its last token (B,), the state holding the rest). ``model`` runs in
    eval mode; its mode is restored after. Raises ValueError for bad sampling settings (τ < 0, k < 1,
    p outside (0, 1]) or an empty prompt, ShapeError for ``idx`` not (B, T)."""
    check_sampling(temperature, top_k, top_p)
    check_shape(idx, (None, "T"), "idx")
    if idx.shape[1] < 1:
        raise ValueError("idx: give at least one token to start from, got an empty prompt (B, 0)")
    was_training = model.training
    model.eval()
    try:
        first, state = start(idx)
        out = sample(
            model.step, state, first, max_new_tokens,
            temperature=temperature, top_k=top_k, top_p=top_p, generator=generator,
        )  # fmt: skip
    finally:
        model.train(was_training)
    return torch.cat([idx, out.tokens], 1)


def _decode(
    step: StepFn,
    state: State,
    start: Tensor,
    max_len: int,
    choose: Callable[[Tensor], Tensor],
    eos_id: int | None,
    pad_id: int,
    trace: TraceFn | None,
) -> Decoded:
    _check_start(start, max_len)
    y = start
    done = torch.zeros(start.shape[0], dtype=torch.bool, device=start.device)  # rows that emitted eos
    tokens: list[Tensor] = []
    traced: list[Tensor] = []
    for _ in range(max_len):
        logits, state = step(y, state)  # (B, V)
        y = choose(logits).masked_fill(done, pad_id)  # (B,)
        tokens.append(y)
        w = trace(state) if trace is not None else None
        if w is not None:
            traced.append(w.masked_fill(done.view(-1, *(1,) * (w.dim() - 1)), 0.0))
        if eos_id is not None:
            done = done | (y == eos_id)
            if bool(done.all()):
                break
    out = torch.stack(tokens, dim=1) if tokens else start.new_zeros(start.shape[0], 0)
    return Decoded(out, torch.stack(traced, dim=1) if traced else None, None)


# -- beam search -------------------------------------------------------------------------------
@torch.no_grad()
def beam_search(
    step: StepFn,
    state: State,
    start: Tensor,
    max_len: int,
    *,
    beam_size: int = 5,
    length_penalty: float = 0.6,
    eos_id: int | None = None,
    pad_id: int = 0,
    reorder: ReorderFn = select_rows,
    expand: Callable[[State, int], State] | None = None,
    trace: TraceFn | None = None,
) -> Decoded:
    """Beam search over a batch, its beams flattened to B·k rows of the state.

    Each step expands the k live hypotheses of a source by every token and keeps the 2k best by
    log-prob; those among the best k that end in ``eos_id`` are finished (kept with their score
    log p(Y|X) / lp(Y), lp(Y) = ((5 + |Y|)/6)^α, |Y| counting the eos), the k best others live on.
    A source is done once it has k finished hypotheses; at ``max_len`` the live ones are finished
    too. The answer is the finished hypothesis with the best score. ``beam_size=1`` is :func:`greedy`
    exactly; ``length_penalty=0`` ranks by raw log-prob.

    ``expand(state, k)`` makes the B·k rows (each source's row k times, source-major) from the B of
    ``state``; by default ``reorder(state, rows)`` with rows = 0,…,0, 1,…,1, …. After it,
    ``reorder(state, rows)`` moves each surviving hypothesis onto its parent's state; ``rows`` (B·k,)
    never leaves a source's block of k rows, so values constant per source need not move. Returns
    :class:`Decoded` (tokens (B, L), trace (B, L, *) or None, scores (B,)). Raises ValueError for
    k < 1 or α < 0.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be ≥ 1, got {beam_size}")
    if length_penalty < 0:
        raise ValueError(f"length_penalty (α) must be ≥ 0, got {length_penalty}")
    _check_start(start, max_len)
    k, b, dev = beam_size, start.shape[0], start.device
    if expand is None:
        state = reorder(state, torch.arange(b, device=dev).repeat_interleave(k))  # B·k rows, source-major
    else:
        state = expand(state, k)
    y = start.repeat_interleave(k)  # (B·k,)
    scores = torch.zeros(b, k, device=dev)  # log p of each live hypothesis
    scores[:, 1:] = float("-inf")  # at the start only one hypothesis per source is live
    hist = torch.zeros(b * k, 0, dtype=torch.long, device=dev)  # tokens of the live hypotheses (B·k, t)
    thist: Tensor | None = None  # traced values of the live hypotheses (B·k, t, *)
    base = torch.arange(b, device=dev)[:, None] * k  # (B, 1): first row of each source's beam
    finished: list[list[tuple[float, Tensor, Tensor | None]]] = [[] for _ in range(b)]
    done = torch.zeros(b, dtype=torch.bool, device=dev)
    for _ in range(max_len):
        logits, state = step(y, state)  # (B·k, V)
        v = logits.shape[-1]
        w = trace(state) if trace is not None else None  # (B·k, *) or None
        if w is not None and thist is None:
            thist = w.new_zeros(b * k, 0, *w.shape[1:])
        logp = logits.float().log_softmax(-1).view(b, k, v)
        cand = (scores[:, :, None] + logp).view(b, k * v)  # log p of every one-token extension
        top_s, top_i = cand.topk(min(2 * k, k * v), dim=1)  # (B, 2k), best first
        parent = base + torch.div(top_i, v, rounding_mode="floor")  # (B, 2k) rows of B·k
        tok = top_i % v
        is_eos = tok == eos_id if eos_id is not None else torch.zeros_like(tok, dtype=torch.bool)
        # finish the eos extensions among the best k of each source still searching
        fin = is_eos[:, :k] & torch.isfinite(top_s[:, :k]) & ~done[:, None]
        for i, r in fin.nonzero().tolist():
            p = int(parent[i, r])
            toks = torch.cat([hist[p], tok[i, r : r + 1]])
            trc = None if thist is None else torch.cat([thist[p], w[p][None]])
            finished[i].append((float(top_s[i, r]) / gnmt_length_penalty(len(toks), length_penalty), toks, trc))
        done = done | torch.tensor([len(f) >= k for f in finished], device=dev)
        if bool(done.all()):
            break
        # the k best extensions that do not end in eos live on
        scores, keep = top_s.masked_fill(is_eos, float("-inf")).topk(k, dim=1)  # (B, k)
        rows = parent.gather(1, keep).view(-1)  # (B·k,)
        y = tok.gather(1, keep).view(-1)
        hist = torch.cat([hist[rows], y[:, None]], dim=1)
        if thist is not None:
            thist = torch.cat([thist[rows], w[rows][:, None]], dim=1)
        state = reorder(state, rows)
    else:  # max_len reached: the live hypotheses of unfinished sources finish as they are
        for i in (~done).nonzero()[:, 0].tolist():
            for j in range(k):
                if torch.isfinite(scores[i, j]):
                    toks = hist[i * k + j]
                    trc = None if thist is None else thist[i * k + j]
                    lp = gnmt_length_penalty(len(toks), length_penalty)
                    finished[i].append((float(scores[i, j]) / lp, toks, trc))
    best = [max(f, key=lambda h: h[0]) for f in finished]
    length = max(len(h[1]) for h in best)
    tokens = torch.full((b, length), pad_id, dtype=torch.long, device=dev)
    traced = None if thist is None else thist.new_zeros(b, length, *thist.shape[2:])
    for i, (_, toks, trc) in enumerate(best):
        tokens[i, : len(toks)] = toks
        if traced is not None:
            traced[i, : len(toks)] = trc
    return Decoded(tokens, traced, torch.tensor([h[0] for h in best], device=dev))


def _check_start(start: Tensor, max_len: int) -> None:
    if not isinstance(start, Tensor) or start.dim() != 1 or start.dtype != torch.long:
        got = f"{start.dtype} {tuple(start.shape)}" if isinstance(start, Tensor) else type(start).__name__
        raise ValueError(f"start: expected the first input token of each row, long (B,), got {got}")
    if max_len < 0:
        raise ValueError(f"max_len must be ≥ 0, got {max_len}")
