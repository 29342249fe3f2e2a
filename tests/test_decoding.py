"""The shared decoders (archlab.layers.decoding): greedy, sampling with temperature / top-k / top-p,
beam search with GNMT's length penalty, all over ``step(tokens, state) → (logits, state)``.

The central checks: the nucleus and top-k sets match values worked out by hand; sampling is the
softmax of the reshaped logits and reproducible by seed; beam search with a beam wide enough to hold
every hypothesis finds the best sequence found by enumerating them all, and a narrow beam escapes a
greedy trap whose answer is known by hand; the recurrent LM's ``step`` equals its teacher-forced pass.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from archlab import create_model
from archlab.layers.decoding import (
    Decoded,
    beam_search,
    choose_token,
    gnmt_length_penalty,
    greedy,
    sample,
    select_rows,
    top_k_filter,
    top_p_filter,
)

NEG = float("-inf")


def kept(logits: torch.Tensor) -> list[list[int]]:
    """The token ids of each row that a filter left finite."""
    return [torch.isfinite(row).nonzero()[:, 0].tolist() for row in logits]


# -- top-p (nucleus) ---------------------------------------------------------------------------------
# probabilities in a shuffled token order: token 2 has 0.5, token 0 has 0.3, token 3 has 0.15, token 1 0.05
PROBS = torch.tensor([[0.3, 0.05, 0.5, 0.15]], dtype=torch.float64)


@pytest.mark.parametrize(
    "p, expected",
    [
        (0.1, [2]),  # the top token alone holds 0.5 ≥ 0.1
        (0.45, [2]),
        (0.7, [0, 2]),  # 0.5 < 0.7, 0.5 + 0.3 = 0.8 ≥ 0.7
        (0.79, [0, 2]),
        (0.81, [0, 2, 3]),  # 0.8 < 0.81, 0.95 ≥ 0.81
        (0.9, [0, 2, 3]),
        (0.96, [0, 1, 2, 3]),  # 0.95 < 0.96: the whole vocabulary
        (1.0, [0, 1, 2, 3]),
        (None, [0, 1, 2, 3]),
    ],
)
def test_top_p_keeps_the_smallest_set_with_mass_at_least_p(p, expected):
    logits = PROBS.log() + 3.0  # logits are log-probs up to a constant
    out = top_p_filter(logits, p)
    assert kept(out) == [expected]
    torch.testing.assert_close(out[torch.isfinite(out)], logits[torch.isfinite(out)], rtol=0, atol=0)  # untouched


def test_top_p_rows_are_independent_and_the_set_is_minimal():
    """On random rows: the kept mass is ≥ p, and dropping the least likely kept token falls below p."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 11, generator=g, dtype=torch.float64) * 2
    probs = logits.softmax(-1)
    for p in (0.05, 0.3, 0.5, 0.75, 0.9, 0.99):
        keep = torch.isfinite(top_p_filter(logits, p))
        mass = (probs * keep).sum(-1)
        least = probs.masked_fill(~keep, 2.0).min(-1).values  # the least likely kept token of each row
        assert (mass >= p).all() and (mass - least < p).all(), p
        # every kept token is at least as likely as every dropped one
        assert (probs.masked_fill(~keep, 2.0).min(-1).values >= probs.masked_fill(keep, -1.0).max(-1).values).all()
    # two rows with different distributions in one batch
    two = torch.tensor([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7]], dtype=torch.float64).log()
    assert kept(top_p_filter(two, 0.65)) == [[0, 1], [2]]


def test_top_p_ties_break_by_token_id():
    logits = torch.zeros(1, 4)  # four tokens of 0.25
    assert kept(top_p_filter(logits, 0.5)) == [[0, 1]]
    assert kept(top_p_filter(logits, 0.3)) == [[0, 1]]
    assert kept(top_p_filter(logits, 0.2)) == [[0]]


# -- top-k and temperature ---------------------------------------------------------------------------
def test_top_k_by_hand_and_its_edge_cases():
    z = torch.tensor([[1.0, 3.0, 2.0, 0.0], [0.0, 2.0, 2.0, 1.0]])
    assert kept(top_k_filter(z, 1)) == [[1], [1, 2]]  # ties with the k-th largest are kept
    assert kept(top_k_filter(z, 2)) == [[1, 2], [1, 2]]
    assert kept(top_k_filter(z, 3)) == [[0, 1, 2], [1, 2, 3]]
    for k in (4, 100, None):  # k ≥ V or None: nothing is cut
        assert top_k_filter(z, k) is z


def test_temperature_scales_the_logits_before_the_softmax():
    z = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    for tau in (0.5, 1.0, 3.0):
        for seed in range(5):
            got = choose_token(z, tau, generator=torch.Generator().manual_seed(seed))
            ref = torch.multinomial((z / tau).softmax(-1), 1, generator=torch.Generator().manual_seed(seed))[:, 0]
            assert torch.equal(got, ref)
    # empirical frequencies follow softmax(z / τ): τ = 2 flattens, and top-k = 2 renormalises the best two
    zz = z.expand(20000, 4)
    freq = torch.bincount(choose_token(zz, 2.0, generator=torch.Generator().manual_seed(0)), minlength=4) / 20000
    torch.testing.assert_close(freq, (z[0] / 2).softmax(-1), atol=0.015, rtol=0)
    freq = torch.bincount(choose_token(zz, 1.0, top_k=2, generator=torch.Generator().manual_seed(1)), minlength=4)
    e = math.exp(1.0)
    torch.testing.assert_close(freq / 20000, torch.tensor([e / (e + 1), 1 / (e + 1), 0, 0]), atol=0.015, rtol=0)


def test_greedy_limits_of_temperature_top_k_and_top_p():
    g = torch.Generator().manual_seed(3)
    z = torch.randn(200, 9, generator=g)
    best = z.argmax(-1)
    assert torch.equal(choose_token(z, 0.0), best)  # τ = 0 is the argmax, whatever k and p say
    assert torch.equal(choose_token(z, 0.0, top_k=5, top_p=0.5), best)
    assert torch.equal(choose_token(z, 1.0, top_k=1, generator=g), best)
    assert torch.equal(choose_token(z, 5.0, top_p=1e-6, generator=g), best)  # the nucleus of the top token
    assert torch.equal(choose_token(z, 1e-4, generator=g), best)  # τ → 0⁺


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"temperature": -0.5}, "temperature must be a finite number ≥ 0"),
        ({"temperature": float("nan")}, "temperature must be a finite number ≥ 0"),
        ({"temperature": float("inf")}, "temperature must be a finite number ≥ 0"),
        ({"top_k": 0}, "top_k must be an integer ≥ 1"),
        ({"top_k": 2.5}, "top_k must be an integer ≥ 1"),
        ({"top_p": 0.0}, r"top_p must lie in \(0, 1\]"),
        ({"top_p": 1.5}, r"top_p must lie in \(0, 1\]"),
        ({"top_p": float("nan")}, r"top_p must lie in \(0, 1\]"),
    ],
)
def test_bad_sampling_settings_raise_one_line(kw, match):
    with pytest.raises(ValueError, match=match):
        choose_token(torch.zeros(1, 3), **kw)
    with pytest.raises(ValueError, match=match):
        sample(_markov_step, None, torch.zeros(1, dtype=torch.long), 3, **kw)


# -- a toy model over the step protocol ----------------------------------------------------------------
# tokens: 0 <pad> (also the start token here), 1 <eos>, 2 "a", 3 "b". The state is the history (B, t);
# the next-token distribution depends on the whole history (so beam search must reorder it right).
EOS, V = 1, 4
_TABLE = torch.randn(17, V, generator=torch.Generator().manual_seed(11)) * 1.5
_TABLE[:, 0] = NEG  # <pad> is never produced


def _row_logits(history: list[int]) -> torch.Tensor:
    return _TABLE[sum((i + 1) * t for i, t in enumerate(history)) % 17]


def _history_step(tokens: torch.Tensor, state: torch.Tensor | None):
    hist = tokens[:, None] if state is None else torch.cat([state, tokens[:, None]], dim=1)  # (B, t)
    return torch.stack([_row_logits(row) for row in hist.tolist()]), hist


def _markov_step(tokens: torch.Tensor, state):
    return _TABLE[tokens], state


def _enumerate_best(start: int, max_len: int, alpha: float) -> tuple[list[int], float]:
    """The best sequence over {<eos>, a, b}: ends at its first <eos> or runs to max_len."""
    best, best_score = None, NEG
    for n in range(1, max_len + 1):
        for body in itertools.product((2, 3), repeat=n - 1):
            for last in (EOS, 2, 3):
                if last != EOS and n < max_len:
                    continue  # without <eos> only at max_len
                seq, hist, logp = [*body, last], [start], 0.0
                for t in seq:
                    logp += float(_row_logits(hist).log_softmax(-1)[t])
                    hist.append(t)
                score = logp / gnmt_length_penalty(n, alpha)
                if score > best_score:
                    best, best_score = seq, score
    return best, best_score


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_wide_beam_finds_the_best_sequence_found_by_enumeration(alpha):
    start = torch.tensor([0, 2, 3])  # three sources: different histories, different answers
    out = beam_search(_history_step, None, start, 4, beam_size=32, length_penalty=alpha, eos_id=EOS)
    assert isinstance(out, Decoded) and out.trace is None
    answers = [_enumerate_best(int(s), 4, alpha) for s in start]
    for row, score, (seq, ref) in zip(out.tokens.tolist(), out.scores.tolist(), answers, strict=True):
        assert row[: len(seq)] == seq and all(t == 0 for t in row[len(seq) :])
        assert score == pytest.approx(ref, abs=1e-5)
    assert len({tuple(a[0]) for a in answers}) > 1  # the sources do differ


def _trap_step(tokens: torch.Tensor, state):
    """From the start: a 0.6, b 0.4. After a: <eos> 0.34, a 0.33, b 0.33. After b: <eos> 1.0."""
    p = torch.tensor(
        [
            [0.0, 0.0, 0.6, 0.4],  # after the start (token 0)
            [0.0, 1.0, 0.0, 0.0],  # after <eos> (never read)
            [0.0, 0.34, 0.33, 0.33],  # after a
            [0.0, 1.0, 0.0, 0.0],  # after b
        ]
    )
    return p[tokens].log(), state


def test_a_narrow_beam_escapes_the_greedy_trap():
    start = torch.zeros(1, dtype=torch.long)
    tokens, _, _ = greedy(_trap_step, None, start, 5, eos_id=EOS)
    assert tokens.tolist() == [[2, 1]]  # a, then <eos>: p = 0.6 · 0.34 = 0.204
    out = beam_search(_trap_step, None, start, 5, beam_size=2, length_penalty=0.0, eos_id=EOS)
    assert out.tokens.tolist() == [[3, 1]]  # b <eos>: p = 0.4
    assert out.scores.item() == pytest.approx(math.log(0.4))
    out = beam_search(_trap_step, None, start, 5, beam_size=1, length_penalty=0.0, eos_id=EOS)
    assert out.tokens.tolist() == [[2, 1]] and out.scores.item() == pytest.approx(math.log(0.204))
    out = beam_search(_trap_step, None, start, 5, beam_size=2, length_penalty=1.0, eos_id=EOS)
    assert out.scores.item() == pytest.approx(math.log(0.4) / ((5 + 2) / 6))


def test_beam_size_one_is_greedy_and_greedy_stops_at_eos():
    start = torch.tensor([0, 2, 3, 2])
    g = greedy(_history_step, None, start, 6, eos_id=EOS, pad_id=0)
    b = beam_search(_history_step, None, start, 6, beam_size=1, length_penalty=0.6, eos_id=EOS, pad_id=0)
    assert torch.equal(g.tokens, b.tokens) and g.scores is None
    # each greedy token is the argmax given its own history; <pad> after a row's <eos>
    for s, row in zip(start.tolist(), g.tokens.tolist(), strict=True):
        hist = [s]
        for t in row:
            if hist[-1] == EOS or (len(hist) > 1 and EOS in hist[1:]):
                assert t == 0
                continue
            assert t == int(_row_logits(hist).argmax())
            hist.append(t)
    # without an eos id it runs to max_len; max_len 0 gives no tokens
    assert greedy(_markov_step, None, start, 7).tokens.shape == (4, 7)
    assert greedy(_markov_step, None, start, 0).tokens.shape == (4, 0)


def test_sampling_is_reproducible_with_a_seed_and_traces_the_state():
    start = torch.zeros(64, dtype=torch.long)

    def run(seed: int, **kw):
        gen = torch.Generator().manual_seed(seed)
        return sample(_history_step, None, start, 5, generator=gen, eos_id=EOS, trace=lambda h: h[:, -1:].float(), **kw)

    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a.tokens, b.tokens) and not torch.equal(a.tokens, c.tokens)
    assert torch.equal(run(2, top_p=0.9, temperature=0.7).tokens, run(2, top_p=0.9, temperature=0.7).tokens)
    # the trace is the state after each step (here the token just read), 0 after a row's <eos>
    done_before = torch.cumsum((a.tokens == EOS).long(), 1) - (a.tokens == EOS).long() > 0
    assert a.trace.shape == (*a.tokens.shape, 1)
    assert (a.trace[done_before] == 0).all()
    first_input = torch.cat([start[:, None], a.tokens[:, :-1]], 1).float()  # the input token of each step
    assert torch.equal(a.trace[..., 0][~done_before], first_input[~done_before])


def test_select_rows_walks_nested_states():
    from typing import NamedTuple

    class S(NamedTuple):
        h: torch.Tensor
        extra: dict

    state = S(torch.arange(6).view(3, 2), {"kv": [torch.arange(3), None], "t": 4})
    out = select_rows(state, torch.tensor([2, 2, 0]))
    assert isinstance(out, S) and out.h.tolist() == [[4, 5], [4, 5], [0, 1]]
    assert out.extra["kv"][0].tolist() == [2, 2, 0] and out.extra["kv"][1] is None and out.extra["t"] == 4
    h = torch.arange(6).view(1, 3, 2)  # torch's RNN state (L, B, H)
    assert select_rows((h, h), torch.tensor([1]), dim=1)[0].tolist() == [[[2, 3]]]


# -- the models over the protocol ------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_lm_step_equals_its_teacher_forced_pass(cell):
    torch.manual_seed(0)
    lm = create_model(f"{cell}_lm", vocab_size=7, num_classes=7, embed_dim=5, hidden_size=6).eval()
    x = torch.randint(0, 7, (3, 6), generator=torch.Generator().manual_seed(1))
    full = lm(x)  # (B, T, V)
    state, steps = None, []
    for t in range(x.shape[1]):
        logits, state = lm.step(x[:, t], state)
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=1e-5, atol=1e-6)
    # beam search over the LM reorders its (L, B, H) state with reorder_state; beam 1 = greedy
    _, state = lm(x[:, :-1], return_state=True)
    g = greedy(lm.step, state, x[:, -1], 5)
    b = beam_search(lm.step, state, x[:, -1], 5, beam_size=1, reorder=lm.reorder_state)
    assert torch.equal(g.tokens, b.tokens)
    assert torch.equal(lm.generate(x, 5, temperature=0.0)[:, 6:], g.tokens)


def test_recurrent_lm_generate_with_top_p_and_top_k():
    torch.manual_seed(0)
    lm = create_model("lstm_lm", vocab_size=9, num_classes=9, embed_dim=4, hidden_size=8)
    idx = torch.tensor([[1, 2, 3], [4, 5, 6]])
    greedy_out = lm.generate(idx, 8, temperature=0.0)
    assert lm.training  # generate restores the mode
    gen = lambda seed, **kw: lm.generate(idx, 8, generator=torch.Generator().manual_seed(seed), **kw)  # noqa: E731
    assert torch.equal(gen(0, top_p=1e-6), greedy_out) and torch.equal(gen(1, top_k=1), greedy_out)
    assert torch.equal(gen(0, top_p=0.9), gen(0, top_p=0.9)) and not torch.equal(gen(0), gen(1))
    assert torch.equal(lm.generate(idx[:, :1], 3, temperature=0.0)[:, :1], idx[:, :1])  # a one-token prompt
    with pytest.raises(ValueError, match=r"top_p must lie in \(0, 1\]"):
        lm.generate(idx, 3, top_p=0.0)


def test_seq2seq_sample_over_the_shared_decoders():
    torch.manual_seed(0)
    model = create_model("seq2seq", src_vocab_size=10, num_classes=10, embed_dim=6, hidden_size=8).eval()
    src = torch.tensor([[4, 5, 6, 3], [7, 8, 3, 0]])
    lengths = torch.tensor([4, 3])
    greedy_tokens, greedy_attn = model.greedy_decode(src, lengths, max_len=6)
    tokens, attn = model.sample(src, lengths, temperature=0.0, max_len=6)
    assert torch.equal(tokens, greedy_tokens) and torch.equal(attn, greedy_attn)
    # beam search leaves the encoder memory in place (a source's beams share it): the same answer
    # and scores as moving every part of the state with the general reorder
    ref = beam_search(
        model.step, model.start_decoding(src, lengths)[1], torch.full((2,), 2), 6,
        beam_size=3, eos_id=3, reorder=model.reorder_state, trace=lambda s: s.attention,
    )  # fmt: skip
    tokens, attn, scores = model.beam_search(src, lengths, beam_size=3, max_len=6, return_scores=True)
    assert torch.equal(tokens, ref.tokens) and torch.equal(attn, ref.trace) and torch.equal(scores, ref.scores)
    draw = lambda seed: model.sample(src, lengths, generator=torch.Generator().manual_seed(seed), max_len=6)[0]  # noqa: E731
    assert torch.equal(draw(5), draw(5)) and not torch.equal(draw(5), draw(6))


def test_cli_sample_top_p_bad_values_are_one_line(tmp_path, capsys):
    from archlab.cli import main

    for bad in ("0", "1.5", "-0.1", "nan"):
        assert main(["sample", str(tmp_path / "no-such-run"), "--top-p", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert "--top-p must lie in (0, 1]" in err and len(err.splitlines()) == 1, err
    assert main(["sample", str(tmp_path), "--temperature", "inf"]) == 2
    assert "--temperature must be a finite number ≥ 0" in capsys.readouterr().err


def test_language_model_task_samples_with_top_p_and_the_cli_passes_it(tmp_path, capsys):
    from archlab.cli import main
    from archlab.engine import load_run
    from archlab.utils.errors import ConfigError

    args = ["train", "shakespeare_char64/lstm_lm", "model.hidden_size=8", "model.embed_dim=4", "model.num_layers=1"]
    args += ["budget.steps=1", "eval.every=1", "checkpoint.every=1", "data.test_subset=4", "log.tensorboard=false"]
    assert main([*args, "--runs-dir", str(tmp_path)]) == 0
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    capsys.readouterr()
    sample_args = ["sample", str(run_dir), "--prompt", "ROMEO:", "--tokens", "30", "--seed", "2"]
    texts = []
    for extra in (["--top-p", "0.9"], ["--top-p", "0.9"], ["--top-p", "1e-9"], ["--temperature", "0"]):
        assert main([*sample_args, *extra]) == 0
        texts.append(capsys.readouterr().out)
    assert texts[0] == texts[1] and texts[0].startswith("ROMEO:")
    assert texts[2] == texts[3]  # a nucleus smaller than the top token's mass is greedy decoding
    run = load_run(run_dir)
    with pytest.raises(ConfigError, match=r"top_p must lie in \(0, 1\]"):
        run.task.sample(run.model, "ROMEO:", 5, top_p=2.0)
