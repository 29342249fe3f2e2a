"""GPT (6 layers, 6 heads, 384 wide, ctx 256, vocab 65, batch 8, AdamW) beside HF GPT2LMHeadModel, in one
process, interleaved; generation with and without the KV cache beside HF ``generate``; BERT-mini (MLM)
beside HF BertForMaskedLM.

    python benchmarks/transformers_vs_hf.py --rounds 8 --gen-rounds 3 --bert-rounds 8

Training: one step of each variant per round, round after round, so every variant sees the same
machine state; reported: median wall and CPU time per step, tokens/s and the ratio to HF fp32
(above 1: faster than HF). CPU time (the process's, ``--threads`` threads) is the steadier figure on
a shared machine. MFU (model FLOPs utilisation, Chowdhery et al. 2022, PaLM, Appendix B) per
CPU-second: the model's FLOPs per step ÷ CPU seconds per step ÷ the matmul peak per CPU-second of
the step's precision, measured in the same process (``matmul_peak(clock=time.process_time)``). Model
FLOPs per step = 3 × forward, forward = torch's FLOP counter over the dense layers (2·N per token)
plus the attention products QKᵀ and AV that its counter cannot see inside CPU SDPA, 4·L·T²·d per
sequence (the full T×T matrices, PaLM's convention, also for causal attention).

Variants: HF's GPT2LMHeadModel (sdpa) in the plain PyTorch loop (the peer), in fp32 and under bf16
autocast; archlab's gpt2 through the trainer's own step (fp32 and ``precision: bf16``); archlab's
network alone in the peer's plain loop.

Generation: the same random weights in both (HF's copied into ours through the key map), batch 1,
a 1-token prompt, ``--new-tokens`` greedy tokens; archlab ``generate`` with the KV cache and without
(re-reading the whole window at every token), and HF ``generate`` (its cache on).

BERT-mini (4 layers, 256 wide, 4 heads, FFN 1024, vocab 30522, seq 128, batch 16, dropout 0.1, MLM loss on
15 % of the positions), all in the plain loop on one batch: HF BertForMaskedLM (the peer), archlab's
bert_mini computing the MLM logits at every position as HF does, and with the decoder on the masked
positions only (the original BERT's gather_indexes). Needs transformers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from archlab.bench.measuring import machine_info, matmul_peak, plain_step  # noqa: E402
from archlab.bench.workloads import (  # noqa: E402
    GPT_BENCH,
    _hf_gpt2,
    get_workload,
    hf_gpt2_bench_model,
    prepare,
)
from archlab.utils.counting import count_flops  # noqa: E402
from archlab.utils.env import native_bf16  # noqa: E402


def _timed(fn) -> tuple[float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def _interleaved(variants: dict, rounds: int) -> tuple[dict[str, list[float]], dict[str, list[float]], tuple]:
    """One call of each variant per round, round after round, so every variant sees the same machine
    state. Returns (wall, CPU) seconds of every call by variant, and the 1-minute load average before
    and after."""
    wall: dict[str, list[float]] = {n: [] for n in variants}
    cpu: dict[str, list[float]] = {n: [] for n in variants}
    before = os.getloadavg()[0]
    for _ in range(rounds):
        for n, fn in variants.items():
            w, c = _timed(fn)
            wall[n].append(w)
            cpu[n].append(c)
    return wall, cpu, (before, os.getloadavg()[0])


def cpu_peaks() -> dict[str, float]:
    """The fp32 (and, with native bf16, the bf16) matmul peak in GFLOP per CPU-second (2048², median of 5)."""
    peaks = {"fp32": matmul_peak(clock=time.process_time)}
    if native_bf16("cpu"):
        peaks["bf16"] = matmul_peak(dtype=torch.bfloat16, clock=time.process_time)
    return peaks


def attention_flops(layers: int, batch: int, seq: int, width: int) -> int:
    """Forward FLOPs of QKᵀ and AV in every layer: 2 products of 2·T·T·d multiply-adds per sequence."""
    return 4 * layers * batch * seq * seq * width


def _rounds(
    variants: dict,
    rounds: int,
    unit: float,
    label: str,
    what: str = "tokens/s",
    peer: str = "peer",
    mfu: dict[str, tuple[float, float]] | None = None,
) -> None:
    """Two warm-up calls of each variant, then ``rounds`` interleaved rounds; prints the table of median
    wall and CPU time per call, ``unit`` / time as ``what``, and the ratios to the first variant (``peer``).
    ``mfu`` maps a variant to (model FLOPs per call, peak GFLOP per CPU-second of its precision)."""
    for step in variants.values():
        step(), step()  # warm-up
    wall, cpu, load = _interleaved(variants, rounds)
    print(f"{label}, {rounds} rounds; load average (1 min) {load[0]:.2f} → {load[1]:.2f}\n")
    first = next(iter(variants))
    pw, pc = statistics.median(wall[first]), statistics.median(cpu[first])
    extra = (" MFU (CPU) |", "---:|") if mfu else ("", "")
    print(f"| variant | wall ms | {what} (wall) | vs {peer} (wall) | CPU ms | vs {peer} (CPU) |{extra[0]}")
    print(f"|---|---:|---:|---:|---:|---:|{extra[1]}")
    for n in variants:
        w, c = statistics.median(wall[n]), statistics.median(cpu[n])
        cell = ""
        if mfu:
            flops, peak = mfu[n]
            cell = f" {100 * flops / c / (peak * 1e9):.1f}% |"
        print(f"| {n} | {1e3 * w:.0f} | {unit / w:,.0f} | {pw / w:.3f}× | {1e3 * c:.0f} | {pc / c:.3f}× |{cell}")


def training(rounds: int, peaks: dict[str, float]) -> None:
    c = GPT_BENCH
    tokens = c["batch"] * c["block_size"]
    model, batch, loss = _hf_gpt2()
    # model FLOPs of one step, the same for every variant (the same network): 3 × forward
    flops = 3 * (count_flops(model, batch[0]) + attention_flops(c["n_layer"], c["batch"], c["block_size"], c["n_embd"]))
    variants = {"HF GPT2LMHeadModel fp32 (peer, plain loop)": plain_step(model, batch, loss)}
    precision = {"HF GPT2LMHeadModel fp32 (peer, plain loop)": "fp32"}
    if native_bf16("cpu"):
        m2, b2, l2 = _hf_gpt2()
        variants["HF GPT2LMHeadModel bf16 autocast (plain loop)"] = plain_step(m2, b2, l2, precision="bf16")
        precision["HF GPT2LMHeadModel bf16 autocast (plain loop)"] = "bf16"
    keep = []
    for name, workload in (
        ("archlab gpt2, trainer step, fp32", "gpt-char"),
        ("archlab gpt2, trainer step, bf16 autocast", "gpt-char-bf16"),
        ("archlab gpt2 network, plain loop, fp32", "gpt-char-plain"),
    ):
        if "bf16" in workload and not native_bf16("cpu"):
            continue
        prepared = prepare(get_workload(workload))
        keep.append(prepared)
        variants[name] = prepared.step
        precision[name] = "bf16" if "bf16" in workload else "fp32"
    print(f"\nGPT model FLOPs per step: {flops / 1e9:.1f} GFLOP (3 × forward, attention products included)")
    mfu = {n: (flops, peaks[precision[n]]) for n in variants}
    _rounds(variants, rounds, tokens, "training", peer="HF fp32", mfu=mfu)
    for p in keep:
        p.cleanup()


def generation(rounds: int, new_tokens: int) -> None:
    from archlab.models.transformer.gpt import hf_gpt2_key_map
    from archlab.registry import create_model

    torch.manual_seed(0)
    hf = hf_gpt2_bench_model().eval()
    c = GPT_BENCH
    ours = create_model(
        "gpt2", n_layer=c["n_layer"], n_head=c["n_head"], n_embd=c["n_embd"], block_size=c["block_size"],
        vocab_size=c["vocab"], num_classes=c["vocab"], in_shape=(c["block_size"],), dropout=0.0,
    ).eval()  # fmt: skip
    sd = hf.state_dict()
    with torch.no_grad():
        for name, (hf_name, transpose) in hf_gpt2_key_map(c["n_layer"]).items():
            ours.get_parameter(name).copy_(sd[hf_name].t() if transpose else sd[hf_name])
    prompt = torch.zeros(1, 1, dtype=torch.long)
    variants = {
        "HF generate (KV cache; peer)": lambda: hf.generate(
            prompt,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            attention_mask=torch.ones_like(prompt),
            pad_token_id=0,
        ),  # fmt: skip
        "archlab generate, KV cache": lambda: ours.generate(prompt, new_tokens, temperature=0.0),
        "archlab generate, no cache": lambda: ours.generate(prompt, new_tokens, temperature=0.0, use_cache=False),
    }
    outs = {n: fn() for n, fn in variants.items()}  # warm-up, and the tokens agree
    same = all(torch.equal(o[:, : new_tokens + 1], outs["archlab generate, KV cache"]) for o in outs.values())
    with torch.no_grad():
        wall, cpu, load = _interleaved(variants, rounds)
    print(
        f"\ngeneration: batch 1, 1-token prompt, {new_tokens} greedy tokens, {rounds} rounds; same tokens from all "
        f"three: {same}; load average (1 min) {load[0]:.2f} → {load[1]:.2f}\n"
    )
    peer = next(iter(variants))
    pw, pc = statistics.median(wall[peer]), statistics.median(cpu[peer])
    print("| variant | tokens/s (wall) | vs HF (wall) | tokens/s (CPU) | vs HF (CPU) |")
    print("|---|---:|---:|---:|---:|")
    for n in variants:
        w, cp = statistics.median(wall[n]), statistics.median(cpu[n])
        print(f"| {n} | {new_tokens / w:,.0f} | {pw / w:.3f}× | {new_tokens / cp:,.0f} | {pc / cp:.3f}× |")


def bert(rounds: int, peaks: dict[str, float]) -> None:
    from archlab.bench.workloads import BERT_BENCH

    variants, mfu = {}, {}
    for name, workload in (
        ("HF BertForMaskedLM (peer, plain loop)", "hf-bert-mini-mlm"),
        ("archlab bert_mini, MLM logits at every position (as HF)", "bert-mini-mlm"),
        (
            "archlab bert_mini as the masked_lm task runs it: MLM decoder on the masked positions (gather_indexes)",
            "bert-mini-mlm-gathered",
        ),
    ):
        w = get_workload(workload)
        if not w.available():
            print(f"\nBERT: {workload} is not available here ({', '.join(w.requires)}); skipped")
            return
        prepared = prepare(w)
        variants[name] = prepared.step
        # each variant's own forward (the gathered decoder computes fewer logits), plus attention
        attn = attention_flops(BERT_BENCH["layers"], BERT_BENCH["batch"], BERT_BENCH["seq"], BERT_BENCH["hidden"])
        mfu[name] = (3 * (prepared.forward_flops + attn), peaks["fp32"])
    _rounds(variants, rounds, BERT_BENCH["batch"] * BERT_BENCH["seq"], "\nBERT-mini MLM training step", mfu=mfu)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--gen-rounds", type=int, default=3)
    p.add_argument("--new-tokens", type=int, default=255)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--bert-rounds", type=int, default=0)
    p.add_argument("--skip-training", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    m = machine_info()
    print(
        f"{m['cpu']} ({m['cores']} cores), native bf16: {m['native_bf16']}, {args.threads} thread(s), "
        f"torch {m['torch']}"
    )
    peaks = cpu_peaks()
    print("matmul peak per CPU-second: " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peaks.items()))
    if not args.skip_training:
        training(args.rounds, peaks)
    if args.gen_rounds:
        generation(args.gen_rounds, args.new_tokens)
    if args.bert_rounds:
        bert(args.bert_rounds, peaks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
