"""Training-step benchmarks: throughput, peak memory and MFU against the measured matmul peak.

Method (see /work/shared/PEERS.md): these machines are noisy, so a speed figure counts only as a
ratio against a peer measured side by side in the same run. ``run_benchmarks`` runs every
workload in its own process, interleaved round-robin across repeats (w1, w2, w3, w1, w2, w3, …),
and reports the median over repeats of each run's median step time ("median of medians").

FLOPs per training step are 3 × the forward FLOPs counted by ``count_flops`` (backward ≈ 2 ×
forward), which for dense layers is the usual 6·N per sample (per token for sequences). MFU is
achieved FLOP/s over the machine's measured fp32 matmul peak, also for bf16 runs.

Memory is the process's peak resident set size (``VmHWM``), reset through ``/proc/self/clear_refs``
just before the timed loop where the kernel allows it; ``peak_rss_delta_mb`` is that peak minus
the RSS when ``bench_train_step`` was called (model and batch already built). RSS counts every
page the process touched (torch's allocator caches, thread stacks, the interpreter), so it is an
upper bound of the memory the step needs, not a tensor-level measurement.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from archlab.layers.recurrent import LSTM, Impl
from archlab.registry import create_model
from archlab.tasks.losses import cross_entropy
from archlab.utils.counting import count_flops, count_params
from archlab.utils.env import hardware as _hardware
from archlab.utils.env import native_bf16

Batch = tuple[torch.Tensor, torch.Tensor]
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

PRECISIONS = ("fp32", "bf16")


# -- machine -----------------------------------------------------------------------------------
def matmul_peak(n: int = 2048, dtype: torch.dtype = torch.float32, repeats: int = 5) -> float:
    """Measured matmul throughput in GFLOP/s: median of ``repeats`` timed ``n×n @ n×n`` products.

    One untimed product warms up the kernels first; each product is 2·n³ FLOPs.
    """
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(dtype)
    b = torch.randn(n, n, generator=g).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    torch.mm(a, b, out=out)  # warm-up
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        times.append(time.perf_counter() - t0)
    return 2.0 * n**3 / statistics.median(times) / 1e9


def machine_info() -> dict[str, Any]:
    """The CPU model, its SIMD flags, whether it has native bf16, core and thread counts, versions."""
    hw = _hardware("cpu")
    return {
        "cpu": hw.get("cpu") or platform.processor() or platform.machine(),
        "cpu_flags": list(hw.get("cpu_flags", [])),
        "native_bf16": bool(hw["native_bf16"]),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def measure_peaks(n: int = 2048) -> dict[str, float]:
    """fp32 matmul peak, and the bf16 one only where the CPU has native bf16 (GFLOP/s).

    Emulated bf16 runs ~14× slower than fp32 (an AVX2-only AMD EPYC): measuring it there costs
    minutes and says nothing a bf16 run should be compared against.
    """
    peaks = {"fp32": matmul_peak(n)}
    if native_bf16("cpu"):
        peaks["bf16"] = matmul_peak(n, dtype=torch.bfloat16)
    return peaks


# -- memory ------------------------------------------------------------------------------------
def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (``VmHWM``) to the current RSS; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_kb() -> int:
    hwm = _status_kb("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


# -- one workload ------------------------------------------------------------------------------
def _make_optimizer(name: str, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(params, lr=1e-3)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-3)
    if name == "sgd":
        return torch.optim.SGD(params, lr=1e-2, momentum=0.9)
    raise ValueError(f"optimizer must be one of adamw, adam, sgd; got {name!r}")


def bench_train_step(
    model: nn.Module,
    example_batch: Batch,
    loss_fn: LossFn,
    *,
    steps: int = 30,
    warmup: int = 5,
    optimizer: str = "adamw",
    precision: str = "fp32",
    peak_gflops: float | None = None,
    forward_flops: int | None = None,
) -> dict[str, Any]:
    """Time ``steps`` full training steps (zero_grad, forward, loss, backward, optimizer step).

    ``forward_flops`` overrides ``count_flops(model, x)`` where torch's counter misses ops (the
    fused CPU LSTM kernel counts as 0). ``peak_gflops`` defaults to a quick ``matmul_peak()``.
    Returns samples_per_s (batch / median step time), step_ms (median), step_ms_min/max,
    peak_rss_mb (process peak RSS), peak_rss_delta_mb, params, batch, flops_per_step
    (3 × forward FLOPs), gflops (achieved) and mfu (achieved / peak).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if steps < 1 or warmup < 0:
        raise ValueError(f"need steps ≥ 1 and warmup ≥ 0, got steps={steps} warmup={warmup}")
    x, y = example_batch
    batch = int(x.shape[0])
    fwd = count_flops(model, x) if forward_flops is None else int(forward_flops)
    flops_per_step = 3 * fwd
    if peak_gflops is None:
        peak_gflops = matmul_peak()

    rss_before_kb = _status_kb("VmRSS") or 0
    model.train()
    opt = _make_optimizer(optimizer, [p for p in model.parameters() if p.requires_grad])
    autocast = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return float(loss.detach())

    for _ in range(warmup):
        step()
    reset_ok = _reset_peak_rss()
    times = []
    loss = math.nan
    for _ in range(steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
    peak_kb = _peak_rss_kb()

    step_s = statistics.median(times)
    gflops = flops_per_step / step_s / 1e9
    return {
        "params": count_params(model),
        "batch": batch,
        "steps": steps,
        "warmup": warmup,
        "optimizer": optimizer,
        "precision": precision,
        "samples_per_s": batch / step_s,
        "step_ms": 1e3 * step_s,
        "step_ms_min": 1e3 * min(times),
        "step_ms_max": 1e3 * max(times),
        "peak_rss_mb": peak_kb / 1024,
        "peak_rss_delta_mb": max(0.0, (peak_kb - rss_before_kb) / 1024),
        "peak_rss_reset": reset_ok,  # False: the peak may predate the timed loop
        "forward_flops": fwd,
        "flops_per_step": flops_per_step,
        "gflops": gflops,
        "peak_gflops": peak_gflops,
        "mfu": gflops / peak_gflops if peak_gflops > 0 else math.nan,
        "final_loss": loss,
        "threads": torch.get_num_threads(),
    }


# -- workloads ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Workload:
    """A named training step to benchmark: ``build()`` → (model, (x, y), loss_fn)."""

    name: str
    build: Callable[[], tuple[nn.Module, Batch, LossFn]]
    description: str
    # forward FLOPs where torch's counter is blind (None: count_flops); (model, x) → FLOPs
    flops: Callable[[nn.Module, torch.Tensor], int] | None = None
    reference: str = ""  # a peer figure from PEERS.md, for the notes
    tags: tuple[str, ...] = field(default_factory=tuple)


def _classification_batch(shape: tuple[int, ...], classes: int = 10, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g), torch.randint(0, classes, (shape[0],), generator=g)


def _mlp_fashion() -> tuple[nn.Module, Batch, LossFn]:
    torch.manual_seed(0)
    model = create_model("mlp", in_shape=(1, 28, 28), num_classes=10, depth=2, width=256)
    return model, _classification_batch((128, 1, 28, 28)), cross_entropy


def _cnn1d_mnist1d() -> tuple[nn.Module, Batch, LossFn]:
    torch.manual_seed(0)
    model = create_model("cnn1d", in_shape=(1, 40), num_classes=10)
    return model, _classification_batch((100, 1, 40)), cross_entropy


def _gru_mnist1d() -> tuple[nn.Module, Batch, LossFn]:
    torch.manual_seed(0)
    model = create_model("gru", in_shape=(1, 40), num_classes=10)
    return model, _classification_batch((100, 1, 40)), cross_entropy


def _resnet18_32(channels_last: bool = False) -> tuple[nn.Module, Batch, LossFn]:
    torch.manual_seed(0)
    model = create_model("resnet18", in_shape=(3, 32, 32), num_classes=10)  # ImageNet stem, as timm's
    x, y = _classification_batch((128, 3, 32, 32))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    return model, (x, y), cross_entropy


class TorchLSTMClassifier(nn.Module):
    """The peer: ``torch.nn.LSTM`` (batch-first) and a linear head on the last layer's final state.

    Shapes: x (B, T, I) → (B, K).
    """

    def __init__(self, input_size: int = 256, hidden_size: int = 256, num_layers: int = 2, classes: int = 10):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = nn.Linear(hidden_size, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.lstm(x)  # h_n (layers, B, H)
        return self.head(h_n[-1])


def lstm_forward_flops(lstm: nn.LSTM, batch: int, seq_len: int) -> int:
    """Matmul FLOPs of an ``nn.LSTM`` forward: per layer, step and sample 2·4H·(I + H)."""
    dirs = 2 if lstm.bidirectional else 1
    h, total = lstm.hidden_size, 0
    for layer in range(lstm.num_layers):
        i = lstm.input_size if layer == 0 else h * dirs
        total += dirs * 2 * 4 * h * (i + h)
    return total * batch * seq_len


def _lstm_flops(model: nn.Module, x: torch.Tensor) -> int:
    counted = count_flops(model, x)  # the head; the fused CPU LSTM kernel counts as 0
    if count_flops(model.lstm, x) == 0:
        counted += lstm_forward_flops(model.lstm, x.shape[0], x.shape[1])
    return counted


def _lstm_torch() -> tuple[nn.Module, Batch, LossFn]:
    torch.manual_seed(0)
    return TorchLSTMClassifier(), _classification_batch((64, 100, 256)), cross_entropy


class ArchlabLSTMClassifier(nn.Module):
    """The peer's model with archlab's LSTM layer in place of ``torch.nn.LSTM``: the same parameters
    and, from the same seed, the same initial weights; ``impl`` picks torch's fused kernel or our
    equation-level cell loop. Shapes: x (B, T, I) → (B, K)."""

    def __init__(
        self, impl: Impl, input_size: int = 256, hidden_size: int = 256, num_layers: int = 2, classes: int = 10
    ):
        super().__init__()
        self.lstm = LSTM(input_size, hidden_size, num_layers=num_layers, batch_first=True, impl=impl)
        self.head = nn.Linear(hidden_size, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h_n, _) = self.lstm(x)  # h_n (layers, B, H)
        return self.head(h_n[-1])


def _lstm_archlab(impl: Impl) -> tuple[nn.Module, Batch, LossFn]:
    torch.manual_seed(0)
    return ArchlabLSTMClassifier(impl), _classification_batch((64, 100, 256)), cross_entropy


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload(
            "mlp-fashion",
            _mlp_fashion,
            "archlab mlp, depth 2, width 256, (1,28,28) inputs, batch 128, AdamW",
        ),
        Workload(
            "cnn1d-mnist1d",
            _cnn1d_mnist1d,
            "archlab cnn1d (the MNIST-1D CNN), (1,40) inputs, batch 100, AdamW",
        ),
        Workload(
            "gru-mnist1d",
            _gru_mnist1d,
            "archlab gru (bidirectional, 6 units, flatten read-out), (1,40) inputs, batch 100, AdamW",
        ),
        Workload(
            "resnet18-32",
            _resnet18_32,
            "archlab resnet18 (ImageNet stem: 7×7/2 conv + max-pool), (3,32,32) inputs, batch 128, AdamW",
            reference="PEERS.md: timm resnet18, same input and batch, 628 images/s, 73% MFU (timm needs "
            "torchvision, which has no CPU wheel here, so it cannot run beside us)",
        ),
        Workload(
            "resnet18-32-cl",
            lambda: _resnet18_32(channels_last=True),
            "as resnet18-32, model and batch in channels_last memory format",
        ),
        Workload(
            "lstm-torch",
            _lstm_torch,
            "peer: torch nn.LSTM, 2 layers, input 256, hidden 256, seq 100, batch 64, "
            "linear head on the last state, AdamW",
            flops=_lstm_flops,
            reference="PEERS.md: 251 sequences/s, 84% MFU (torch nn.LSTM, 2-core reference machine)",
            tags=("peer",),
        ),
        Workload(
            "lstm-archlab-fused",
            lambda: _lstm_archlab("fused"),
            "archlab LSTM layer, impl='fused' (torch's kernel), the lstm-torch configuration: 2 layers, "
            "input 256, hidden 256, seq 100, batch 64, linear head on the last state, AdamW (FLOPs: count_flops)",
        ),
        Workload(
            "lstm-archlab-cells",
            lambda: _lstm_archlab("cells"),
            "archlab LSTM layer, impl='cells' (our equation-level loop), the lstm-torch configuration: "
            "2 layers, input 256, hidden 256, seq 100, batch 64, linear head on the last state, AdamW "
            "(FLOPs: count_flops)",
        ),
    )
}


def list_workloads() -> list[str]:
    return list(WORKLOADS)


def get_workload(name: str) -> Workload:
    if name not in WORKLOADS:
        raise KeyError(f"unknown workload '{name}'; known: {', '.join(WORKLOADS)}")
    return WORKLOADS[name]


def run_workload(
    name: str,
    *,
    steps: int = 30,
    warmup: int = 5,
    optimizer: str = "adamw",
    precision: str = "fp32",
    peak_gflops: float | None = None,
) -> dict[str, Any]:
    """Build one workload and benchmark its training step in this process."""
    w = get_workload(name)
    model, batch, loss_fn = w.build()
    fwd = w.flops(model, batch[0]) if w.flops is not None else None
    out = bench_train_step(
        model,
        batch,
        loss_fn,
        steps=steps,
        warmup=warmup,
        optimizer=optimizer,
        precision=precision,
        peak_gflops=peak_gflops,
        forward_flops=fwd,
    )
    return {"workload": name, **out}


# -- the runner --------------------------------------------------------------------------------
PEAK_JOB = "matmul-peak"


def _worker_cmd(
    job: str, steps: int, warmup: int, precision: str, optimizer: str, threads: int | None, peak_n: int = 2048
) -> list[str]:
    cmd = [sys.executable, "-m", "archlab.bench.worker"]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    if job == PEAK_JOB:
        return [*cmd, "--matmul-peak", "--peak-n", str(peak_n), "--json"]
    return [
        *cmd,
        job,
        "--steps",
        str(steps),
        "--warmup",
        str(warmup),
        "--precision",
        precision,
        "--optimizer",
        optimizer,
        "--peak",
        "0",
        "--json",
    ]


def _run_subprocess(cmd: list[str], timeout: float) -> dict[str, Any]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout)[-2000:]
        raise RuntimeError(f"benchmark worker failed ({' '.join(cmd[2:])}), exit {proc.returncode}:\n{tail}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if not lines:
        raise RuntimeError(f"benchmark worker printed nothing ({' '.join(cmd[2:])})")
    return json.loads(lines[-1])


def run_benchmarks(
    names: Sequence[str] | None = None,
    repeats: int = 3,
    processes: bool = True,
    *,
    steps: int = 30,
    warmup: int = 5,
    precision: str = "fp32",
    optimizer: str = "adamw",
    threads: int | None = None,
    timeout: float = 600.0,
    peak_n: int = 2048,
    log: Callable[[str], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Run workloads interleaved round-robin, ``repeats`` times each; return (rows, peaks).

    Every round measures the matmul peak too (as one more interleaved job), so the peak sees
    the same machine state as the workloads. Each row holds the median over repeats of every
    run's median step time (and the figures derived from it) plus the per-run medians in
    ``runs_step_ms``. ``peaks`` holds the median fp32 and bf16 matmul peaks in GFLOP/s.
    ``threads`` sets torch's intra-op threads in every worker (default: torch's own choice).
    The bf16 peak, and ``precision="bf16"``, need a CPU with native bf16 (:func:`native_bf16`):
    elsewhere the peak is fp32 only and a bf16 run is refused (ValueError), since emulated bf16
    is ~14× slower than fp32 and would only measure the emulation.
    With ``processes=False`` everything runs in this process (for tests; not for results).
    """
    names = list(names) if names else list_workloads()
    for n in names:
        get_workload(n)  # unknown names fail before anything runs
    if repeats < 1:
        raise ValueError(f"repeats must be ≥ 1, got {repeats}")
    if precision == "bf16" and not native_bf16("cpu"):
        raise ValueError(
            "precision bf16: this CPU has no native bf16 (avx512_bf16/amx_bf16), so bf16 would be emulated "
            "(~14x slower than fp32); benchmark fp32 here, or bf16 on a CPU or GPU that has it"
        )
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    threads_before = torch.get_num_threads()
    if threads is not None and not processes:
        torch.set_num_threads(threads)
    peak_runs: list[dict[str, float]] = []

    def run_job(job: str) -> dict[str, Any]:
        if processes:
            return _run_subprocess(_worker_cmd(job, steps, warmup, precision, optimizer, threads, peak_n), timeout)
        if job == PEAK_JOB:
            return measure_peaks(peak_n)
        return run_workload(job, steps=steps, warmup=warmup, optimizer=optimizer, precision=precision, peak_gflops=0.0)

    try:
        for r in range(repeats):
            for job in [PEAK_JOB, *names]:  # round-robin: every job once per round
                if log:
                    log(f"round {r + 1}/{repeats}: {job}")
                result = run_job(job)
                (peak_runs if job == PEAK_JOB else runs[job]).append(result)
    finally:
        torch.set_num_threads(threads_before)
    peaks = {k: statistics.median(p[k] for p in peak_runs) for k in ("fp32", "bf16") if k in peak_runs[0]}
    rows = [_summarise(n, runs[n], peaks["fp32"]) for n in names]
    return rows, peaks


def _summarise(name: str, runs: list[dict[str, Any]], peak_fp32: float) -> dict[str, Any]:
    first = runs[0]
    step_ms = statistics.median(r["step_ms"] for r in runs)
    gflops = first["flops_per_step"] / (step_ms / 1e3) / 1e9
    w = get_workload(name)
    return {
        "workload": name,
        "description": w.description,
        "reference": w.reference,
        "params": first["params"],
        "batch": first["batch"],
        "steps": first["steps"],
        "precision": first["precision"],
        "optimizer": first["optimizer"],
        "repeats": len(runs),
        "step_ms": step_ms,
        "runs_step_ms": [r["step_ms"] for r in runs],
        "samples_per_s": first["batch"] / (step_ms / 1e3),
        "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in runs),
        "peak_rss_delta_mb": statistics.median(r["peak_rss_delta_mb"] for r in runs),
        "flops_per_step": first["flops_per_step"],
        "gflops": gflops,
        "mfu": gflops / peak_fp32 if peak_fp32 > 0 else math.nan,
        "threads": first.get("threads"),
    }


# -- reporting ---------------------------------------------------------------------------------
COLUMNS = (
    "workload",
    "params",
    "batch",
    "samples/s",
    "step ms",
    "runs (ms)",
    "peak RSS MB",
    "Δ RSS MB",
    "GFLOP/s",
    "MFU",
)


def _cells(row: dict[str, Any]) -> list[str]:
    runs = row.get("runs_step_ms") or [row["step_ms"]]
    return [
        row["workload"],
        f"{row['params']:,}",
        str(row["batch"]),
        f"{row['samples_per_s']:,.0f}",
        f"{row['step_ms']:.2f}",
        f"{min(runs):.2f}–{max(runs):.2f}",
        f"{row['peak_rss_mb']:.0f}",
        f"{row['peak_rss_delta_mb']:.1f}",
        f"{row['gflops']:.2f}",
        f"{100 * row['mfu']:.1f}%" if math.isfinite(row["mfu"]) else "n/a",
    ]


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
        f"- Measured matmul peak, fp32 (2048², median): **{peaks['fp32']:.1f} GFLOP/s**",
    ]
    if "bf16" in peaks:
        lines.append(f"- Measured matmul peak, bf16 (2048², median): {peaks['bf16']:.1f} GFLOP/s")
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
        f"(w1, w2, …, w1, w2, …), {repeats} times each; a step is zero_grad + forward + loss + "
        "backward + optimizer step on one fixed synthetic batch, after untimed warm-up steps.",
        "- `step ms` is the median over runs of each run's median step time (median of medians); "
        "`runs (ms)` is the range of the per-run medians; samples/s = batch / step time.",
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
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is a dependency
        print(title)
        print(" | ".join(COLUMNS))
        for r in rows:
            print(" | ".join(_cells(r)))
        return
    table = Table(title=title)
    for i, c in enumerate(COLUMNS):
        table.add_column(c, justify="left" if i == 0 else "right")
    for r in rows:
        table.add_row(*_cells(r))
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 160))  # piped output: never truncate the columns
    console.print(table)
