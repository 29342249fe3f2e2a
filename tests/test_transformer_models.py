"""Transformer models: GPT against HF GPT2LMHeadModel, the encoder–decoder against torch.nn.Transformer,
incremental decoding through the KV cache against whole-sequence forwards, and GPT end to end
through the CLI (train, resume, eval, sample).

HF transformers is a test extra: imported offline (HF_HUB_OFFLINE=1 in conftest), random weights from a
config, never a download; its import (~10 s) is paid once per module.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from torch import nn

from archlab import count_params, create_model
from archlab.models.transformer.encoder_decoder import torch_transformer_key_map
from archlab.models.transformer.gpt import hf_gpt2_key_map
from archlab.utils.errors import ConfigError, ShapeError
from archlab.utils.tokens import EOS_ID, SOS_ID

V, CTX, D, L, NH = 50, 16, 32, 2, 4


@pytest.fixture(scope="module")
def hf():
    return pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def gpt_pair(hf):
    """(ours, HF GPT2LMHeadModel) with HF's random weights copied into ours through the key map."""
    torch.manual_seed(0)
    cfg = hf.GPT2Config(vocab_size=V, n_positions=CTX, n_embd=D, n_layer=L, n_head=NH, bos_token_id=0, eos_token_id=0)
    theirs = hf.GPT2LMHeadModel(cfg).eval()
    ours = create_model(
        "gpt2", vocab_size=V, num_classes=V, block_size=CTX, n_embd=D, n_layer=L, n_head=NH, in_shape=(CTX,)
    ).eval()
    sd = theirs.state_dict()
    keys = hf_gpt2_key_map(L)
    assert set(keys) == {n for n, _ in ours.named_parameters()}  # every parameter mapped (lm_head is tied)
    with torch.no_grad():
        for name, (hf_name, transpose) in keys.items():
            w = sd[hf_name]
            ours.get_parameter(name).copy_(w.t() if transpose else w)
    return ours, theirs


# -- GPT ---------------------------------------------------------------------------------------------
def test_gpt_logits_equal_hf_gpt2(gpt_pair):
    ours, theirs = gpt_pair
    x = torch.randint(0, V, (3, CTX), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x).logits, atol=1e-5, rtol=1e-5)
    assert ours.lm_head.weight is ours.wte.weight  # tied


def test_gpt2_parameter_count_equals_hf(hf):
    with torch.device("meta"):
        theirs = hf.GPT2LMHeadModel(hf.GPT2Config())
        ours = create_model("gpt2")
    assert count_params(ours) == sum(p.numel() for p in theirs.parameters()) == 124_439_808


def test_gpt_kv_cache_logits_equal_the_whole_window(gpt_pair):
    ours, _ = gpt_pair
    x = torch.randint(0, V, (2, 10), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = ours(x)
        start, state = ours.start_decoding(x[:, :4])
        steps = []
        for t in range(3, 10):
            logits, state = ours.step(x[:, t] if t > 3 else start, state)
            steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), full[:, 3:], atol=1e-5, rtol=1e-5)


def test_gpt_generate_matches_hf_generate_and_the_uncached_path(gpt_pair):
    ours, theirs = gpt_pair
    prompt = torch.randint(0, V, (2, 5), generator=torch.Generator().manual_seed(3))
    cached = ours.generate(prompt, 8, temperature=0.0)
    uncached = ours.generate(prompt, 8, temperature=0.0, use_cache=False)
    ref = theirs.generate(prompt, max_new_tokens=8, do_sample=False, attention_mask=torch.ones_like(prompt))
    assert torch.equal(cached, uncached) and torch.equal(cached, ref)
    g1, g2 = (torch.Generator().manual_seed(7) for _ in range(2))
    s1 = ours.generate(prompt, 6, temperature=0.9, top_k=10, top_p=0.9, generator=g1)
    s2 = ours.generate(prompt, 6, temperature=0.9, top_k=10, top_p=0.9, generator=g2, use_cache=False)
    assert torch.equal(s1, s2)  # same seed, same tokens, with or without the cache


def test_gpt_crops_long_contexts_as_nanogpt(gpt_pair):
    ours, _ = gpt_pair
    prompt = torch.randint(0, V, (1, CTX + 5), generator=torch.Generator().manual_seed(4))
    out = ours.generate(prompt, CTX + 3, temperature=0.0)  # prompt past the context, then decoding past it
    assert out.shape == (1, 2 * CTX + 8) and torch.equal(out[:, : CTX + 5], prompt)
    idx = prompt
    with torch.no_grad():
        for _ in range(CTX + 3):  # nanoGPT's loop: condition on idx[:, -block_size:]
            nxt = ours(idx[:, -CTX:])[:, -1].argmax(-1, keepdim=True)
            idx = torch.cat([idx, nxt], 1)
    assert torch.equal(out, idx)
    with pytest.raises(ShapeError) as e:
        ours(prompt)
    assert f"exceed the model's context of block_size={CTX}" in str(e.value) and "\n" not in str(e.value)


def test_gpt_bad_configs_are_one_line_errors():
    with pytest.raises(ConfigError, match="not divisible by num_heads=5"):
        create_model("gpt_char", n_embd=384, n_head=5)
    with pytest.raises(ConfigError, match=r"set model.block_size ≥ 256"):
        create_model("gpt_char", in_shape=(256,))


def test_gpt_char_trains_resumes_evaluates_and_samples_through_the_cli(tmp_path, capsys):
    from archlab.cli import main
    from archlab.engine import load_run

    args = ["train", "shakespeare_char64/gpt_char", "model.n_layer=1", "model.n_embd=32", "model.n_head=2"]
    args += ["budget.steps=4", "eval.every=4", "checkpoint.every=2", "data.test_subset=8", "log.tensorboard=false"]
    args += ["data.eval_batch_size=64", "log.progress=false", "--runs-dir", str(tmp_path)]
    assert main(args) == 0
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["test"]["loss"] < 4.5  # below ln(75) ≈ 4.3 + slack: it learnt something in 4 steps
    # resume from step 2 as if killed there: the same final model as the unbroken run
    (run_dir / "summary.json").unlink()
    shutil.rmtree(run_dir / "checkpoints" / "step-00000004")
    assert main(["train", "--resume", str(run_dir)]) == 0
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["test"]["loss"] == summary["test"]["loss"]
    assert main(["eval", str(run_dir)]) == 0
    capsys.readouterr()
    sample = ["sample", str(run_dir), "--prompt", "ROMEO:", "--tokens", "80", "--seed", "1"]  # 86 > context 64
    assert main(sample) == 0
    text = capsys.readouterr().out
    assert text.startswith("ROMEO:") and len(text.rstrip("\n")) >= 86
    run = load_run(run_dir)
    assert run.model.config.n_layer == 1
    assert main(["sample", str(run_dir), "--prompt", "\u00e6", "--tokens", "5"]) == 2
    assert "not in the 'shakespeare_char64' vocabulary" in capsys.readouterr().err


# -- encoder–decoder ----------------------------------------------------------------------------------
SRC_V, TGT_V, DE, FF = 20, 23, 16, 32


@pytest.fixture(scope="module")
def encdec_pair():
    torch.manual_seed(5)
    ours = create_model(
        "transformer_small",
        src_vocab_size=SRC_V,
        num_classes=TGT_V,
        d_model=DE,
        num_heads=2,
        num_encoder_layers=2,
        num_decoder_layers=2,
        d_ff=FF,
        dropout=0.0,
    ).eval()
    theirs = nn.Transformer(DE, 2, 2, 2, FF, dropout=0.0, batch_first=True).eval()
    sd = theirs.state_dict()
    keys = torch_transformer_key_map(2, 2)
    with torch.no_grad():
        for name, ref in keys.items():
            base, _, rows = ref.partition("[")
            w = sd[base]
            if rows:
                w = w[:DE] if rows.startswith(":") else w[DE:]
            ours.get_parameter(name).copy_(w)
    mapped = set(keys) | {n for n, _ in ours.named_parameters() if "embed" in n or n.startswith("out.")}
    assert mapped == {n for n, _ in ours.named_parameters()}
    return ours, theirs


def _src(b=3, s=7, seed=6):
    g = torch.Generator().manual_seed(seed)
    src = torch.randint(4, SRC_V, (b, s), generator=g)
    lengths = torch.tensor([s, 4, 2][:b])
    for i, n in enumerate(lengths):
        src[i, n - 1] = EOS_ID
        src[i, n:] = 0
    return src, lengths


def test_encoder_decoder_equals_torch_transformer(encdec_pair):
    ours, theirs = encdec_pair
    src, lengths = _src()
    tgt = torch.randint(4, TGT_V, (3, 5), generator=torch.Generator().manual_seed(7))
    tgt[:, 0] = SOS_ID
    with torch.no_grad():
        e_src = ours._embed(ours.src_embed, src)
        e_tgt = ours._embed(ours.tgt_embed, tgt)
        pad = torch.arange(7)[None, :] >= lengths[:, None]  # torch: True at padding
        causal = nn.Transformer.generate_square_subsequent_mask(5)
        z = theirs(
            e_src, e_tgt, tgt_mask=causal, src_key_padding_mask=pad, memory_key_padding_mask=pad, tgt_is_causal=True
        )
        torch.testing.assert_close(ours(src, lengths, tgt), ours.out(z), atol=1e-5, rtol=1e-5)
        memory, mask = ours.encode(src, lengths)
        ref = theirs.encoder(e_src, src_key_padding_mask=pad)  # torch's nested-tensor path: 0 at padding
        torch.testing.assert_close(memory[mask], ref[mask], atol=1e-5, rtol=1e-5)


def test_encoder_decoder_cache_steps_equal_the_parallel_decoder_and_beam_1_is_greedy(encdec_pair):
    ours, _ = encdec_pair
    src, lengths = _src()
    tgt = torch.randint(4, TGT_V, (3, 6), generator=torch.Generator().manual_seed(8))
    tgt[:, 0] = SOS_ID
    with torch.no_grad():
        full = ours(src, lengths, tgt)
        start, state = ours.start_decoding(src, lengths)
        steps = []
        for t in range(6):
            logits, state = ours.step(tgt[:, t], state)
            steps.append(logits)
        torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-5)
        greedy, _ = ours.greedy_decode(src, lengths, max_len=6)
        beam1, _ = ours.beam_search(src, lengths, beam_size=1, max_len=6)
        beam3, _, scores = ours.beam_search(src, lengths, beam_size=3, max_len=6, return_scores=True)
    assert torch.equal(greedy, beam1) and beam3.shape[0] == 3 and torch.isfinite(scores).all()
    # each greedy token is the argmax of the parallel decoder given the decoded prefix
    prefix = torch.cat([torch.full((3, 1), SOS_ID), greedy[:, :-1]], 1)
    with torch.no_grad():
        again = ours(src, lengths, prefix).argmax(-1)
    alive = (greedy == EOS_ID).long().cumsum(1) - (greedy == EOS_ID).long() == 0
    assert torch.equal(again[alive], greedy[alive])


def test_encoder_decoder_scheduled_sampling_at_p1_equals_teacher_forcing(encdec_pair):
    ours, _ = encdec_pair
    src, lengths = _src()
    tgt = torch.randint(4, TGT_V, (3, 5), generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        loop = ours(src, lengths, tgt, teacher_forcing=0.999999, generator=torch.Generator().manual_seed(0))
        torch.testing.assert_close(loop, ours(src, lengths, tgt), atol=1e-5, rtol=1e-5)
    with pytest.raises(ShapeError, match=r"src: expected integer token ids of shape \(B, S\), got torch.float32"):
        ours(src.float(), lengths, tgt)


# -- benchmarks ---------------------------------------------------------------------------------------
def test_gpt_bench_workloads_build_and_keep_their_own_precision(hf):
    from archlab.bench.runner import run_workload
    from archlab.bench.workloads import BENCH_TOKENS, GPT_BENCH, Workload, _gpt_recipe, get_workload, lm_loss

    assert get_workload("gpt-char").peer == get_workload("gpt-char-bf16").peer == "hf-gpt2-char"
    recipe = _gpt_recipe(precision="bf16")
    recipe["model"].update(n_layer=1, n_head=2, n_embd=16)
    assert recipe["data"]["name"] == BENCH_TOKENS and recipe["task"]["name"] == "language_modeling"
    out = run_workload(Workload("tiny-gpt-bf16", "tiny", recipe=recipe), steps=1, warmup=1, peak_gflops=1.0)
    assert out["precision"] == "bf16" and out["batch"] == GPT_BENCH["batch"] and out["final_loss"] > 0
    peer, (x, y), loss = get_workload("hf-gpt2-char").build()
    assert x.shape == y.shape == (8, 256) and loss is lm_loss
    assert peer.model.config._attn_implementation == "sdpa" and peer.model.config.n_layer == 6


def test_bert_bench_gathered_head_equals_the_full_head_at_the_masked_positions():
    pytest.importorskip("archlab.models.transformer.bert")
    from archlab.bench.workloads import MLMGathered

    torch.manual_seed(0)
    bert = create_model(
        "bert_mini", head="pretraining", vocab_size=40, in_shape=(8,), hidden_size=16, num_attention_heads=2,
        num_hidden_layers=1, intermediate_size=32, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    ).eval()  # fmt: skip
    x = torch.randint(1, 40, (3, 8))
    labels = torch.full_like(x, -100)
    labels[0, 2], labels[2, 5], labels[2, 7] = 4, 9, 11
    with torch.no_grad():
        full = bert(x)[0]
        torch.testing.assert_close(MLMGathered(bert, labels)(x), full[labels != -100], atol=1e-5, rtol=1e-5)
