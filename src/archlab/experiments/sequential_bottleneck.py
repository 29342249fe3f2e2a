"""The sequential bottleneck (Vaswani et al. 2017, Table 1): time per training step against the
sequence length for an LSTM and one causal self-attention layer (a stand-in until the transformer
family lands). No training runs: the steps are timed in this process."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
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
from archlab.layers.recurrent import LSTM
from archlab.report.figures import lines
from archlab.utils.counting import count_params


class SelfAttentionStandIn(nn.Module):
    """One causal multi-head self-attention layer (Vaswani et al. 2017, Eq. 1), a stand-in for the
    transformer family's block until that family lands: Q, K, V = x W_qkv; y = softmax(QKᵀ/√d_h + M) V;
    out = y W_o. All T positions are computed at once: its sequential depth is 1.
    Shapes: x (B, T, d) → (B, T, d)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # 3 × (B, nh, T, hs)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, nh, T, hs)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))  # (B, T, d)


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
        return self


@register_experiment
class SequentialBottleneck(Experiment):
    name = "sequential-bottleneck"
    title = "The sequential bottleneck: time per training step vs sequence length, LSTM vs self-attention"
    claim = (
        "A recurrent network needs T sequential steps per sequence, so its time per step grows linearly in T "
        "however parallel the hardware, while self-attention processes all positions at once (sequential depth 1) "
        "at a cost of T² scores — Vaswani et al. 2017, Table 1."
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
            "self-attention (stand-in)": lambda: SelfAttentionStandIn(d, s["heads"]),
        }
        params = {k: count_params(make()) for k, make in makers.items()}
        ms: dict[str, list[float]] = {k: [] for k in makers}
        for t in lengths:
            x = torch.randn(s["batch_size"], t, d)
            for k, make in makers.items():
                ms[k].append(median_step_ms(make(), x, s["repeats"], threads=s["threads"]))
        lstm, att = ms["LSTM"], ms["self-attention (stand-in)"]
        big = [i for i, t in enumerate(lengths) if t >= 128] if sum(t >= 128 for t in lengths) >= 2 else []
        slopes = {k: loglog_slope(lengths, v) for k, v in ms.items()} if len(lengths) > 1 else {}
        slopes_big = (
            {k: loglog_slope([lengths[i] for i in big], [v[i] for i in big]) for k, v in ms.items()} if big else {}
        )
        rows = [
            [t, t, 1, round(lstm[i], 2), round(att[i], 2), round(lstm[i] / att[i], 2), round(1000 * lstm[i] / t, 1)]
            for i, t in enumerate(lengths)
        ]
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
                "note": "the attention side is a stand-in (one causal self-attention layer from "
                "F.scaled_dot_product_attention + linear projections) until the transformer family adds its model",
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
        a, b = "LSTM", "self-attention (stand-in)"
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
                else f"; attention is faster until its T² term catches up (slower from T={crossing})"
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
