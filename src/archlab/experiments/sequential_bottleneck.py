"""The sequential bottleneck (Vaswani et al. 2017, Table 1): time per training step and memory against
the sequence length for an LSTM and one causal Transformer encoder layer (``layers.transformer``:
multi-head self-attention and its feed-forward network, pre-LN). Self-attention has sequential depth
1 but T² scores per head: the memory the backward pass keeps grows as T² when the attention weights
are written out (Eq. 1 as written), and as T with the fused kernel (flash attention recomputes them).
No training runs: the steps are timed and the saved tensors measured in this process."""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import torch
from pydantic import Field, model_validator
from torch import Tensor, nn

from archlab.experiments.base import (
    Experiment,
    ExperimentOptions,
    ExperimentResult,
    Trained,
    figure_paths,
    register_experiment,
)
from archlab.experiments.recurrent_probes import loglog_slope, median_step_ms
from archlab.layers.attention import record_attention
from archlab.layers.recurrent import LSTM
from archlab.layers.transformer import TransformerBlock
from archlab.report.figures import lines
from archlab.utils.counting import count_params

ATTN = "Transformer layer"


class CausalTransformerLayer(nn.Module):
    """One causal Transformer encoder layer (Vaswani et al. 2017, §3.1–3.2) from ``layers.transformer``:
    x ← x + MSA(LN(x)) with a causal mask, x ← x + FFN(LN(x)), FFN d → 4d → d (GELU). All T positions
    are computed at once: its sequential depth is 1. Shapes: x (B, T, d) → (B, T, d)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.block = TransformerBlock(width, heads, 4 * width, norm_first=True, activation="gelu", dropout=0.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x, is_causal=True)[0]


def saved_bytes(module: nn.Module, x: Tensor, written_out: bool = False) -> int:
    """Bytes of the activations one forward pass keeps for the backward (parameters excluded, each
    storage once), measured with ``torch.autograd.graph.saved_tensors_hooks``. ``written_out``: the
    attention modules run Eq. 1 as written (``record_attention``), keeping the (B, H, T, T) weights."""
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    context = record_attention(module) if written_out else contextlib.nullcontext()
    with context, torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = module(x)
        out = out[0] if isinstance(out, tuple) else out
        out.float().pow(2).mean()
    return sum(seen.values())


MAX_SCORE_BYTES = 8 * 2**30  # the largest (B, H, T, T) float32 score tensor an option may ask for


class SequentialBottleneckOptions(ExperimentOptions):
    lengths: list[int] | None = Field(None, min_length=1)  # T (default [16, 64] quick, 16 … 1024 full)
    width: int = Field(64, ge=1)  # d, the LSTM's hidden size and the attention's model width
    heads: int = Field(4, ge=1)
    batch_size: int = Field(32, ge=1)
    repeats: int | None = Field(None, ge=1)  # timed steps, median (default 3 quick, 7 full)
    threads: int = Field(1, ge=1)  # torch threads while timing

    @model_validator(mode="after")
    def _heads_divide_width(self) -> SequentialBottleneckOptions:
        if self.width % self.heads:
            raise ValueError(f"width: {self.width} is not divisible by heads={self.heads}")
        if self.lengths is not None and min(self.lengths) < 1:
            raise ValueError(f"lengths: every T must be ≥ 1, got {self.lengths}")
        if self.lengths is not None:  # the attention's (B, H, T, T) scores, float32: found before the run dir
            need = 4 * self.batch_size * self.heads * max(self.lengths) ** 2
            if need > MAX_SCORE_BYTES:
                raise ValueError(
                    f"lengths: T = {max(self.lengths):,} needs {need / 2**30:,.0f} GiB for the (B, H, T, T) attention "
                    f"scores, more than {MAX_SCORE_BYTES // 2**30} GiB; use shorter lengths or a smaller batch_size"
                )
        return self


@register_experiment
class SequentialBottleneck(Experiment):
    name = "sequential-bottleneck"
    title = "The sequential bottleneck: time and memory per training step vs sequence length, LSTM vs self-attention"
    claim = (
        "A recurrent network needs T sequential steps per sequence, so its time per step grows linearly in T "
        "however parallel the hardware, while self-attention processes all positions at once (sequential depth 1) "
        "at a cost of T² scores, whose memory grows as T² when they are stored — Vaswani et al. 2017, Table 1."
    )
    Options = SequentialBottleneckOptions

    def settings(self, options: SequentialBottleneckOptions, quick: bool) -> dict[str, Any]:
        return {
            "lengths": options.lengths
            if options.lengths is not None
            else ([16, 64] if quick else [16, 32, 64, 128, 256, 512, 1024]),
            "width": options.width,
            "heads": options.heads,
            "batch_size": options.batch_size,
            "repeats": options.repeats if options.repeats is not None else (3 if quick else 7),
            "threads": options.threads,
        }

    def analyse(self, out_dir: Path, s: dict[str, Any], trained: Trained) -> ExperimentResult:
        d, lengths = s["width"], sorted(s["lengths"])
        torch.manual_seed(0)
        makers = {
            "LSTM": lambda: LSTM(d, d, batch_first=True),
            ATTN: lambda: CausalTransformerLayer(d, s["heads"]),
        }
        params = {k: count_params(make()) for k, make in makers.items()}
        ms: dict[str, list[float]] = {k: [] for k in makers}
        mem: dict[str, list[int]] = {"LSTM": [], "fused": [], "written out": []}
        for t in lengths:
            x = torch.randn(s["batch_size"], t, d)
            for k, make in makers.items():
                ms[k].append(median_step_ms(make(), x, s["repeats"], threads=s["threads"]))
            mem["LSTM"].append(saved_bytes(makers["LSTM"](), x))
            mem["fused"].append(saved_bytes(makers[ATTN](), x))
            mem["written out"].append(saved_bytes(makers[ATTN](), x, written_out=True))
        lstm, att = ms["LSTM"], ms[ATTN]
        big = [i for i, t in enumerate(lengths) if t >= 128] if sum(t >= 128 for t in lengths) >= 2 else []
        slopes = {k: loglog_slope(lengths, v) for k, v in ms.items()} if len(lengths) > 1 else {}
        slopes_big = (
            {k: loglog_slope([lengths[i] for i in big], [v[i] for i in big]) for k, v in ms.items()} if big else {}
        )
        rows = [
            [
                t,
                t,
                1,
                round(lstm[i], 2),
                round(att[i], 2),
                round(lstm[i] / att[i], 2),
                round(1000 * lstm[i] / t, 1),
                round(mem["LSTM"][i] / 1024, 1),
                round(mem["fused"][i] / 1024, 1),
                round(mem["written out"][i] / 1024, 1),
            ]  # fmt: skip
            for i, t in enumerate(lengths)
        ]
        mem_slopes = {k: loglog_slope(lengths, v) for k, v in mem.items()} if len(lengths) > 1 else {}
        top = [i for i, t in enumerate(lengths) if t >= 256]
        mem_slopes_big = (
            {k: loglog_slope([lengths[i] for i in top], [v[i] for i in top]) for k, v in mem.items()}
            if len(top) >= 2
            else {}
        )
        lines(
            {
                ("LSTM" if k == "LSTM" else f"attention layer, {k}")
                + (f", slope {mem_slopes[k]:.2f}" if mem_slopes else ""): [
                    (t, math.log10(v[i] / 1024), 0.0) for i, t in enumerate(lengths)
                ]
                for k, v in mem.items()
            },
            "sequence length T",
            "log₁₀ KiB kept for the backward pass",
            out_dir / "figures" / "memory_vs_length.png",
            title=f"B={s['batch_size']}, d={d}, {s['heads']} heads: activations saved by one forward pass",
        )
        lines(
            {
                f"{k} ({params[k]:,} params)" + (f", slope {slopes[k]:.2f}" if slopes else ""): [
                    (t, math.log10(v[i]), 0.0) for i, t in enumerate(lengths)
                ]
                for k, v in ms.items()
            },
            "sequence length T",
            "log₁₀ ms per training step (median)",
            out_dir / "figures" / "time_vs_length.png",
            title=f"B={s['batch_size']}, d={d}, {s['threads']} torch thread(s), forward + backward + Adam",
        )
        verdict, supported = self._verdict(s, lengths, lstm, att, slopes, slopes_big)
        verdict += self._memory_verdict(lengths, mem, mem_slopes, mem_slopes_big)
        return ExperimentResult(
            title=self.title,
            verdict=verdict,
            columns=[
                "T",
                "LSTM sequential steps",
                "attention sequential steps",
                "LSTM ms/step",
                "attention ms/step",
                "LSTM / attention",
                "LSTM µs per time step",
                "LSTM KiB saved",
                "attention KiB saved (fused)",
                "attention KiB saved (written out)",
            ],
            rows=rows,
            figures=figure_paths(out_dir),
            extra={
                "settings": s,
                "params": params,
                "ms": ms,
                "slope_all": slopes,
                "slope_T_ge_128": slopes_big,
                "torch_threads": s["threads"],
                "saved_bytes": mem,
                "memory_slope_all": mem_slopes,
                "memory_slope_T_ge_256": mem_slopes_big,
                "note": "the attention side is one causal pre-LN Transformer encoder layer of layers.transformer "
                "(multi-head self-attention + FFN d → 4d → d); memory is what one forward pass saves for the "
                "backward, parameters excluded",
            },
            supported=supported,
        )

    @staticmethod
    def _verdict(
        s: dict[str, Any],
        lengths: list[int],
        lstm: list[float],
        att: list[float],
        slopes: dict[str, float],
        slopes_big: dict[str, float],
    ) -> tuple[str, bool | None]:
        a, b = "LSTM", ATTN
        verdict = (
            f"One training step (forward, backward, Adam) on B={s['batch_size']}, d={s['width']}, "
            f"{s['threads']} torch thread(s), median of {s['repeats']}: "
            f"T={lengths[0]}: LSTM {lstm[0]:.2f} ms vs attention {att[0]:.2f} ms; "
            f"T={lengths[-1]}: LSTM {lstm[-1]:.2f} ms ({lengths[-1]} sequential steps) vs attention "
            f"{att[-1]:.2f} ms (1). "
        )
        if not slopes:
            return verdict + "One length only: no fit.", None
        verdict += f"Log-log slopes over T={lengths[0]}…{lengths[-1]}: LSTM {slopes[a]:.2f}, attention {slopes[b]:.2f}"
        if slopes_big:
            verdict += f" (T ≥ 128: LSTM {slopes_big[a]:.2f}, attention {slopes_big[b]:.2f})"
        verdict += ". "
        linear = slopes[a] >= 0.8
        faster = all(x < y for x, y in zip(att, lstm))
        crossing = next((t for t, x, y in zip(lengths, att, lstm) if x >= y), None)
        verdict += (
            f"The LSTM's time grows {'about linearly' if linear else 'sub-linearly'} with its T sequential steps"
            + (
                " and attention is faster at every length measured"
                if faster
                else (
                    "; the attention layer is slower at every length measured"
                    if crossing == lengths[0]
                    else f"; attention is faster until its T² term catches up (slower from T={crossing})"
                )
            )
            + ". "
        )
        if linear and faster:
            return verdict + "The claim holds on this hardware.", True
        if linear:
            return (
                verdict + "The recurrence does cost T sequential steps, but on this hardware the attention side has no "
                "parallel units to spread its T² work over, so the claim is only partly visible here.",
                None,
            )
        return verdict + "The LSTM's time does not grow linearly: the claim is not visible at these lengths.", False

    @staticmethod
    def _memory_verdict(
        lengths: list[int], mem: dict[str, list[int]], slopes: dict[str, float], slopes_big: dict[str, float]
    ) -> str:
        if not slopes:
            return ""
        kib = {k: v[-1] / 1024 for k, v in mem.items()}
        fit = slopes_big or slopes
        span = "T ≥ 256" if slopes_big else f"T={lengths[0]}…{lengths[-1]}"
        quadratic = fit["written out"] >= 1.6
        return (
            f" Memory kept for the backward pass at T={lengths[-1]}: LSTM {kib['LSTM']:,.0f} KiB, attention layer "
            f"{kib['written out']:,.0f} KiB with the weights written out, {kib['fused']:,.0f} KiB with the fused "
            f"kernel; log-log slopes over {span}: LSTM {fit['LSTM']:.2f}, written out {fit['written out']:.2f}, "
            f"fused {fit['fused']:.2f}. "
            + (
                "Stored attention weights grow as T²; the fused kernel keeps only O(T) (it recomputes the "
                "weights in the backward pass), so there the T² is paid in time, not memory."
                if quadratic
                else "At these lengths the T² weights do not yet dominate the stored activations."
            )
        )
