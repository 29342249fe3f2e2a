"""Results: the Markdown report (benchmarks/RESULTS.md) and the terminal table."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archlab.bench.measuring import machine_info

COLUMNS = (
    "workload",
    "params",
    "batch",
    "samples/s",
    "vs peer",
    "step ms",
    "runs (ms)",
    "CPU ms",
    "vs peer (CPU)",
    "peak RSS MB",
    "Δ RSS MB",
    "GFLOP/s",
    "MFU",
)


def _cells(row: dict[str, Any]) -> list[str]:
    runs = row.get("runs_step_ms") or [row["step_ms"]]
    ratio = row.get("vs_peer")
    return [
        row["workload"],
        f"{row['params']:,}",
        str(row["batch"]),
        f"{row['samples_per_s']:,.0f}",
        f"{ratio:.3f}× {row['peer']}" if ratio else "",
        f"{row['step_ms']:.2f}",
        f"{min(runs):.2f}–{max(runs):.2f}",
        f"{row['cpu_ms']:.2f}" if row.get("cpu_ms") else "",
        f"{row['vs_peer_cpu']:.3f}×" if row.get("vs_peer_cpu") else "",
        f"{row['peak_rss_mb']:.0f}",
        f"{row['peak_rss_delta_mb']:.1f}",
        f"{row['gflops']:.2f}",
        f"{100 * row['mfu']:.1f}%" if math.isfinite(row["mfu"]) else "n/a",
    ]


def _load_line(rows: Sequence[dict[str, Any]]) -> str | None:
    loads = [r["load_1min"] for r in rows if r.get("load_1min")]
    if not loads or None in loads[0]:
        return None
    start, end = loads[0]
    return f"- Load average (1 min) at the start / end of the run: {start:.2f} / {end:.2f}"


def results_markdown(
    rows: Sequence[dict[str, Any]], peak: float | dict[str, float], machine: dict[str, Any] | None = None
) -> str:
    peaks = peak if isinstance(peak, dict) else {"fp32": float(peak)}
    m = dict(machine or machine_info())
    row_threads = sorted({r["threads"] for r in rows if r.get("threads")})
    if row_threads:  # what the workers actually used
        m["threads"] = "/".join(map(str, row_threads))
    repeats = max((r.get("repeats", 1) for r in rows), default=1)
    steps = max((r.get("steps", 0) for r in rows), default=0)
    precision = ", ".join(sorted({r.get("precision", "fp32") for r in rows})) or "fp32"
    date = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks",
        "",
        f"Written by `benchmarks/run.py` on {date}. Regenerate with `python benchmarks/run.py`.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']} ({m['cores']} cores), torch {m['torch']}, {m['threads']} threads, "
        f"Python {m.get('python', '?')}",
        f"- CPU flags (SIMD): {' '.join(m.get('cpu_flags') or []) or 'unknown'}; native bf16: "
        f"{'yes' if m.get('native_bf16') else 'no (bf16 is emulated here: not measured)'}",
        f"- Measured matmul peak, fp32 (median): **{peaks['fp32']:.1f} GFLOP/s**",
    ]
    if "bf16" in peaks:
        lines.append(f"- Measured matmul peak, bf16 (median): {peaks['bf16']:.1f} GFLOP/s")
    load = _load_line(rows)
    if load:
        lines.append(load)
    lines += [
        "",
        f"## Training step ({precision}, AdamW, {steps} timed steps per run, median of {repeats} runs)",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(COLUMNS))) + "|",
    ]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    lines += ["", "## Workloads", ""]
    for r in rows:
        ref = f" Reference figure: {r['reference']}." if r.get("reference") else ""
        lines.append(f"- `{r['workload']}`: {r.get('description', '')}.{ref}")
    lines += [
        "",
        "## Method",
        "",
        f"- Every workload (and the matmul peak) runs in its own process, interleaved round-robin "
        f"(w1, w2, …, w1, w2, …), {repeats} times each, after untimed warm-up steps.",
        "- archlab's models are timed through the trainer's own step (a real `Trainer` built on a recipe: "
        "learning-rate schedule, the loader's next batch, forward, loss, finiteness checks, backward, gradient "
        "norm, optimizer step), so the speed here is the speed `archlab train` gets. Peers are timed in the "
        "plain PyTorch loop (zero_grad, forward, loss, backward, optimizer step on one fixed batch).",
        "- `step ms` is the median over runs of each run's median step time (median of medians); "
        "`runs (ms)` is the range of the per-run medians; samples/s = batch / step time; `vs peer` = the "
        "peer's step time ÷ this workload's (above 1: faster than the peer), both from this run. `CPU ms` is "
        "the median CPU time of the worker process per step (all its threads); `vs peer (CPU)` is the same "
        "ratio of CPU times. On a busy shared machine wall time also counts other processes' turns; CPU time "
        "does not (cache and core sharing still reach it).",
        "- FLOPs per step = 3 × forward FLOPs from `count_flops` (torch's FLOP counter, a multiply-add "
        "= 2; for the fused CPU LSTM, which it cannot see, 2·4H·(I+H) per layer, step and sample). "
        "For dense layers this is 6·N per sample. MFU = achieved GFLOP/s ÷ measured fp32 peak.",
        "- `peak RSS MB` is the worker process's peak resident set size (VmHWM, reset just before the "
        "timed loop), interpreter and torch included; `Δ RSS MB` is that peak minus the RSS with the "
        "model and batch already built. RSS is an upper bound, not a tensor-level measurement.",
        "- These machines are noisy: compare workloads only as ratios within one run, never across files or sessions.",
        "",
    ]
    return "\n".join(lines)


def write_results(
    rows: Sequence[dict[str, Any]],
    peak: float | dict[str, float],
    path: str | Path = "benchmarks/RESULTS.md",
    *,
    echo: bool = True,
) -> Path:
    """Write the Markdown report to ``path`` and (``echo``) print the table to stdout."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(results_markdown(rows, peak), encoding="utf-8")
    if echo:
        print_table(rows, peak)
    return path


def print_table(rows: Sequence[dict[str, Any]], peak: float | dict[str, float]) -> None:
    peaks = peak if isinstance(peak, dict) else {"fp32": float(peak)}
    title = "matmul peak " + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peaks.items())
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, c in enumerate(COLUMNS):
        table.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        table.add_row(*_cells(r))
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 160))  # piped output: never truncate the columns
    console.print(table)
